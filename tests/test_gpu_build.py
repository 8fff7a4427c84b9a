"""The GPU code compiles for sm_90 (H100/H200) on a machine without a GPU.

* Every csrc/cuda/*.cu compiles with ``nvcc -std=c++17 -O3 -arch=sm_90 -c`` (they are
  torch-free), and every csrc/cuda/*.cpp (the torch binding) with the torch headers plus
  tests/cuda_stub (a stand-in for the generated ``c10/cuda/impl/cuda_cmake_macros.h`` that
  CPU builds of torch lack). Linking needs a CUDA torch and is left to the GPU check
  (scripts/gpu_check.sh).
* The Triton kernel compiles to a cubin for sm_90 with the tiles the launcher picks
  for the benchmark shapes, in a subprocess without TRITON_INTERPRET (under the interpreter
  ``@triton.jit`` returns functions that cannot be compiled).
* The CUDA kernels run on the CPU, one std::thread per CUDA thread (tests/cuda_emulation),
  and match repose_ext.reference: this checks their logic (tiling, row ranges, windows,
  reductions) where no GPU runs them. It needs g++ with C++20 and the CUDA headers.
* torch.compile's analysis of user Triton kernels (which arguments a kernel writes; it
  clones those) finds exactly the outputs of the kernel. It asks the active Triton driver
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
import torch

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
    assert [os.path.basename(f) for f in CU_FILES] == ["depth_rank_kernel.cu"]
    assert [os.path.basename(f) for f in BINDING_FILES] == ["depth_rank_cuda.cpp"]


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
    import itertools
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from repose_ext import _triton
    from repose_ext.kernels.depth_rank import depth_rank_loss_kernel as fn

    target = GPUTarget("cuda", 90, 32)
    floats = ("margin_hi", "margin_lo", "margin_lo2")
    pointers = ("pred_ptr", "gt_ptr", "w_ptr", "grad_ptr", "loss_ptr", "active_ptr")
    # The benchmark shapes: J = 17 joints, T = 243 and 4096 frames; both terms, and each alone.
    done = set()
    for (t, j), dtype, on, terms in itertools.product(((243, 17), (4096, 17)), ("fp32", "fp64"), (True, False),
                                                     ((True, True), (True, False), (False, True))):
        plan = _triton.plan_launch(t, j, *terms)
        consts = {k: plan[k] for k in ("SP_S", "SP_K", "SP_L", "TM_K", "TM_L")}
        consts.update(SPATIAL=terms[0], TEMPORAL=terms[1], HAS_WEIGHT=on, NEED_GRAD=on, NEED_ACTIVE=on)
        key = (dtype, tuple(sorted(consts.items())))
        if key in done:
            continue
        done.add(key)
        sig = {a: "constexpr" if a in consts else "*" + dtype if a in pointers else "*fp64" if "scale" in a
               else "fp32" if a in floats else "i64" for a in fn.arg_names}
        out = triton.compile(ASTSource(fn, sig, constexprs=consts), target=target,
                             options={"num_warps": _triton.DEFAULT_CONFIG.warps})
        cubin = out.asm["cubin"]
        assert cubin[:4] == b"\\x7fELF"
        print(dtype, consts, len(cubin))
    print("compiled", len(done))
    """
)


