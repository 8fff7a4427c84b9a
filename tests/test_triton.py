"""Triton backend vs the reference (repose_ext.reference), loss and gradient.

Without a GPU the kernels run on CPU tensors under Triton's interpreter: tests/conftest.py
sets TRITON_INTERPRET=1 before anything imports the kernels. The interpreter costs about
2 ms per program, so the shapes are tiny (B <= 2, T <= 32) and a shrunken LaunchConfig
reaches every code path (several row blocks of both terms, several column tiles, windows that
cut tiles). On a GPU the same tests run the compiled kernels.
"""

import math
import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("triton", reason="Triton is not installed (pip install triton)")

import repose_ext  # noqa: E402
from repose_ext import _triton, reference  # noqa: E402
from op_reference import depth_op_reference  # noqa: E402

HAS_CUDA = torch.cuda.is_available()
DEVICE = "cuda" if HAS_CUDA else "cpu"

pytestmark = [
    pytest.mark.skipif(
        not HAS_CUDA and os.environ.get("TRITON_INTERPRET") != "1",
        reason="no GPU and TRITON_INTERPRET is not 1 (tests/conftest.py sets it before repose_ext is imported)",
    ),
    pytest.mark.skipif(
        "triton" not in repose_ext.available_backends(),
        reason=f"backend 'triton' unavailable: {_triton.unavailable()}",
    ),
]

# Every loop of the kernel runs more than once with these tiles: J > 4 joints take several row blocks and column
# tiles of the spatial term, T > 4 frames several of the temporal term.
TINY = _triton.LaunchConfig(spatial_tile=32, spatial_max_j=4, temporal_k=4, temporal_l=4)
CONFIGS = {"default": _triton.DEFAULT_CONFIG, "tiny": TINY}

TOL = {  # (rtol, atol) of the public losses against the float64 reference, per input dtype
    torch.float64: (1e-10, 1e-12),
    torch.float32: (1e-5, 1e-6),
    torch.float16: (2e-3, 1e-4),
    torch.bfloat16: (1.6e-2, 1e-3),
}


def _poses(b, t, j, dtype, ties=True, depth_only=False):
    """Random pred/gt poses (B, T, J, 3) (or depths) and weights; gt on a coarse grid so that ties occur."""
    shape = (b, t, j) if depth_only else (b, t, j, 3)
    pred = torch.randn(*shape, dtype=dtype)
    gt = torch.randint(-3, 4, shape).to(dtype) if ties else torch.randn(*shape, dtype=dtype)
    weight = torch.rand(b, t, j, dtype=dtype)
    return pred.to(DEVICE), gt.to(DEVICE), weight.to(DEVICE)


def reference_op(pred, gt, weight, margin, window, spatial, temporal):
    ones = torch.ones(pred.shape[0], dtype=torch.float64)
    return depth_op_reference(pred, gt, weight, margin, window, ones if spatial else None, ones if temporal else None)


# (B, T, J, depth_only, window, weighted, margin, spatial, temporal, need_grad, need_active, dtype)
LAUNCH_CASES = [
    (2, 1, 3, False, -1, False, 0.0, True, True, True, True, torch.float32),  # T = 1: no temporal pairs
    (2, 6, 5, False, -1, True, 0.3, True, True, True, True, torch.float64),
    (1, 9, 17, False, -1, False, 0.0, True, False, True, False, torch.float32),  # spatial only, J = 17
    (2, 11, 3, True, 3, True, 0.25, False, True, True, True, torch.float64),  # temporal only, window, depths
    (1, 13, 2, False, 0, True, 0.1, True, True, True, True, torch.float32),  # window 0: no temporal pairs
    (1, 10, 4, False, 40, False, 0.0, True, True, False, True, torch.float32),  # window >= T: all pairs
    (1, 40, 3, False, 9, True, 0.1, True, True, True, False, torch.float64),  # several frame row blocks
    (2, 5, 40, True, -1, True, 0.0, True, True, True, True, torch.float32),  # J = 40: joint row blocks
    (1, 7, 6, False, 2, False, 0.2, True, True, False, False, torch.float32),
]


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("case", LAUNCH_CASES, ids=str)
def test_launcher_matches_reference(config, case):
    b, t, j, depth_only, window, weighted, margin, spatial, temporal, need_grad, need_active, dtype = case
    pred, gt, weight = _poses(b, t, j, dtype, depth_only=depth_only)
    w = weight if weighted else None
    ones = torch.ones(b, dtype=torch.float64, device=DEVICE)
    loss, active, grad = _triton.launch_depth_rank_loss(
        pred, gt, w, margin, window, ones if spatial else None, ones if temporal else None, need_grad, need_active,
        CONFIGS[config])
    expected, expected_active, expected_grad = reference_op(pred, gt, w, margin, window, spatial, temporal)
    assert loss.shape == (b,) and active.shape == (b, 2) and loss.dtype == active.dtype == dtype
    rtol, atol = TOL[dtype]
    torch.testing.assert_close(loss.double().cpu(), expected, rtol=rtol, atol=atol)
    if need_active:
        torch.testing.assert_close(active.double().cpu(), expected_active, rtol=rtol, atol=atol)
    else:
        assert torch.all(active == 0)
    if need_grad:
        assert grad.shape == pred.shape and grad.dtype == dtype
        torch.testing.assert_close(grad.double().cpu(), expected_grad, rtol=rtol, atol=atol)
    else:
        assert grad.shape == (0,)


