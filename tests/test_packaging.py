"""The package layout: the top-level models/ and kernels/ folders install as repose_ext.models and
repose_ext.kernels, in a built wheel as in the editable install, never as top-level names."""

import os
import subprocess
import sys
import zipfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_editable_install_maps_the_top_level_folders_into_the_package():
    import repose_ext.kernels
    import repose_ext.models

    assert os.path.dirname(repose_ext.models.__file__) == os.path.join(REPO, "models")
    assert os.path.dirname(repose_ext.kernels.__file__) == os.path.join(REPO, "kernels")
    assert not os.path.exists(os.path.join(REPO, "repose_ext", "models"))


def test_importing_the_package_loads_no_optional_heavy_modules():
    """`import repose_ext` brings in torch and numpy only: Triton is imported on the first Triton launch, and
    matplotlib and tensorboard only by the training and plotting code that uses them."""
    code = ("import sys, torch, repose_ext; "
            "print(sorted(m for m in ('triton', 'matplotlib', 'tensorboard', 'torch.utils.tensorboard', "
            "'repose_ext.models', 'repose_ext.training') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True,
                         env={k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"})
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.slow
def test_a_built_wheel_installs_and_imports_from_a_fresh_folder(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q", "-w", str(dist),
                    REPO], check=True, timeout=1200, cwd=tmp_path, env=dict(os.environ, REPOSE_SKIP_CUDA="1"))
    wheel = next(dist.glob("repose_ext-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        assert "repose_ext/models/registry.py" in names and "repose_ext/kernels/depth_rank.py" in names
        assert "repose_ext/assets/default_model.pt" in names
        assert any(n.startswith("repose_ext/_C") for n in names)  # the compiled ops
        assert not [n for n in names if n.split("/")[0] in ("models", "kernels", "tests", "benchmarks")]
        z.extractall(tmp_path / "site")
    check = ("import repose_ext, repose_ext.models, repose_ext.kernels, torch; "
             "from repose_ext.models import build_model; "
             "m = build_model('simple_baseline'); "
             "print(repose_ext.models.__file__); "
             "print(repose_ext.depth_rank_loss(torch.zeros(1, 2, 17, 3), torch.zeros(1, 2, 17, 3), "
             "lambda_spatial=1.0, lambda_temporal=1.0, backend='cpu').item())")
    out = subprocess.run([sys.executable, "-c", check], check=True, capture_output=True, text=True, cwd=tmp_path,
                         env=dict(os.environ, PYTHONPATH=str(tmp_path / "site")), timeout=300)
    lines = out.stdout.split()
    assert lines[0].startswith(str(tmp_path / "site")) and float(lines[1]) == 0.0