def _run_compiled_triton(code):
    """Runs a Python snippet in a fresh process without the Triton interpreter (real compilation)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)


def test_triton_kernels_compile_to_sm90_cubin():
    pytest.importorskip("triton", reason="Triton is not installed (pip install triton)")
    result = _run_compiled_triton(_TRITON_COMPILE)
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
    from repose_ext import _triton
    from repose_ext.kernels.depth_rank import depth_rank_loss_kernel as kernel

    b, t, j = 2, 30, 17
    p, g, w = torch.randn(b, t, j, 3), torch.randn(b, t, j, 3), torch.rand(b, t, j)
    plan = _triton.plan_launch(t, j, True, True)
    per_sample = plan["n_sp"] + plan["n_tm"]
    loss, active, grad, dummy = torch.empty(b * per_sample), torch.empty(b * per_sample, 2), torch.zeros_like(p), torch.empty(1)
    scale = torch.ones(b, dtype=torch.float64)
    strides = dict(p0=2, p_sb=t * j * 3, p_st=j * 3, p_sj=3, g0=2, g_sb=t * j * 3, g_st=j * 3, g_sj=3,
                   w_sb=t * j, w_st=j, w_sj=1, d0=2, d_sb=t * j * 3, d_st=j * 3, d_sj=3)
    for need_grad in (True, False):
        accesses = identify_accessed_tensors(kernel, dict(
            pred_ptr=p, gt_ptr=g, w_ptr=w, grad_ptr=grad if need_grad else dummy, sscale_ptr=scale,
            tscale_ptr=scale, loss_ptr=loss, active_ptr=active, T=t, J=j, n_sp=plan["n_sp"], n_tm=plan["n_tm"],
            sp_kb=plan["sp_kb"], tm_kb=plan["tm_kb"], **strides, window=t, margin_hi=0.1, margin_lo=0.0,
            margin_lo2=0.0, SPATIAL=True, TEMPORAL=True, HAS_WEIGHT=True, NEED_GRAD=need_grad, NEED_ACTIVE=True,
            **{k: plan[k] for k in ("SP_S", "SP_K", "SP_L", "TM_K", "TM_L")}), {})
        got = sorted(dep.name for dep in accesses.read_writes.writes)
        expected = ["active_ptr", "grad_ptr", "loss_ptr"] if need_grad else ["active_ptr", "loss_ptr"]
        assert got == expected, got
    print("writes ok")
    """
)


def test_torch_compile_sees_what_each_triton_kernel_writes():
    pytest.importorskip("triton", reason="Triton is not installed (pip install triton)")
    result = _run_compiled_triton(_TRITON_WRITES)
    assert result.returncode == 0, f"mutation analysis check failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    assert "writes ok" in result.stdout


def _cuda_include():
    for candidate in ([os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(NVCC))), "include")] if NVCC else []) + [
        "/usr/local/cuda/include"
    ]:
        if os.path.exists(os.path.join(candidate, "cuda_runtime_api.h")):
            return candidate
    return None


CUDA_INCLUDE = _cuda_include()
GXX = shutil.which("g++")
EMULATION = os.path.join(ROOT, "tests", "cuda_emulation")


@pytest.fixture(scope="module")
def emulated_cuda(tmp_path_factory):
    """Path of the CPU-emulation binary of the CUDA kernel (csrc/cuda/depth_rank_device.cuh, unchanged)."""
    if GXX is None or CUDA_INCLUDE is None:
        pytest.skip("needs g++ and the CUDA headers (cuda_runtime_api.h) to emulate the CUDA kernels")
    binary = tmp_path_factory.mktemp("cuda_emulation") / "emulate"
    cmd = [GXX, "-std=c++20", "-O1", "-pthread", f"-I{os.path.join(ROOT, 'csrc', 'cuda')}", f"-I{CUDA_INCLUDE}",
           os.path.join(EMULATION, "emulate.cpp"), "-o", str(binary)]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, f"g++ failed:\n{result.stderr[-4000:]}"
    return str(binary)


def _emulate(binary, pred, gt, weight, margin, window, spatial, temporal, need_grad, poses):
    b, t, j = pred.shape
    kind = "f" if pred.dtype == torch.float32 else "d"
    values = [pred, gt] + ([weight] if weight is not None else [])
    stdin = "\n".join(" ".join(repr(float(x)) for x in v.flatten().tolist()) for v in values)
    args = [binary, kind, str(b), str(t), str(j), str(int(poses)), str(window), repr(float(margin)),
            str(int(weight is not None)), str(int(spatial)), str(int(temporal)), str(int(need_grad))]  # fmt: skip
    result = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert lines[0] == "status 0", lines[0]
    sums = torch.tensor([[float(v) for v in line.split()] for line in lines[1 : 1 + b]], dtype=torch.float64)
    grad = None
    if need_grad:
        grad = torch.tensor([float(v) for v in lines[1 + b : 1 + b + b * t * j]], dtype=torch.float64).view(b, t, j)
    return sums.view(b, 3), grad


