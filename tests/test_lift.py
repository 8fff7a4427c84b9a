"""python -m repose_ext.lift: input checks, NaN joints, windows over long clips, output contents."""

import re

import numpy as np
import pytest
import torch

from repose_ext import lift
from repose_ext.models import build_model
from repose_ext.models.checkpoint import save_checkpoint

TINY = {"preset": "small", "dim_feat": 16, "dim_rep": 16, "depth": 1, "num_heads": 2, "maxlen": 16}


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build_model(TINY)
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, model, config={"model": TINY, "data": {"n_frames": 8}})
    return str(path)


def write_input(path, t=20, nan=False, **override):
    rng = np.random.default_rng(0)
    data = dict(keypoints=rng.uniform(100, 900, size=(t, 17, 2)), scores=rng.uniform(0.2, 1.0, size=(t, 17)),
                width=1000, height=800)
    if nan:
        data["keypoints"][3, 5] = np.nan
        data["keypoints"][4] = np.nan  # a whole frame missing
    data.update(override)
    data = {k: v for k, v in data.items() if v is not None}
    np.savez(path, **data)
    return str(path)


def test_lift_end_to_end(tmp_path, checkpoint):
    src = write_input(tmp_path / "in.npz", t=20, nan=True)
    out = tmp_path / "out.npz"
    assert lift.main(["--input", src, "--output", str(out), "--checkpoint", checkpoint]) == 0
    res = np.load(out)
    assert res["pose3d"].shape == (20, 17, 3) and res["pose3d_normalized"].shape == (20, 17, 3)
    assert np.isfinite(res["pose3d"]).all()
    np.testing.assert_allclose(res["pose3d"][:, 0], 0.0, atol=1e-6)  # root-relative
    assert "mm" in str(res["units"])
    np.testing.assert_array_equal(np.isnan(res["keypoints"]), np.isnan(np.load(src)["keypoints"]))  # echoed
    assert float(res["width"]) == 1000 and float(res["height"]) == 800


def test_windows_cover_every_frame_and_match_single_pass(checkpoint):
    assert lift.window_starts(5, 8) == [0]
    assert lift.window_starts(16, 8) == [0, 8]
    assert lift.window_starts(20, 8) == [0, 8, 12]
    model, window = lift.load_lifter(checkpoint)
    assert window == 8
    rng = np.random.default_rng(1)
    kp, sc = rng.uniform(0, 500, (20, 17, 2)), np.ones((20, 17))
    pose = lift.lift(model, window, kp, sc, 500, 500)
    # frames 0-7 come from the first window alone: same as lifting those frames by themselves
    alone = lift.lift(model, window, kp[:8], sc[:8], 500, 500)
    np.testing.assert_allclose(pose[:8], alone, rtol=1e-5, atol=1e-6)


def test_nan_joints_get_score_zero():
    kp = np.ones((2, 17, 2))
    kp[0, 3] = np.nan
    kp[1] = np.nan
    filled, scores, missing = lift.fill_missing(kp, np.ones((2, 17)), 100, 80)
    assert np.isfinite(filled).all() and scores[0, 3] == 0 and (scores[1] == 0).all() and scores[0, 4] == 1
    np.testing.assert_allclose(filled[1], np.tile([50, 40], (17, 1)))
    assert missing.sum() == 18


@pytest.mark.parametrize(
    "override, match",
    [
        (dict(keypoints=np.zeros((5, 16, 2))), r"keypoints must have shape \(T, 17, 2\).*got \(5, 16, 2\)"),
        (dict(scores=np.zeros((5, 17, 1))), r"scores must have shape \(T, 17\)"),
        (dict(width=None), r"missing key 'width'"),
        (dict(height=-3), r"height must be one positive number"),
    ],
)
def test_bad_input_names_the_problem(tmp_path, checkpoint, override, match, capsys):
    src = write_input(tmp_path / "bad.npz", t=5, **override)
    with pytest.raises(SystemExit):
        lift.main(["--input", src, "--output", str(tmp_path / "o.npz"), "--checkpoint", checkpoint])
    assert re.search(match, capsys.readouterr().err)


def test_render_png(tmp_path, checkpoint):
    src = write_input(tmp_path / "in.npz", t=6)
    png = tmp_path / "frame.png"
    lift.main(["--input", src, "--output", str(tmp_path / "o.npz"), "--checkpoint", checkpoint, "--render", str(png)])
    assert png.stat().st_size > 1000


def test_bundled_default_model_lifts(tmp_path):
    # The checkpoint trained by `python train.py` ships with the package and is the CLI's default.
    model, window = lift.load_lifter()
    assert window >= 9
    src = write_input(tmp_path / "in.npz", t=window + 5, nan=True)
    out = tmp_path / "out.npz"
    assert lift.main(["--input", src, "--output", str(out)]) == 0
    pose = np.load(out)["pose3d"]
    assert pose.shape == (window + 5, 17, 3) and np.isfinite(pose).all()
