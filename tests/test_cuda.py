"""The GPU backends ("cuda": CUDA C++, "triton") vs the reference, on a CUDA GPU.

Run with ``pytest -m cuda`` (scripts/gpu_check.sh does); skipped without a GPU. On a GPU
machine a backend that is not available is a failure, with the fix in the message.
"""

import pytest
import torch

import repose_ext
from repose_ext import backends

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

BACKENDS = ["cuda", "triton"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    be = backends._REGISTRY.get(request.param)
    if be is None or not be.available:
        pytest.fail(f"backend {request.param!r} is not available on this GPU machine: {be.unavailable if be else 'not registered'}")
    return request.param


def _loss(term, pred, gt, weight=None, margin=0.0, window=None, reduction="mean", backend="auto"):
    if term == "spatial":
        return repose_ext.spatial_depth_rank_loss(pred, gt, weight, margin=margin, reduction=reduction, backend=backend)
    return repose_ext.temporal_depth_rank_loss(
        pred, gt, weight, margin=margin, window=window, reduction=reduction, backend=backend
    )


def _inputs(b, t, j, dtype, weighted, seed=0):
    gen = torch.Generator().manual_seed(seed)
    pred = torch.randn(b, t, j, 3, generator=gen).to("cuda", dtype).requires_grad_(True)
    gt = torch.randn(b, t, j, 3, generator=gen).to("cuda", dtype)
    weight = torch.rand(b, t, j, generator=gen).to("cuda", dtype) if weighted else None
    return pred, gt, weight




# Shapes, options and dtypes of the public losses against the reference: the backend matrix of
# tests/test_rank_losses.py, which runs these backends on a GPU. Here: what only a GPU shows.


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_small_integers_match_exactly(backend, dtype):
    """Integer depths with many ties: every sum is exact, so the tie rule must match bit for bit."""
    gen = torch.Generator().manual_seed(1)
    pred = torch.randint(-3, 4, (2, 64, 17, 3), generator=gen).to("cuda", dtype).requires_grad_(True)
    gt = torch.randint(-3, 4, (2, 64, 17, 3), generator=gen).to("cuda", dtype)
    for term in ("spatial", "temporal"):
        loss = _loss(term, pred, gt, reduction="sum", backend=backend)
        (grad,) = torch.autograd.grad(loss, pred)
        expected = _loss(term, pred, gt, reduction="sum", backend="reference")
        (expected_grad,) = torch.autograd.grad(expected, pred)
        assert torch.equal(loss, expected), term
        assert torch.equal(grad, expected_grad), term


def test_long_series_match_cpu_backend(backend):
    """T = 2048 frames: many row blocks and column tiles, against the (reference-tested) CPU op in float64."""
    pred, gt, weight = _inputs(1, 2048, 17, torch.float32, weighted=True, seed=3)
    for window in (None, 50):
        loss = _loss("temporal", pred, gt, weight, 0.05, window, "mean", backend)
        (grad,) = torch.autograd.grad(loss, pred)
        pred_cpu = pred.detach().cpu().double().requires_grad_(True)
        expected = _loss("temporal", pred_cpu, gt.cpu().double(), weight.cpu().double(), 0.05, window, "mean", "cpu")
        (expected_grad,) = torch.autograd.grad(expected, pred_cpu)
        torch.testing.assert_close(loss.cpu().double(), expected, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(grad.cpu().double(), expected_grad, rtol=1e-5, atol=1e-9)


def test_deterministic(backend):
    """Twenty runs give bit-identical losses (each sample's block sums are added in a fixed order); Triton's
    gradients too (two contributions per element), CUDA's up to the order of its atomic adds."""
    pred, gt, weight = _inputs(8, 243, 17, torch.float32, weighted=True)

    def run():
        loss = _loss("spatial", pred, gt, weight, 0.1, backend=backend) + _loss(
            "temporal", pred, gt, weight, 0.1, 30, backend=backend
        )
        (grad,) = torch.autograd.grad(loss, pred)
        return loss, grad

    first_loss, first_grad = run()
    for _ in range(19):
        loss, grad = run()
        assert torch.equal(loss, first_loss)
        if backend == "triton":
            assert torch.equal(grad, first_grad)
        else:
            torch.testing.assert_close(grad, first_grad, rtol=1e-6, atol=1e-12)


def test_nan_prediction_gives_the_reference_loss_and_gradient(backend):
    pred, gt, weight = _inputs(2, 70, 17, torch.float64, weighted=True)
    with torch.no_grad():
        pred[1, 33, 4, 2] = float("nan")
    loss = repose_ext.depth_rank_loss(pred, gt, weight, window=20, reduction="none", backend=backend)
    (grad,) = torch.autograd.grad(loss.sum(), pred)
    expected = repose_ext.depth_rank_loss(pred, gt, weight, window=20, reduction="none", backend="reference")
    (expected_grad,) = torch.autograd.grad(expected.sum(), pred)
    assert torch.isnan(loss).tolist() == [False, True] == torch.isnan(expected).tolist()
    torch.testing.assert_close(loss[0], expected[0])
    torch.testing.assert_close(grad, expected_grad)


def test_compile_fullgraph(backend):
    torch._dynamo.reset()
    pred, gt, weight = _inputs(4, 81, 17, torch.float32, weighted=True)
    module = repose_ext.DepthRankLoss(1.0, 0.5, margin=0.05, window=20, backend=backend).cuda()
    compiled = torch.compile(module, fullgraph=True)
    got = compiled(pred, gt, weight)
    (got_grad,) = torch.autograd.grad(got, pred)
    expected = module(pred, gt, weight)
    (expected_grad,) = torch.autograd.grad(expected, pred)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(got_grad, expected_grad)


def test_opcheck(backend):
    op = backends._REGISTRY[backend].op
    gen = torch.Generator().manual_seed(2)
    p = torch.randn(3, 19, 5, 3, generator=gen, dtype=torch.float64).cuda()
    g = torch.randn(3, 19, 5, 3, generator=gen, dtype=torch.float64).cuda()
    w = torch.rand(3, 19, 5, generator=gen, dtype=torch.float64).cuda()
    f = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64, device="cuda")
    torch.library.opcheck(op, (p.requires_grad_(True), g, w, 0.1, 3, f, f, True, True))
    torch.library.opcheck(op, (p.detach()[..., 2], g[..., 2], None, 0.0, -1, None, f, False, False))


def test_no_grad_matches(backend):
    pred, gt, weight = _inputs(2, 50, 17, torch.float32, weighted=True)
    with torch.no_grad():
        loss = _loss("temporal", pred, gt, weight, 0.1, 5, "active", backend)
    expected = _loss("temporal", pred, gt, weight, 0.1, 5, "active", backend)
    torch.testing.assert_close(loss, expected.detach())


def test_extra_memory_is_linear(backend):
    """Peak extra memory of forward+backward at (32, 243, 17) is O(B*T*J), far below O(pairs)."""
    b, t, j = 32, 243, 17
    pred, gt, _ = _inputs(b, t, j, torch.float32, weighted=False)
    _loss("spatial", pred, gt, backend=backend).backward()  # warm-up (Triton compiles here)
    pred.grad = None
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    (_loss("spatial", pred, gt, backend=backend) + _loss("temporal", pred, gt, backend=backend)).backward()
    torch.cuda.synchronize()
    extra = torch.cuda.max_memory_allocated() - base
    elements = b * t * j
    pairs = b * t * j * (j + t)
    assert extra <= 48 * 4 * elements, f"extra peak {extra} bytes for {elements} elements ({pairs} pairs)"


def test_auto_picks_a_fused_backend():
    assert backends.resolve_backend("auto", torch.device("cuda")).name in ("cuda", "triton")


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_second_device(backend):
    pred = torch.randn(2, 40, 17, 3, device="cuda:1", requires_grad=True)
    gt = torch.randn(2, 40, 17, 3, device="cuda:1")
    loss = _loss("temporal", pred, gt, backend=backend)
    loss.backward()
    expected = _loss("temporal", pred.detach().cpu(), gt.cpu(), backend="reference")
    torch.testing.assert_close(loss.cpu(), expected, rtol=1e-5, atol=1e-7)
