"""The GPU code compiles for sm_90 (H100/H200) on a machine without a GPU.

* Every csrc/cuda/*.cu compiles with ``nvcc -std=c++17 -O3 -arch=sm_90 -c`` (they are
  torch-free), and every csrc/cuda/*.cpp (the torch binding) with the torch headers plus
  tests/cuda_stub (a stand-in for the generated ``c10/cuda/impl/cuda_cmake_macros.h`` that
  CPU builds of torch lack). Linking needs a CUDA torch and is left to the GPU check
  (scripts/gpu_check.sh).
* The Triton kernels compile to a cubin for sm_90 with the block sizes the launcher picks
  for the benchmark shapes, in a subprocess without TRITON_INTERPRET (under the interpreter
  ``@triton.jit`` returns functions that cannot be compiled).
* torch.compile's analysis of user Triton kernels (which arguments a kernel writes; it
  clones those) finds exactly the outputs of each kernel. It asks the active Triton driver
  for the target, so the subprocess stands in an sm_90 target for the missing GPU.

Skipped, with the reason, only when nvcc or Triton is missing.
"""

import glob
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUB = os.path.join(ROOT, "tests", "cuda_stub")
CU_FILES = sorted(glob.glob(os.path.join(ROOT, "csrc", "cuda", "*.cu")))
BINDING_FILES = sorted(glob.glob(os.path.join(ROOT, "csrc", "cuda", "*.cpp")))
NVCC_FLAGS = ["-std=c++17", "-O3", "-arch=sm_90", "-c"]


def _nvcc():
    found = shutil.which("nvcc")
    if found is None and os.path.exists("/usr/local/cuda/bin/nvcc"):
        found = "/usr/local/cuda/bin/nvcc"
    return found


NVCC = _nvcc()
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc not found (install the CUDA toolkit to check the .cu files)")


def _compile(args, tmp_path):
    out = tmp_path / "out.o"
    result = subprocess.run([NVCC, *NVCC_FLAGS, *args, "-o", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, f"nvcc failed:\n{result.stderr[-4000:]}"
    assert out.stat().st_size > 0


def test_cuda_sources_exist():
    assert [os.path.basename(f) for f in CU_FILES] == ["rank_hinge_kernel.cu"]
    assert [os.path.basename(f) for f in BINDING_FILES] == ["rank_hinge_cuda.cpp"]


@needs_nvcc
@pytest.mark.parametrize("path", CU_FILES, ids=os.path.basename)
def test_cu_compiles_for_sm90(path, tmp_path):
    _compile([path], tmp_path)


@needs_nvcc
@pytest.mark.parametrize("path", BINDING_FILES, ids=os.path.basename)
def test_binding_compiles_against_torch_headers(path, tmp_path):
    from torch.utils.cpp_extension import include_paths

    includes = [f"-I{p}" for p in include_paths()] + [f"-I{STUB}"]
    # -w: torch's headers warn about C++20 extensions under -std=c++17.
    _compile([path, *includes, "-w"], tmp_path)


_TRITON_COMPILE = textwrap.dedent(
    """
    import itertools, sys
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from repose_ext import _triton
    from repose_ext.kernels import rank_hinge as k

    target = GPUTarget("cuda", 90, 32)
    kernels = {"short": k._rank_hinge_short_kernel, "rows": k._rank_hinge_rows_kernel, "reduce": k._sum_partials_kernel}
    scalars = {"S": "i32", "N": "i32", "KB": "i32", "window": "i32",
               "margin_hi": "fp32", "margin_lo": "fp32", "margin_lo2": "fp32"}
    # Series lengths of the benchmark shapes: J = 17 joints, T = 243 and 4096 frames.
    shapes = [(32 * 243, 17), (32 * 17, 243), (17, 4096)]
    done = set()
    for (s, n), dtype, on in itertools.product(shapes, ("fp32", "fp64"), (True, False)):
        for name, (grid, blocks, warps) in _triton.plan_launch(s, n).items():
            fn = kernels[name]
            consts = dict(blocks)
            if name != "reduce":
                consts.update(HAS_WEIGHT=on, NEED_GRAD=on, NEED_ACTIVE=on)
            key = (name, dtype, tuple(sorted(consts.items())), warps)
            if key in done:
                continue
            done.add(key)
            sig = {a: "constexpr" if a in consts else scalars.get(a, "*" + dtype) for a in fn.arg_names}
            out = triton.compile(ASTSource(fn, sig, constexprs=consts), target=target, options={"num_warps": warps})
            cubin = out.asm["cubin"]
            assert cubin[:4] == b"\\x7fELF", name
            print(name, dtype, consts, len(cubin))
    print("compiled", len(done))
    """
)


def test_triton_kernels_compile_to_sm90_cubin():
    pytest.importorskip("triton", reason="Triton is not installed (pip install triton)")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run(
        [sys.executable, "-c", _TRITON_COMPILE], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600
    )
    assert result.returncode == 0, f"Triton compile failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    assert "compiled" in result.stdout


_TRITON_WRITES = textwrap.dedent(
    """
    import torch
    from triton.backends.compiler import GPUTarget
    from triton.runtime import driver

    class _Sm90:  # no GPU here: only the target is asked for
        def get_current_target(self):
            return GPUTarget("cuda", 90, 32)

    driver.set_active(_Sm90())
    from torch._higher_order_ops.triton_kernel_wrap import identify_accessed_tensors
    from repose_ext.kernels import rank_hinge as k

    def writes(kernel, **kwargs):
        accesses = identify_accessed_tensors(kernel, kwargs, {})
        return sorted(dep.name for dep in accesses.read_writes.writes)

    s, n, kb = 8, 100, 2
    p, g, w = torch.randn(s, n), torch.randn(s, n), torch.rand(s, n)
    stats, grad, partial, dummy = torch.empty(s, 2), torch.empty(s, n), torch.empty(s, kb, 2), torch.empty(1)
    margin = dict(margin_hi=0.1, margin_lo=0.0, margin_lo2=0.0)
    for need_grad in (True, False):
        flags = dict(HAS_WEIGHT=True, NEED_GRAD=need_grad, NEED_ACTIVE=True)
        g_out = grad if need_grad else dummy
        got = writes(k._rank_hinge_short_kernel, pred_ptr=p[:, :17].contiguous(), gt_ptr=g[:, :17].contiguous(), weight_ptr=w[:, :17].contiguous(),
                     stats_ptr=stats, grad_ptr=g_out, S=s, N=17, window=17, **margin, **flags, BLOCK_S=2, BLOCK_N=32)
        assert got == (["grad_ptr", "stats_ptr"] if need_grad else ["stats_ptr"]), got
        got = writes(k._rank_hinge_rows_kernel, pred_ptr=p, gt_ptr=g, weight_ptr=w, grad_ptr=g_out,
                     partial_ptr=partial, N=n, KB=kb, window=n, **margin, **flags, BLOCK_K=64, BLOCK_L=32)
        assert got == (["grad_ptr", "partial_ptr"] if need_grad else ["partial_ptr"]), got
    got = writes(k._sum_partials_kernel, partial_ptr=partial, stats_ptr=stats, S=s, KB=kb, BLOCK_S=8, BLOCK_B=2)
    assert got == ["stats_ptr"], got
    print("writes ok")
    """
)


def test_torch_compile_sees_what_each_triton_kernel_writes():
    pytest.importorskip("triton", reason="Triton is not installed (pip install triton)")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run(
        [sys.executable, "-c", _TRITON_WRITES], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600
    )
    assert result.returncode == 0, f"mutation analysis check failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    assert "writes ok" in result.stdout
