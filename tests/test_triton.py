"""Triton backend vs the reference (repose_ext.reference), loss and gradient.

Without a GPU the kernels run on CPU tensors under Triton's interpreter: tests/conftest.py
sets TRITON_INTERPRET=1 before anything imports the kernels. The interpreter costs about
2 ms per program, so the shapes are tiny (B <= 2, T <= 32) and a shrunken LaunchConfig
reaches every code path (several row blocks per series, several column tiles, the partial
reduction, windows that cut tiles). On a GPU the same tests run the compiled kernels.
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

HAS_CUDA = torch.cuda.is_available()
DEVICE = "cuda" if HAS_CUDA else "cpu"

pytestmark = [
    pytest.mark.skipif(
        not HAS_CUDA and os.environ.get("TRITON_INTERPRET") != "1",
        reason="no GPU and TRITON_INTERPRET is not 1 (tests/conftest.py sets it before repose_ext is imported)",
    ),
    pytest.mark.skipif(
        "triton" not in repose_ext.available_backends(),
        reason=f"backend 'triton' unavailable: {_triton.TRITON_ERROR or 'see repose_ext._triton'}",
    ),
]

# Every loop of the kernels runs more than once with these block sizes at N >= 9.
TINY = _triton.LaunchConfig(short_max_n=4, short_tile=32, block_k=4, block_l=4, reduce_series=2, reduce_blocks=2)
CONFIGS = {"default": _triton.DEFAULT_CONFIG, "tiny": TINY}

TOL = {  # (rtol, atol) of the public losses against the float64 reference, per input dtype
    torch.float64: (1e-10, 1e-12),
    torch.float32: (1e-5, 1e-6),
    torch.float16: (2e-3, 1e-4),
    torch.bfloat16: (1.6e-2, 1e-3),
}


def _series(s, n, dtype, ties=True):
    """Random (S, N) pred/gt/weight; gt on a coarse grid so that ties occur."""
    pred = torch.randn(s, n, dtype=dtype)
    gt = torch.randint(-3, 4, (s, n)).to(dtype) if ties else torch.randn(s, n, dtype=dtype)
    weight = torch.rand(s, n, dtype=dtype)
    return pred.to(DEVICE), gt.to(DEVICE), weight.to(DEVICE)


def reference_stats(pred, gt, weight, margin, window):
    """Per-series [hinge sum, active weight] and d(hinge sums)/d pred, from the reference in float64."""
    s, n = pred.shape
    win = None if window < 0 else window
    p = pred.detach().double().requires_grad_(True)
    g = gt.double()
    w = None if weight is None else weight.double()

    def per_series(values, margin_):
        return torch.stack(
            [
                reference.pairwise_rank_hinge(
                    values[i].view(1, 1, n), g[i].view(1, 1, n), None if w is None else w[i].view(1, 1, n),
                    margin_, win, "sum",
                )
                for i in range(s)
            ]
        )  # fmt: skip

    loss = per_series(p, margin)
    (grad,) = torch.autograd.grad(loss.sum(), p)
    # With all predictions equal and margin 1 every active pair costs exactly 1.
    active = per_series(torch.zeros_like(p), 1.0)
    return torch.stack([loss.detach(), active], dim=1), grad


# (S, N, window, weighted, margin, need_grad, need_active, dtype): each option and kernel path at least once.
LAUNCH_CASES = [
    (7, 1, -1, False, 0.0, True, True, torch.float32),  # N = 1: no pairs
    (5, 2, -1, True, 0.3, True, True, torch.float64),
    (6, 17, -1, False, 0.0, True, False, torch.float32),  # the spatial default (J = 17)
    (6, 17, 3, True, 0.25, True, True, torch.float64),
    (3, 31, 0, True, 0.1, True, True, torch.float32),  # window 0: only the diagonal
    (3, 32, 40, False, 0.0, False, True, torch.float32),  # window >= N: all pairs
    (2, 33, -1, True, 0.0, True, True, torch.float32),  # first length of the long-series kernel
    (1, 70, 9, True, 0.1, True, True, torch.float32),  # two row blocks with the default config
    (2, 27, 5, True, 0.5, True, False, torch.float64),
    (3, 19, 2, False, 0.2, False, False, torch.float32),
]


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("s,n,window,weighted,margin,need_grad,need_active,dtype", LAUNCH_CASES)
def test_launcher_matches_reference(config, s, n, window, weighted, margin, need_grad, need_active, dtype):
    if config == "tiny" and s * n > 60:
        s = max(1, 60 // n)  # the interpreter pays per program: keep the tiny-block runs short
    pred, gt, weight = _series(s, n, dtype)
    w = weight if weighted else None
    stats, grad = _triton.launch_rank_hinge(pred, gt, w, margin, window, need_grad, need_active, CONFIGS[config])
    expected, expected_grad = reference_stats(pred, gt, w, margin, window)
    assert stats.shape == (s, 2) and stats.dtype == dtype
    rtol, atol = TOL[dtype]
    torch.testing.assert_close(stats[:, 0].double().cpu(), expected[:, 0], rtol=rtol, atol=atol)
    if need_active:
        torch.testing.assert_close(stats[:, 1].double().cpu(), expected[:, 1], rtol=rtol, atol=atol)
    else:
        assert torch.all(stats[:, 1] == 0)
    if need_grad:
        assert grad.shape == (s, n) and grad.dtype == dtype
        torch.testing.assert_close(grad.double().cpu(), expected_grad, rtol=rtol, atol=atol)
    else:
        assert grad.shape == (0,)


def test_tiny_config_takes_every_path():
    """LAUNCH_CASES reach the short kernel, the rows kernel with one row block, and with several."""
    assert set(_triton.plan_launch(6, 17)) == {"short"}
    assert set(_triton.plan_launch(2, 33)) == {"rows"}
    assert set(_triton.plan_launch(1, 70)) == {"rows", "reduce"}
    assert set(_triton.plan_launch(3, 19, TINY)) == {"rows", "reduce"}
    assert set(_triton.plan_launch(5, 2, TINY)) == {"short"}
    _, blocks, _ = _triton.plan_launch(2, 27, TINY)["rows"]
    assert blocks["BLOCK_L"] < 27 and blocks["BLOCK_K"] < 27  # several column tiles and row blocks


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


# (B, T, J, weighted, margin, window): odd sizes, T = 1, J = 2, T > 32 frames never (interpreter).
API_CASES = [
    (2, 9, 5, True, 0.1, 2),
    (1, 32, 17, False, 0.0, None),
    (2, 1, 3, True, 0.0, None),  # T = 1
    (1, 5, 2, False, 0.2, 1),  # J = 2
]


# Half precision only adds casts around the float32 op: one shape is enough for it.
API_CASE_DTYPES = [(0, torch.float16), (0, torch.bfloat16)] + [
    (case, dtype) for case in range(len(API_CASES)) for dtype in (torch.float32, torch.float64)
]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "active"])
@pytest.mark.parametrize("term", ["spatial", "temporal"])
@pytest.mark.parametrize("case,dtype", API_CASE_DTYPES)
def test_public_losses_match_reference(case, dtype, term, reduction):
    b, t, j, weighted, margin, window = API_CASES[case]
    pred = torch.randn(b, t, j, 3, dtype=dtype).to(DEVICE).requires_grad_(True)
    gt = torch.randn(b, t, j, 3, dtype=dtype).to(DEVICE)
    weight = torch.rand(b, t, j, dtype=dtype).to(DEVICE) if weighted else None

    loss = _public_loss(term, pred, gt, weight, margin, window, reduction, "triton")
    (grad,) = torch.autograd.grad(loss.sum() * 2.5, pred)  # grad_output != 1

    pred64 = pred.detach().double().requires_grad_(True)
    w64 = None if weight is None else weight.double()
    expected = _public_loss(term, pred64, gt.double(), w64, margin, window, reduction, "reference")
    (expected_grad,) = torch.autograd.grad(expected.sum() * 2.5, pred64)

    assert loss.dtype == dtype and grad.dtype == dtype and loss.shape == expected.shape
    rtol, atol = TOL[dtype]
    # Rounded to the output dtype first: a float16 "sum" can overflow to inf, as it should.
    torch.testing.assert_close(loss.double(), expected.to(dtype).double(), rtol=rtol, atol=atol)
    torch.testing.assert_close(grad.double(), expected_grad.to(dtype).double(), rtol=rtol, atol=atol)


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
    pred, gt, weight = _series(2, 20, torch.float32, ties=False)
    first = _triton.launch_rank_hinge(pred, gt, weight, 0.1, -1, True, True, TINY)
    for _ in range(2):
        again = _triton.launch_rank_hinge(pred, gt, weight, 0.1, -1, True, True, TINY)
        assert torch.equal(again[0], first[0]) and torch.equal(again[1], first[1])


def test_nan_prediction_propagates():
    pred, gt, _ = _series(3, 17, torch.float32)
    pred[1, 4] = math.nan
    long_pred, long_gt, _ = _series(2, 40, torch.float32)
    long_pred[0, 30] = math.nan
    for p, g in ((pred, gt), (long_pred, long_gt)):
        stats, grad = _triton.launch_rank_hinge(p, g, None, 0.0, 2, True, False)
        bad = torch.isnan(p).any(dim=1)
        assert torch.isnan(stats[:, 0]).eq(bad).all()
        # the reference's gradient at NaN (its relu passes the gradient unless the difference is <= 0)
        _, expected_grad = reference_stats(p, g, None, 0.0, 2)
        torch.testing.assert_close(grad.double().cpu(), expected_grad, rtol=1e-5, atol=1e-6)


def test_empty_inputs():
    for s, n in ((0, 5), (3, 0)):
        pred = torch.zeros(s, n, device=DEVICE)
        stats, grad = _triton.launch_rank_hinge(pred, pred, None, 0.0, -1, True, True)
        assert stats.shape == (s, 2) and torch.all(stats == 0) and grad.shape == (s, n)


def test_op_checks_its_arguments():
    op = torch.ops.repose.rank_hinge_triton
    p, g, _ = _series(2, 5, torch.float32)
    with pytest.raises(TypeError, match="pred must be float32 or float64; got torch.float16"):
        op(p.half(), g.half(), None, 0.0, -1, False, False)
    with pytest.raises(ValueError, match=r"gt must have the shape of pred \(2, 5\); got \(2, 4\)"):
        op(p, g[:, :4].contiguous(), None, 0.0, -1, False, False)
    with pytest.raises(ValueError, match="weight must be contiguous"):
        op(p, g, torch.rand(5, 2, device=DEVICE).t(), 0.0, -1, False, False)
    with pytest.raises(TypeError, match="gt must have dtype torch.float32 like pred; got torch.float64"):
        op(p, g.double(), None, 0.0, -1, False, False)
    with pytest.raises(ValueError, match=r"pred must have shape \(S, N\); got \(10,\)"):
        op(p.view(-1), g.view(-1), None, 0.0, -1, False, False)
    with pytest.raises(ValueError, match="window must be -1 .* got -2"):
        op(p, g, None, 0.0, -2, False, False)


def test_opcheck():
    """Schema, fake impl, autograd registration and AOT dispatch of repose::rank_hinge_triton."""
    p, g, w = _series(3, 6, torch.float64)
    op = torch.ops.repose.rank_hinge_triton.default
    torch.library.opcheck(op, (p.requires_grad_(True), g, w, 0.1, 2, True, True))
    # need_grad=False promises that no backward follows: pred does not require grad.
    torch.library.opcheck(op, (p.detach(), g, None, 0.0, -1, False, False))


def test_compile_fullgraph():
    """torch.compile traces the op without graph breaks (the interpreter runs under aot_eager)."""
    pred = torch.randn(2, 6, 5, 3, device=DEVICE, requires_grad=True)
    gt = torch.randn(2, 6, 5, 3, device=DEVICE)

    def loss_fn(p, g):
        return repose_ext.spatial_depth_rank_loss(p, g, margin=0.1, backend="triton") + repose_ext.temporal_depth_rank_loss(
            p, g, window=2, backend="triton"
        )

    compiled = torch.compile(loss_fn, fullgraph=True, backend="inductor" if HAS_CUDA else "aot_eager")
    got = compiled(pred, gt)
    (got_grad,) = torch.autograd.grad(got, pred)
    expected = loss_fn(pred, gt)
    (expected_grad,) = torch.autograd.grad(expected, pred)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(got_grad, expected_grad)


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
        "assert not b.available and 'pip install triton' in b.fix, b\n"
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