# (B, T, J, window, weighted, margin, spatial, temporal, need_grad, poses, dtype): one tile and several,
# windows that cut the tile band, one term at a time, T = 1 and J = 1, J over one tile.
EMULATED_CASES = [
    (2, 9, 17, -1, False, 0.0, True, True, True, True, "float32"),
    (1, 70, 5, 3, True, 0.1, True, True, True, False, "float64"),
    (2, 40, 3, -1, True, 0.3, False, True, True, True, "float32"),
    (1, 100, 2, 40, False, 0.25, True, True, True, False, "float64"),
    (3, 1, 4, -1, True, 0.2, True, True, True, True, "float64"),
    (2, 5, 1, 0, True, 0.05, True, True, False, False, "float32"),
    (1, 3, 45, -1, True, 0.0, True, False, True, True, "float64"),
]


@pytest.mark.parametrize("case", EMULATED_CASES, ids=str)
def test_cuda_kernel_emulated_on_cpu_matches_reference(emulated_cuda, case):
    from op_reference import depth_op_reference

    b, t, j, window, weighted, margin, spatial, temporal, need_grad, poses, dtype = case
    dtype = getattr(torch, dtype)
    gen = torch.Generator().manual_seed(b * 1000 + t * 10 + j)
    pred = torch.randn(b, t, j, generator=gen, dtype=dtype)
    gt = torch.randint(-3, 4, (b, t, j), generator=gen).to(dtype)  # ties
    weight = torch.rand(b, t, j, generator=gen, dtype=dtype) if weighted else None
    sums, grad = _emulate(emulated_cuda, pred, gt, weight, margin, window, spatial, temporal, need_grad, poses)
    scale = 1.0 + torch.arange(b, dtype=torch.float64)  # the emulator's factors
    expected, expected_active, expected_grad = depth_op_reference(
        pred, gt, weight, margin, window, scale if spatial else None, scale if temporal else None)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(sums[:, 0], expected, **tol)
    torch.testing.assert_close(sums[:, 1:], expected_active, **tol)
    if need_grad:
        torch.testing.assert_close(grad, expected_grad, **tol)


def test_cuda_kernel_emulated_nan_prediction(emulated_cuda):
    from op_reference import depth_op_reference

    pred = torch.randn(1, 40, 3, dtype=torch.float64)
    gt = torch.randn(1, 40, 3, dtype=torch.float64)
    pred[0, 33, 1] = float("nan")
    sums, grad = _emulate(emulated_cuda, pred, gt, None, 0.0, 5, True, True, True, False)
    one = torch.ones(1, dtype=torch.float64)
    expected, _, expected_grad = depth_op_reference(pred, gt, None, 0.0, 5, one, one)
    assert torch.isnan(sums[0, 0]) and torch.isnan(expected[0])
    torch.testing.assert_close(grad, expected_grad)


def test_cuda_tiles_cover_each_pair_once():
    """The tile plan (csrc/cuda/depth_rank_kernel.cuh, term_tiles) written out: upper-triangle tiles within the
    band of the window. Checked by the emulation above; here the count for the benchmark shapes."""
    def tiles(n, window):
        nt = -(-n // 32)
        band = min(nt - 1, -(-(n if window < 0 else min(window, n)) // 32))
        return sum(nt - o for o in range(band + 1))

    assert tiles(17, -1) == 1 and tiles(243, -1) == 36 and tiles(4096, -1) == 128 * 129 // 2
    assert tiles(243, 10) == 8 + 7