def test_tiny_config_takes_every_path():
    """LAUNCH_CASES reach several row blocks and column tiles of both terms under the tiny tiles."""
    plan = _triton.plan_launch(40, 3, True, True, TINY)
    assert plan["tm_kb"] > 1 and plan["TM_L"] < 40 and plan["SP_S"] > 1
    plan = _triton.plan_launch(5, 40, True, True, TINY)
    assert plan["sp_kb"] > 1 and plan["SP_L"] < 40
    default = _triton.plan_launch(243, 17, True, False)
    assert (default["SP_K"], default["n_tm"]) == (32, 0) and default["SP_S"] * 32 * 32 == 2048


@pytest.mark.parametrize("margin", [0.0, 0.1, -0.3, 1 / 3, 1e-9, 12345.678901234567])
def test_split_margin_is_exact(margin):
    hi, lo, lo2 = _triton.split_margin(margin, torch.float64)
    for part in (hi, lo, lo2):
        assert torch.tensor(part, dtype=torch.float32).item() == part  # each part is a float32
    assert (torch.tensor(hi, dtype=torch.float64) + lo + lo2).item() == margin
    assert _triton.split_margin(margin, torch.float32) == (torch.tensor(margin, dtype=torch.float32).item(), 0.0, 0.0)


def _public_loss(term, pred, gt, weight, margin, window, reduction, backend):
    if term == "spatial":
        return repose_ext.spatial_depth_rank_loss(pred, gt, weight, margin=margin, reduction=reduction, backend=backend)
    return repose_ext.temporal_depth_rank_loss(
        pred, gt, weight, margin=margin, window=window, reduction=reduction, backend=backend
    )


# The public losses on this backend against the reference (shapes, options, dtypes): the backend matrix of
# tests/test_rank_losses.py. Here: the launcher and the op itself.


def test_ties_match_reference_exactly():
    """Small integers: every sum is exact, so the tie rule (strict <, relu'(0) = 0) must match bit for bit."""
    pred = torch.randint(-2, 3, (2, 12, 7, 3)).float().to(DEVICE).requires_grad_(True)
    gt = torch.randint(-2, 3, (2, 12, 7, 3)).float().to(DEVICE)
    for term in ("spatial", "temporal"):
        loss = _public_loss(term, pred, gt, None, 0.0, None, "sum", "triton")
        (grad,) = torch.autograd.grad(loss, pred)
        expected = _public_loss(term, pred, gt, None, 0.0, None, "sum", "reference")
        (expected_grad,) = torch.autograd.grad(expected, pred)
        assert torch.equal(loss, expected)
        assert torch.equal(grad, expected_grad)


def test_deterministic():
    pred, gt, weight = _poses(2, 20, 6, torch.float32, ties=False)
    ones = torch.ones(2, dtype=torch.float64, device=DEVICE)
    first = _triton.launch_depth_rank_loss(pred, gt, weight, 0.1, -1, ones, ones, True, True, TINY)
    for _ in range(2):
        again = _triton.launch_depth_rank_loss(pred, gt, weight, 0.1, -1, ones, ones, True, True, TINY)
        assert all(torch.equal(x, y) for x, y in zip(again, first))


def test_nan_prediction_gives_the_reference_loss_and_gradient():
    for b, t, j, at in ((3, 4, 17, (1, 2, 4)), (2, 40, 3, (0, 30, 1))):
        pred, gt, _ = _poses(b, t, j, torch.float64)
        pred[at + (2,)] = math.nan
        ones = torch.ones(b, dtype=torch.float64, device=DEVICE)
        loss, _, grad = _triton.launch_depth_rank_loss(pred, gt, None, 0.0, 2, ones, ones, True, False, TINY)
        expected, _, expected_grad = reference_op(pred, gt, None, 0.0, 2, True, True)
        assert torch.isnan(loss.cpu()).equal(torch.isnan(expected))
        # the reference's gradient at NaN (its relu passes the gradient unless the difference is <= 0)
        torch.testing.assert_close(grad.cpu(), expected_grad)


def test_empty_inputs():
    for b, t, j in ((0, 5, 3), (2, 0, 3), (2, 4, 0)):
        pred = torch.zeros(b, t, j, 3, device=DEVICE)
        ones = torch.ones(b, dtype=torch.float64, device=DEVICE)
        loss, active, grad = _triton.launch_depth_rank_loss(pred, pred, None, 0.0, -1, ones, ones, True, True)
        assert loss.shape == (b,) and torch.all(loss == 0) and torch.all(active == 0) and grad.shape == pred.shape


def test_op_has_the_schema_of_the_cpu_op():
    op = _triton.load_op()
    mine, cpu = str(op._schema), str(torch.ops.repose.depth_rank_loss.default._schema)
    assert mine.replace("depth_rank_loss_triton", "depth_rank_loss") == cpu


def test_op_checks_its_arguments():
    op = _triton.load_op()
    p, g, _ = _poses(2, 5, 3, torch.float32)
    ones = torch.ones(2, dtype=torch.float64, device=DEVICE)
    with pytest.raises(TypeError, match="pred must be float32 or float64; got torch.float16"):
        op(p.half(), g.half(), None, 0.0, -1, ones, None, False, False)
    with pytest.raises(ValueError, match=r"gt must be \(2, 5, 3, 3\) torch.float32 .* got \(2, 4, 3, 3\)"):
        op(p, g[:, :4], None, 0.0, -1, ones, None, False, False)
    with pytest.raises(ValueError, match=r"gt must be .* got \(2, 5, 3, 3\) torch.float64"):
        op(p, g.double(), None, 0.0, -1, ones, None, False, False)
    with pytest.raises(ValueError, match=r"pred must have shape \(B, T, J, 3\) or \(B, T, J\); got \(30,\)"):
        op(p.reshape(-1)[:30], g.reshape(-1)[:30], None, 0.0, -1, ones, None, False, False)
    with pytest.raises(ValueError, match=r"temporal_scale must be \(2,\) float64"):
        op(p, g, None, 0.0, -1, None, ones.float(), False, False)
    with pytest.raises(ValueError, match="window must be -1 .* got -2"):
        op(p, g, None, 0.0, -2, None, ones, False, False)


def test_opcheck():
    """Schema, fake impl, autograd registration and AOT dispatch of repose::depth_rank_loss_triton."""
    p, g, w = _poses(2, 5, 4, torch.float64)
    f = torch.tensor([0.5, 2.0], dtype=torch.float64, device=DEVICE)
    op = _triton.load_op()
    torch.library.opcheck(op, (p.requires_grad_(True), g, w, 0.1, 2, f, f, True, True))
    # need_grad=False promises that no backward follows: pred does not require grad.
    torch.library.opcheck(op, (p.detach(), g, None, 0.0, -1, None, f, False, False))


_COMPILE = """
import torch, repose_ext
device = "cuda" if torch.cuda.is_available() else "cpu"
pred = torch.randn(2, 6, 5, 3, device=device, requires_grad=True)
gt = torch.randn(2, 6, 5, 3, device=device)

def loss_fn(p, g):
    return (repose_ext.spatial_depth_rank_loss(p, g, margin=0.1, backend="triton")
            + repose_ext.temporal_depth_rank_loss(p, g, window=2, backend="triton"))

# the first call of the backend in this process is the compiled one: the op is built while dynamo traces
compiled = torch.compile(loss_fn, fullgraph=True, backend="inductor" if device == "cuda" else "aot_eager")
got = compiled(pred, gt)
(got_grad,) = torch.autograd.grad(got, pred)
expected = loss_fn(pred, gt)
(expected_grad,) = torch.autograd.grad(expected, pred)
torch.testing.assert_close(got, expected)
torch.testing.assert_close(got_grad, expected_grad)
print("compiled ok")
"""


def test_compile_fullgraph():
    """torch.compile traces the op without graph breaks, also when the first call of the backend is compiled
    (a fresh process; the interpreter runs under aot_eager)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", _COMPILE], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0 and "compiled ok" in result.stdout, result.stderr[-3000:]


def test_backend_registration():
    backend = repose_ext.backends.resolve_backend("triton", torch.device(DEVICE))
    assert backend.name == "triton" and backend.op is not None
    # "auto" never picks the interpreter for CPU tensors.
    assert repose_ext.backends.resolve_backend("auto", torch.device("cpu")).name != "triton"


def test_import_without_triton():
    """Without Triton, repose_ext still imports and the backend says how to get it."""
    code = (
        "import sys; sys.modules['triton'] = None\n"
        "import torch, repose_ext\n"
        "b = repose_ext.backends._REGISTRY['triton']\n"
        "assert not b.available and 'pip install triton' in b.unavailable, b\n"
        "try:\n"
        "    repose_ext.spatial_depth_rank_loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), backend='triton')\n"
        "except RuntimeError as exc:\n"
        "    assert 'pip install triton' in str(exc), exc\n"
        "else:\n"
        "    raise AssertionError('no error')\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
