"""The rank losses: the reference against a brute-force reading of the paper, and every fused backend
(CPU; Triton, under its interpreter without a GPU; CUDA on a GPU) against the reference in one matrix of
backend x shape / option / dtype; then the CPU op's own paths (compile, errors, strides, NaN)."""

import dataclasses
import itertools

import pytest
import torch

import repose_ext
from repose_ext import backends, reference

FUSED_CPU = "cpu"
LOSSES = {
    "spatial": repose_ext.spatial_depth_rank_loss,
    "temporal": repose_ext.temporal_depth_rank_loss,
}
# Tolerances of the loss and of the gradient against an fp64 reference, per input dtype.
TOL = {
    torch.float64: dict(rtol=1e-10, atol=1e-12),
    torch.float32: dict(rtol=1e-5, atol=1e-6),
    torch.float16: dict(rtol=2e-3, atol=1e-3),
    torch.bfloat16: dict(rtol=1.6e-2, atol=1e-2),
}


def make(b, t, j, dtype=torch.float64, ties=False, seed=0):
    gen = torch.Generator().manual_seed(seed)
    pred = torch.randn(b, t, j, 3, generator=gen, dtype=torch.float64)
    if ties:  # small integers: many equal ground-truth depths
        gt = torch.randint(0, 3, (b, t, j, 3), generator=gen).double()
    else:
        gt = torch.randn(b, t, j, 3, generator=gen, dtype=torch.float64)
    return pred.to(dtype), gt.to(dtype)


def brute_force(pred, gt, weight=None, margin=0.0, window=None, reduction="mean", temporal=False):
    """Python loops over every ordered pair, straight from the definitions."""
    p, g = pred[..., 2].double(), gt[..., 2].double()
    w = torch.ones_like(p) if weight is None else weight.double()
    if temporal:
        p, g, w = p.transpose(1, 2), g.transpose(1, 2), w.transpose(1, 2)
    b, x, n = p.shape
    num, den, act = [0.0] * b, [0.0] * b, [0.0] * b
    for bi, xi, k, l in itertools.product(range(b), range(x), range(n), range(n)):
        if window is not None and abs(k - l) > window:
            continue
        c = float(w[bi, xi, k] * w[bi, xi, l])
        den[bi] += c
        if g[bi, xi, k] < g[bi, xi, l]:
            act[bi] += c
            num[bi] += c * max(float(p[bi, xi, k] - p[bi, xi, l]) + margin, 0.0)
    div = lambda a, d: a / d if d > 0 else 0.0  # noqa: E731
    f64 = dict(dtype=torch.float64)
    if reduction == "sum":
        return torch.tensor(sum(num), **f64)
    if reduction == "mean":
        return torch.tensor(div(sum(num), sum(den)), **f64)
    if reduction == "active":
        return torch.tensor(div(sum(num), sum(act)), **f64)
    return torch.tensor([div(a, d) for a, d in zip(num, den)], **f64)


def call(kind, pred, gt, backend, **opts):
    if kind == "combined":  # depth_rank_loss; its reference is summed here, not by the library
        if backend == "reference":
            return combined_reference(pred, gt, **opts)
        return repose_ext.depth_rank_loss(pred, gt, backend=backend, **opts)
    if kind == "spatial":
        opts.pop("window", None)
    return LOSSES[kind](pred, gt, backend=backend, **opts)


def loss_and_grad(kind, pred, gt, backend, grad_out=None, **opts):
    p = pred.detach().clone().requires_grad_(True)
    loss = call(kind, p, gt, backend, **opts)
    go = torch.ones_like(loss) if grad_out is None else grad_out
    (grad,) = torch.autograd.grad(loss, p, go)
    return loss.detach(), grad


OPTION_SETS = [
    dict(),
    dict(margin=0.1),
    dict(weight="float"),
    dict(weight="bool"),
    dict(window=0),
    dict(window=2),
    dict(reduction="sum"),
    dict(reduction="none"),
    dict(reduction="active"),
    dict(margin=0.05, weight="float", window=3, reduction="active"),
    dict(margin=0.05, weight="float", window=1, reduction="none"),
]


def materialise(opts, pred):
    opts = dict(opts)
    if opts.get("weight") == "float":
        opts["weight"] = torch.rand(pred.shape[:3], dtype=torch.float64)
    elif opts.get("weight") == "bool":
        opts["weight"] = torch.rand(pred.shape[:3]) > 0.3
    return opts


# --- the reference is the paper -------------------------------------------------------


@pytest.mark.parametrize("kind", ["spatial", "temporal"])
@pytest.mark.parametrize("opts", OPTION_SETS, ids=str)
@pytest.mark.parametrize("ties", [False, True])
def test_reference_matches_brute_force(kind, opts, ties):
    pred, gt = make(2, 5, 4, ties=ties)
    opts = materialise(opts, pred)
    if kind == "spatial":
        opts.pop("window", None)
    expected = brute_force(pred, gt, temporal=(kind == "temporal"), **opts)
    got = call(kind, pred, gt, "reference", **opts)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("ties", [False, True])
def test_authors_form_equals_default(ties):
    pred, gt = make(2, 11, 17, ties=ties)
    torch.testing.assert_close(reference.authors_spatial_rank_loss(pred, gt), repose_ext.spatial_depth_rank_loss(pred, gt))
    torch.testing.assert_close(
        reference.authors_temporal_rank_loss(pred, gt), repose_ext.temporal_depth_rank_loss(pred, gt)
    )


def test_default_normalisation_is_full_pair_grid():
    # One active pair in one frame: the loss is its hinge over B*T*J*J (spatial) and B*J*T*T (temporal).
    b, t, j = 2, 3, 4
    pred, gt = torch.zeros(b, t, j, 3), torch.zeros(b, t, j, 3)
    gt[0, 1, 2, 2], pred[0, 1, 2, 2] = -1.0, 0.5  # joint 2 of frame 1 is nearer in gt but predicted farther by 0.5
    assert repose_ext.spatial_depth_rank_loss(pred, gt).item() == pytest.approx(3 * 0.5 / (b * t * j * j))
    # Temporally, frame 1 of joint 2 is nearer than frames 0 and 2: two active pairs of hinge 0.5 each.
    assert repose_ext.temporal_depth_rank_loss(pred, gt).item() == pytest.approx(2 * 0.5 / (b * j * t * t))


# --- every fused backend against the reference: one matrix of backend x shape/option/dtype --------------

FUSED_BACKENDS = ["cpu", "triton", "cuda"]


@pytest.fixture(params=FUSED_BACKENDS)
def fused(request):
    """A fused backend available here (Triton under its interpreter on CPU tensors when there is no GPU)."""
    if request.param not in repose_ext.available_backends():
        pytest.skip(f"backend {request.param!r} is not available here: {backends._REGISTRY[request.param].unavailable}")
    return request.param


def device_of(backend):
    return "cuda" if backend == "cuda" or (backend == "triton" and torch.cuda.is_available()) else "cpu"


def fused_loss_and_grad(kind, pred, gt, backend, grad_out=None, **opts):
    """loss_and_grad on the backend's device, results back on the CPU."""
    dev = device_of(backend)
    opts = {k: v.to(dev) if isinstance(v, torch.Tensor) else v for k, v in opts.items()}
    loss, grad = loss_and_grad(kind, pred.to(dev), gt.to(dev), backend,
                               None if grad_out is None else grad_out.to(dev), **opts)
    return loss.cpu(), grad.cpu()


SHAPES = [(1, 1, 1), (2, 1, 17), (1, 2, 2), (3, 7, 5), (2, 9, 1), (2, 81, 17), (1, 243, 17), (1, 2, 17)]


@pytest.mark.parametrize("kind", ["spatial", "temporal"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("ties", [False, True])
def test_fused_matches_reference_shapes(fused, kind, shape, ties):
    pred, gt = make(*shape, ties=ties)
    loss_r, grad_r = loss_and_grad(kind, pred, gt, "reference")
    loss_f, grad_f = fused_loss_and_grad(kind, pred, gt, fused)
    torch.testing.assert_close(loss_f, loss_r, **TOL[torch.float64])
    torch.testing.assert_close(grad_f, grad_r, **TOL[torch.float64])


@pytest.mark.parametrize("kind", ["spatial", "temporal"])
@pytest.mark.parametrize("opts", OPTION_SETS, ids=str)
@pytest.mark.parametrize("ties", [False, True])
def test_fused_matches_reference_options(fused, kind, opts, ties):
    pred, gt = make(3, 13, 6, ties=ties)
    opts = materialise(opts, pred)
    loss_r, grad_r = loss_and_grad(kind, pred, gt, "reference", **opts)
    loss_f, grad_f = fused_loss_and_grad(kind, pred, gt, fused, **opts)
    torch.testing.assert_close(loss_f, loss_r, **TOL[torch.float64])
    torch.testing.assert_close(grad_f, grad_r, **TOL[torch.float64])


@pytest.mark.parametrize("kind", ["spatial", "temporal"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_fused_dtypes(fused, kind, dtype):
    pred, gt = make(2, 33, 17, dtype=dtype)
    # Reference in fp64 on the very same (rounded) inputs.
    loss_r, grad_r = loss_and_grad(kind, pred.double(), gt.double(), "reference")
    loss_f, grad_f = fused_loss_and_grad(kind, pred, gt, fused)
    assert loss_f.dtype == dtype and grad_f.dtype == dtype
    torch.testing.assert_close(loss_f.double(), loss_r, **TOL[dtype])
    torch.testing.assert_close(grad_f.double(), grad_r, **TOL[dtype])


def test_mixed_dtypes_promote():
    pred, gt = make(2, 9, 17)
    loss = repose_ext.temporal_depth_rank_loss(pred.half(), gt.float())
    assert loss.dtype == torch.float32
    loss64 = repose_ext.temporal_depth_rank_loss(pred.float(), gt)
    assert loss64.dtype == torch.float64


@pytest.mark.parametrize("kind", ["spatial", "temporal"])
def test_grad_output_not_one(fused, kind):
    pred, gt = make(3, 17, 17)
    go = torch.tensor([0.5, -2.0, 3.0], dtype=torch.float64)
    _, grad_r = loss_and_grad(kind, pred, gt, "reference", grad_out=go, reduction="none")
    _, grad_f = fused_loss_and_grad(kind, pred, gt, fused, grad_out=go, reduction="none")
    torch.testing.assert_close(grad_f, grad_r, **TOL[torch.float64])
    _, grad_r = loss_and_grad(kind, pred, gt, "reference", grad_out=torch.tensor(-3.7, dtype=torch.float64))
    _, grad_f = fused_loss_and_grad(kind, pred, gt, fused, grad_out=torch.tensor(-3.7, dtype=torch.float64))
    torch.testing.assert_close(grad_f, grad_r, **TOL[torch.float64])


@pytest.mark.parametrize("kind", ["spatial", "temporal"])
def test_non_contiguous_inputs(fused, kind):
    pred, gt = make(2, 19, 17)
    dev = device_of(fused)
    # (B, T, J, 6)[..., ::2] and a transposed (T, B, J, 3) layout: neither is contiguous.
    pred_nc = torch.randn(2, 19, 17, 6, dtype=torch.float64).to(dev)[..., ::2]
    gt_nc = gt.to(dev).transpose(0, 1).contiguous().transpose(0, 1)
    assert not pred_nc.is_contiguous() and not gt_nc.is_contiguous()
    loss_r, grad_r = loss_and_grad(kind, pred_nc.cpu().contiguous(), gt, "reference")
    loss_f, grad_f = loss_and_grad(kind, pred_nc, gt_nc, fused)
    torch.testing.assert_close(loss_f.cpu(), loss_r, **TOL[torch.float64])
    torch.testing.assert_close(grad_f.cpu(), grad_r, **TOL[torch.float64])


@pytest.mark.parametrize("kind", ["spatial", "temporal"])
def test_depth_only_input(fused, kind):
    pred, gt = make(2, 9, 17)
    pred, gt = pred.to(device_of(fused)), gt.to(device_of(fused))
    a = call(kind, pred, gt, fused)
    b = call(kind, pred[..., 2], gt[..., 2], fused)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_gradcheck_float64():
    pred, gt = make(2, 6, 5)  # distinct continuous values: no pair sits on a kink
    w = torch.rand(2, 6, 5, dtype=torch.float64)
    p = pred.clone().requires_grad_(True)
    for fn, kw in [
        (repose_ext.spatial_depth_rank_loss, dict(margin=0.01)),
        (repose_ext.temporal_depth_rank_loss, dict(window=3, reduction="none")),
        (repose_ext.temporal_depth_rank_loss, dict(weight=w, reduction="active")),
    ]:
        assert torch.autograd.gradcheck(lambda x: fn(x, gt, backend=FUSED_CPU, **kw), (p,))


def test_no_gradient_to_gt():
    pred, gt = make(1, 5, 17)
    g = gt.clone().requires_grad_(True)
    p = pred.clone().requires_grad_(True)
    loss = repose_ext.spatial_depth_rank_loss(p, g) + repose_ext.temporal_depth_rank_loss(p, g)
    loss.backward()
    assert g.grad is None and p.grad is not None
    assert torch.count_nonzero(p.grad[..., :2]) == 0  # x, y get no gradient


def test_prediction_tie_rule():
    # One active pair whose predictions tie exactly: relu subgradient 0 (ours), the authors' maximum gives half.
    pred = torch.zeros(1, 1, 2, 3, dtype=torch.float64, requires_grad=True)
    gt = torch.zeros(1, 1, 2, 3, dtype=torch.float64)
    gt[0, 0, 0, 2] = -1.0
    for backend in ("reference", FUSED_CPU):
        (g,) = torch.autograd.grad(repose_ext.spatial_depth_rank_loss(pred, gt, backend=backend), pred)
        assert torch.count_nonzero(g) == 0, backend
    (g,) = torch.autograd.grad(reference.authors_spatial_rank_loss(pred, gt), pred)
    assert g[0, 0, 0, 2].item() == pytest.approx(0.5 / 4) and g[0, 0, 1, 2].item() == pytest.approx(-0.5 / 4)


def test_ground_truth_ties_never_count():
    pred = torch.randn(2, 7, 17, 3)
    gt = torch.ones(2, 7, 17, 3)  # every pair tied
    for backend in ("reference", FUSED_CPU):
        assert repose_ext.spatial_depth_rank_loss(pred, gt, backend=backend).item() == 0.0
        assert repose_ext.temporal_depth_rank_loss(pred, gt, backend=backend, margin=1.0).item() == 0.0


@pytest.mark.parametrize("t", [9, 64, 300, 2000])
def test_nan_in_pred_gives_the_reference_gradient(t):
    # NaN loss everywhere, and the same (finite) gradient as the reference, whose relu passes the gradient at a
    # NaN difference: on the AVX-512 rows / tiles, the portable kernels and the long-series (sorted) choice alike.
    torch.manual_seed(t)
    pred, gt = make(2, t, 17)
    pred = pred.double()
    gt = gt.double()
    pred[0, 3, 5, 2] = float("nan")
    grads = {}
    for backend in ("reference", FUSED_CPU):
        p = pred.clone().requires_grad_(True)
        loss = repose_ext.depth_rank_loss(p, gt, lambda_spatial=1.0, lambda_temporal=1.0, backend=backend)
        loss.backward()
        assert torch.isnan(loss)
        grads[backend] = p.grad
    torch.testing.assert_close(grads[FUSED_CPU], grads["reference"], rtol=1e-9, atol=1e-15)
    assert torch.isfinite(grads["reference"]).all()


def test_nan_in_pred_propagates():
    pred, gt = make(1, 8, 17)
    pred[0, 3, 5, 2] = float("nan")
    for backend in ("reference", FUSED_CPU):
        assert torch.isnan(repose_ext.spatial_depth_rank_loss(pred, gt, backend=backend))
        assert torch.isnan(repose_ext.temporal_depth_rank_loss(pred, gt, backend=backend))


@pytest.mark.parametrize("kind", ["spatial", "temporal"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "active"])
def test_empty_batch(kind, reduction):
    pred = torch.zeros(0, 9, 17, 3, requires_grad=True)
    loss = call(kind, pred, torch.zeros(0, 9, 17, 3), FUSED_CPU, reduction=reduction)
    assert loss.shape == ((0,) if reduction == "none" else ())
    if reduction != "none":
        assert loss.item() == 0.0
    loss.sum().backward()
    assert pred.grad.shape == pred.shape


def test_single_frame_and_single_joint_are_zero():
    pred, gt = make(2, 1, 17)
    assert repose_ext.temporal_depth_rank_loss(pred, gt).item() == 0.0
    pred, gt = make(2, 9, 1)
    assert repose_ext.spatial_depth_rank_loss(pred, gt).item() == 0.0


@pytest.mark.parametrize("kind", ["spatial", "temporal"])
def test_deterministic(kind):
    pred, gt = make(4, 243, 17, dtype=torch.float32)
    w = torch.rand(4, 243, 17)
    first = loss_and_grad(kind, pred, gt, FUSED_CPU, weight=w, reduction="active")
    for _ in range(10):
        again = loss_and_grad(kind, pred, gt, FUSED_CPU, weight=w, reduction="active")
        assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])


def test_opcheck():
    op = torch.ops.repose.rank_hinge.default
    gen = torch.Generator().manual_seed(1)
    for s, n, weighted, margin, window, need_grad, need_active in [
        (5, 17, False, 0.0, -1, True, False),
        (4, 9, True, 0.1, 2, True, True),
        (3, 7, False, 0.0, -1, False, True),
        (0, 3, False, 0.0, -1, True, False),
    ]:
        p = torch.randn(s, n, generator=gen, requires_grad=need_grad)
        g = torch.randn(s, n, generator=gen)
        w = torch.rand(s, n, generator=gen) if weighted else None
        torch.library.opcheck(op, (p, g, w, margin, window, need_grad, need_active))


def test_torch_compile_fullgraph():
    pred, gt = make(2, 27, 17, dtype=torch.float32)
    w = torch.rand(2, 27, 17)

    def step(p, g, w):
        return (
            repose_ext.spatial_depth_rank_loss(p, g, w, margin=0.05)
            + repose_ext.temporal_depth_rank_loss(p, g, window=9, reduction="active")
        )

    compiled = torch.compile(step, fullgraph=True)
    p1 = pred.clone().requires_grad_(True)
    p2 = pred.clone().requires_grad_(True)
    eager, compiled_loss = step(p1, gt, w), compiled(p2, gt, w)
    eager.backward()
    compiled_loss.backward()
    torch.testing.assert_close(compiled_loss, eager)
    torch.testing.assert_close(p2.grad, p1.grad)


def test_modules():
    pred, gt = make(2, 9, 17)
    w = torch.rand(2, 9, 17, dtype=torch.float64)
    combined = repose_ext.DepthRankLoss(lambda_spatial=0.3, lambda_temporal=2.0, margin=0.01, window=4)
    expected = 0.3 * repose_ext.spatial_depth_rank_loss(pred, gt, w, margin=0.01) + 2.0 * repose_ext.temporal_depth_rank_loss(
        pred, gt, w, margin=0.01, window=4
    )
    torch.testing.assert_close(combined(pred, gt, w), expected)
    torch.testing.assert_close(
        repose_ext.SpatialDepthRankLoss(reduction="sum")(pred, gt), repose_ext.spatial_depth_rank_loss(pred, gt, reduction="sum")
    )


def test_zero_weight_term_is_not_computed(monkeypatch):
    pred, gt = make(2, 9, 17)
    module = repose_ext.DepthRankLoss(lambda_spatial=1.0, lambda_temporal=0.0)

    def boom(*args, **kwargs):
        raise AssertionError("temporal term computed at weight 0")

    monkeypatch.setattr(reference, "temporal_depth_rank_loss", boom)
    module.backend = "reference"
    torch.testing.assert_close(module(pred, gt), repose_ext.spatial_depth_rank_loss(pred, gt))

    calls = []
    cpu = backends._REGISTRY["cpu"]

    def spy(*args):
        calls.append((args[5] is not None, args[6] is not None))  # (spatial, temporal) scales given
        return cpu.op(*args)

    expected = repose_ext.spatial_depth_rank_loss(pred, gt)
    monkeypatch.setitem(backends._REGISTRY, "cpu", backends.Backend("cpu", cpu.devices, None, lambda: spy))
    module.backend = "cpu"
    torch.testing.assert_close(module(pred, gt), expected)
    assert calls == [(True, False)]


# --- both terms in one pass (repose::depth_rank_loss) -----------------------------------


def combined_reference(pred, gt, lambda_spatial, lambda_temporal, **opts):
    spatial_opts = {k: v for k, v in opts.items() if k != "window"}
    return lambda_spatial * reference.spatial_depth_rank_loss(pred, gt, **spatial_opts) + lambda_temporal * (
        reference.temporal_depth_rank_loss(pred, gt, **opts)
    )


def ramp(batch, reduction):
    """An upstream gradient that differs per sample: (B,) for reduction "none", else a scalar."""
    g = torch.linspace(0.5, 1.5, batch, dtype=torch.float64)
    return g if reduction == "none" else g[0]


@pytest.mark.parametrize("opts", OPTION_SETS, ids=str)
@pytest.mark.parametrize("shape", [(2, 9, 17), (3, 40, 5), (1, 300, 17), (1, 1700, 4)], ids=str)
@pytest.mark.parametrize("lambdas", [(1.0, 1.0), (0.3, 2.0)], ids=str)
def test_combined_matches_reference(opts, shape, lambdas):
    # (1, 300, 17) weighted and (1, 1700, 4) unweighted take the sorted sweep for the temporal term.
    pred, gt = make(*shape, ties=True)
    opts = materialise(opts, pred)
    if isinstance(opts.get("weight"), torch.Tensor) and opts["weight"].dtype == torch.bool:
        opts["weight"] = opts["weight"].double()  # the reference takes numeric weights
    opts.update(lambda_spatial=lambdas[0], lambda_temporal=lambdas[1])
    go = ramp(shape[0], opts.get("reduction"))
    loss_r, grad_r = loss_and_grad("combined", pred, gt, "reference", go, **opts)
    loss_f, grad_f = loss_and_grad("combined", pred, gt, FUSED_CPU, go, **opts)
    torch.testing.assert_close(loss_f, loss_r, **TOL[torch.float64])
    torch.testing.assert_close(grad_f, grad_r, **TOL[torch.float64])


@pytest.mark.parametrize("algo", ["dense", "sorted"])
@pytest.mark.parametrize("depth_only", [False, True])
def test_combined_reads_strided_inputs(algo, depth_only, monkeypatch):
    """pred, gt and weight as strided views: the kernels read them in place."""
    monkeypatch.setenv("REPOSE_CPU_ALGO", algo)
    gen = torch.Generator().manual_seed(3)
    pred = torch.randn(3, 31, 17, 6, generator=gen, dtype=torch.float64)[..., 1::2]  # (3, 31, 17, 3), step 2
    gt = torch.randint(0, 4, (31, 3, 17, 3), generator=gen).double().transpose(0, 1)  # batch-minor
    weight = torch.rand(17, 31, 3, generator=gen, dtype=torch.float64).permute(2, 1, 0)  # (3, 31, 17)
    if depth_only:
        pred, gt = pred[..., 2], gt[..., 2]
    assert not (pred.is_contiguous() or gt.is_contiguous() or weight.is_contiguous())
    for opts in (dict(), dict(weight=weight, margin=0.1, window=5), dict(weight=weight, reduction="none")):
        opts.update(lambda_spatial=0.5, lambda_temporal=1.5)
        go = ramp(pred.shape[0], opts.get("reduction"))
        loss_r, grad_r = loss_and_grad("combined", pred.contiguous(), gt.contiguous(), "reference", go, **opts)
        loss_f, grad_f = loss_and_grad("combined", pred, gt, FUSED_CPU, go, **opts)
        torch.testing.assert_close(loss_f, loss_r, **TOL[torch.float64])
        torch.testing.assert_close(grad_f, grad_r, **TOL[torch.float64])


def test_combined_double_backward():
    pred, gt = make(2, 6, 5)  # distinct continuous values: no pair sits on a kink
    w = torch.rand(2, 6, 5, dtype=torch.float64)
    p = pred.clone().requires_grad_(True)
    for kw in (dict(margin=0.01), dict(weight=w, window=3, reduction="none"), dict(lambda_temporal=0.0)):
        fn = lambda x: repose_ext.depth_rank_loss(x, gt, backend=FUSED_CPU, **kw)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (p,))
        assert torch.autograd.gradgradcheck(fn, (p,))


def test_depth_op_opcheck():
    gen = torch.Generator().manual_seed(2)
    for shape, weighted, margin, window, spatial, temporal, need_grad, need_active in [
        ((2, 9, 5, 3), False, 0.0, -1, True, True, True, False),
        ((2, 7, 4), True, 0.1, 2, True, True, True, True),
        ((1, 6, 3, 3), False, 0.0, -1, False, True, True, False),
        ((2, 5, 3, 3), False, 0.0, -1, True, False, False, True),
        ((2, 5, 3), False, 0.0, -1, False, False, True, False),
        ((0, 5, 3, 3), False, 0.0, -1, True, True, True, False),
    ]:
        p = torch.randn(shape, generator=gen, requires_grad=need_grad)
        g = torch.randn(shape, generator=gen)
        w = torch.rand(shape[:3], generator=gen) if weighted else None
        scales = [torch.rand(shape[0], generator=gen, dtype=torch.float64) if on else None for on in (spatial, temporal)]
        args = (p, g, w, margin, window, *scales, need_grad, need_active)
        torch.library.opcheck(torch.ops.repose.depth_rank_loss.default, args)


def test_depth_op_per_sample_factors():
    """loss[b] = sum of scale[b] * (the term's hinge sum of sample b); grad = d loss.sum() / d pred."""
    pred, gt = make(3, 11, 6, ties=True)
    w = torch.rand(3, 11, 6, dtype=torch.float64)
    scales = (torch.tensor([0.5, 2.0, -1.0], dtype=torch.float64), torch.tensor([3.0, 0.0, 0.25]))
    p = pred.clone().requires_grad_(True)
    loss, active, grad = torch.ops.repose.depth_rank_loss(p.detach(), gt, w, 0.1, 4, *scales, True, True)
    expected = sum(
        scales[0][b] * reference.spatial_depth_rank_loss(p[b:b + 1], gt[b:b + 1], w[b:b + 1], 0.1, "sum")
        + scales[1][b].double() * reference.temporal_depth_rank_loss(p[b:b + 1], gt[b:b + 1], w[b:b + 1], 0.1, 4, "sum")
        for b in range(3)
    )
    (expected_grad,) = torch.autograd.grad(expected, p)
    torch.testing.assert_close(loss.sum(), expected.detach(), **TOL[torch.float64])
    torch.testing.assert_close(grad, expected_grad, **TOL[torch.float64])
    # active counts, counted here: w_k w_l over the pairs with g_k < g_l (frames: |k - l| <= 4)
    z = gt[..., 2]
    spatial_pairs = (z[..., :, None] < z[..., None, :]) * w[..., :, None] * w[..., None, :]
    zt, wt = z.transpose(1, 2), w.transpose(1, 2)
    t = torch.arange(11)
    temporal_pairs = (zt[..., :, None] < zt[..., None, :]) * wt[..., :, None] * wt[..., None, :]
    temporal_pairs = temporal_pairs * ((t[:, None] - t[None, :]).abs() <= 4)
    expected_active = torch.stack([spatial_pairs.sum(dim=(1, 2, 3)), temporal_pairs.sum(dim=(1, 2, 3))], dim=1)
    torch.testing.assert_close(active, expected_active, **TOL[torch.float64])


def test_one_pass_gradient_accumulates_like_any_gradient():
    """backward weighs the gradient the op saved: with retain_graph each call adds exactly one
    gradient, the returned tensor of an earlier step does not change, and upstream gradients other
    than 1 scale it."""
    pred, gt = make(2, 9, 17)
    p = pred.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(repose_ext.depth_rank_loss(p, gt, backend="reference"), p)
    loss = repose_ext.depth_rank_loss(p, gt, backend=FUSED_CPU)
    for k in range(1, 4):
        loss.backward(retain_graph=True)
        torch.testing.assert_close(p.grad, k * expected, **TOL[torch.float64])
    first = p.grad.clone()
    p.grad = None
    repose_ext.depth_rank_loss(p, gt, backend=FUSED_CPU).backward()
    kept = p.grad
    torch.testing.assert_close(kept, expected, **TOL[torch.float64])
    p.grad = None
    repose_ext.depth_rank_loss(p, gt, backend=FUSED_CPU).backward()
    p.grad.mul_(0)  # an in-place change of the new gradient leaves the old one alone
    torch.testing.assert_close(kept, expected, **TOL[torch.float64])
    torch.testing.assert_close(first, 3 * expected, **TOL[torch.float64])
    # an upstream gradient other than 1, and pred used twice in one graph
    p.grad = None
    (0.5 * repose_ext.depth_rank_loss(p, gt, backend=FUSED_CPU) + repose_ext.depth_rank_loss(p, gt, backend=FUSED_CPU)).backward()
    torch.testing.assert_close(p.grad, 1.5 * expected, **TOL[torch.float64])


@pytest.mark.parametrize("lam", [float("nan"), "1", True])
def test_bad_lambda(lam):
    pred, gt = make(1, 4, 5)
    with pytest.raises(ValueError, match="lambda_temporal must be a finite number"):
        repose_ext.depth_rank_loss(pred, gt, lambda_temporal=lam)


def test_one_pass_gradient_buffers_are_reused_safely():
    """The op's gradients come from a cache of freed buffers: a reused buffer (stale values,
    a slightly larger size) still gives exact gradients, and the gradient is an ordinary
    tensor (resizing keeps its values)."""
    gen = torch.Generator().manual_seed(5)
    for shape, kw in [((2, 9, 17, 3), {}), ((2, 9, 17), {}), ((2, 8, 17), dict(lambda_spatial=0.0)),
                      ((2, 8, 17), dict(lambda_temporal=0.0)), ((2, 8, 17), dict(margin=0.1, reduction="active")),
                      ((2, 9, 17, 3), dict(reduction="none"))]:
        for _ in range(3):
            pred = torch.randn(shape, generator=gen, dtype=torch.float64, requires_grad=True)
            gt = torch.randn(shape, generator=gen, dtype=torch.float64)
            (expected,) = torch.autograd.grad(repose_ext.depth_rank_loss(pred, gt, backend="reference", **kw).sum(), pred)
            (got,) = torch.autograd.grad(repose_ext.depth_rank_loss(pred, gt, backend=FUSED_CPU, **kw).sum(), pred)
            torch.testing.assert_close(got, expected, **TOL[torch.float64])
            got.fill_(float("nan"))  # freed dirty: the next call may get this buffer back
            del got
    pred.grad = None
    repose_ext.depth_rank_loss(pred, gt, backend=FUSED_CPU).backward()
    kept = pred.grad.clone()
    pred.grad.resize_(3 * kept.numel())
    assert torch.equal(pred.grad[: kept.numel()], kept.flatten())


def test_depth_op_errors():
    op = torch.ops.repose.depth_rank_loss
    p = torch.randn(2, 5, 4, 3)
    ones = torch.ones(2)
    with pytest.raises(RuntimeError, match=r"pred must have shape \(B, T, J, 3\)"):
        op(torch.randn(2, 5, 4, 2), torch.randn(2, 5, 4, 2), None, 0.0, -1, ones, ones, True, False)
    with pytest.raises(RuntimeError, match="gt must have the shape of pred"):
        op(p, torch.randn(2, 5, 4), None, 0.0, -1, ones, ones, True, False)
    with pytest.raises(RuntimeError, match="weight must have shape"):
        op(p, p, torch.rand(2, 5, 3), 0.0, -1, ones, ones, True, False)
    with pytest.raises(RuntimeError, match="gt must have dtype"):
        op(p, p.double(), None, 0.0, -1, ones, ones, True, False)
    with pytest.raises(RuntimeError, match=r"temporal_scale must have shape \(B,\) = \(2\); got \[3\]"):
        op(p, p, None, 0.0, -1, ones, torch.ones(3), True, False)
    with pytest.raises(RuntimeError, match="spatial_scale must be a floating-point tensor; got Long"):
        op(p, p, None, 0.0, -1, torch.ones(2, dtype=torch.int64), None, True, False)
    q = p.clone().requires_grad_(True)
    loss = op(q, p, None, 0.0, -1, ones, ones, False, False)[0]
    with pytest.raises(RuntimeError, match="need_grad=False"):
        loss.sum().backward()


def test_mean_of_none_is_mean():
    pred, gt = make(4, 9, 17)
    for fn in LOSSES.values():
        torch.testing.assert_close(fn(pred, gt, reduction="none").mean(), fn(pred, gt))


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pred, gt, kwargs, exc, match",
    [
        (torch.zeros(4, 17, 3, 2), torch.zeros(4, 17, 3, 2), {}, ValueError, r"pred must have shape \(B, T, J, 3\).*got \(4, 17, 3, 2\)"),
        (torch.zeros(17, 3), torch.zeros(17, 3), {}, ValueError, r"pred must have shape .*got \(17, 3\)"),
        (torch.zeros(2, 9, 17, 3), torch.zeros(2, 9, 16, 3), {}, ValueError, r"gt must have the shape of pred \(2, 9, 17, 3\); got \(2, 9, 16, 3\)"),
        (torch.zeros(2, 9, 17, 3, dtype=torch.int64), torch.zeros(2, 9, 17, 3), {}, TypeError, r"pred must be a floating-point tensor.*torch.int64"),
        (torch.zeros(2, 9, 17, 3), torch.zeros(2, 9, 17, 3, dtype=torch.int32), {}, TypeError, r"gt must be a floating-point tensor.*torch.int32"),
        (torch.zeros(2, 9, 17, 3), torch.zeros(2, 9, 17, 3, device="meta"), {}, ValueError, r"same device.*pred on cpu and gt on meta"),
        (torch.zeros(2, 9, 17, 3), torch.zeros(2, 9, 17, 3), {"weight": torch.ones(2, 9)}, ValueError, r"weight must have shape \(B, T, J\) = \(2, 9, 17\); got \(2, 9\)"),
        (torch.zeros(2, 9, 17, 3), torch.zeros(2, 9, 17, 3), {"weight": torch.ones(2, 9, 17, dtype=torch.int64)}, TypeError, r"weight must be a floating-point or bool tensor; got torch.int64"),
        (torch.zeros(2, 9, 17, 3), torch.zeros(2, 9, 17, 3), {"reduction": "avg"}, ValueError, r"reduction must be one of .*'avg'"),
        (torch.zeros(2, 9, 17, 3), torch.zeros(2, 9, 17, 3), {"margin": float("inf")}, ValueError, r"margin must be a finite number; got inf"),
        (torch.zeros(2, 9, 17, 3), torch.zeros(2, 9, 17, 3), {"backend": "gpu"}, ValueError, r"backend must be 'auto' or one of .*'gpu'"),
        ([[0.0]], torch.zeros(2, 9, 17, 3), {}, TypeError, r"pred must be a torch.Tensor; got list"),
    ],
)
def test_bad_input(pred, gt, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        repose_ext.spatial_depth_rank_loss(pred, gt, **kwargs)


@pytest.mark.parametrize("window", [-1, 2.5, True])
def test_bad_window(window):
    with pytest.raises(ValueError, match=r"window must be None or an int >= 0; got"):
        repose_ext.temporal_depth_rank_loss(torch.zeros(1, 4, 17, 3), torch.zeros(1, 4, 17, 3), window=window)


def test_backend_errors():
    pred, gt = make(1, 4, 17)
    assert "cpu" in repose_ext.available_backends("cpu") and "reference" in repose_ext.available_backends()
    with pytest.raises((ValueError, RuntimeError), match=r"backend 'cuda'"):
        repose_ext.spatial_depth_rank_loss(pred, gt, backend="cuda")


def test_op_rejects_bad_series():
    op = torch.ops.repose.rank_hinge.default
    with pytest.raises(RuntimeError, match=r"gt must have the shape of pred"):
        op(torch.zeros(3, 4), torch.zeros(3, 5), None, 0.0, -1, False, False)
    with pytest.raises(RuntimeError, match=r"pred must be float32 or float64"):
        op(torch.zeros(3, 4, dtype=torch.half), torch.zeros(3, 4, dtype=torch.half), None, 0.0, -1, False, False)


@pytest.mark.parametrize("backend", ["cpu", "cuda", "triton"])
@pytest.mark.parametrize("shape", [(4, 27, 17, 3), (4, 27, 17)])
def test_forward_and_backward_dispatch_few_ops_and_no_copies(backend, shape):
    # The op contract on every backend: one fused op between a handful of cheap aten ops, no copies of the
    # poses. Triton runs under its interpreter here when there is no GPU (the same Python as on a GPU).
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.append(str(func))
            return func(*args, **(kwargs or {}))

    if backend not in repose_ext.available_backends():
        pytest.skip(f"backend {backend!r} is not available here: {backends._REGISTRY[backend].unavailable}")
    device = "cpu" if "cpu" in backends._REGISTRY[backend].devices else "cuda"
    if backend == "triton" and not torch.cuda.is_available():
        shape = (2, 5) + shape[2:]  # the interpreter pays per program
    pred = torch.randn(*shape, device=device, requires_grad=True)
    gt = torch.randn(*shape, device=device)
    with Count() as count:
        repose_ext.depth_rank_loss(pred, gt, lambda_spatial=1.0, lambda_temporal=1.0, backend=backend).backward()
    assert len(count.ops) <= 12, count.ops
    fused = [op for op in count.ops if op.startswith("repose.")]
    assert fused == [f"repose.depth_rank_loss{'_triton' if backend == 'triton' else ''}.default"], count.ops
    copies = [op for op in count.ops if any(w in op for w in ("copy", "clone", "contiguous", "permute"))]
    assert not copies, copies


@pytest.mark.parametrize("reduction", ["mean", "sum", "none", "active"])
def test_weights_of_any_sign_follow_the_formula_on_the_fused_path(reduction):
    # The defined meaning of negative weights: the formula as written; a non-positive denominator divides by 1.
    gen = torch.Generator().manual_seed(3)
    pred = torch.randn(3, 9, 17, 3, generator=gen, dtype=torch.float64)
    gt = torch.randn(3, 9, 17, 3, generator=gen, dtype=torch.float64)
    weight = torch.randn(3, 9, 17, generator=gen, dtype=torch.float64)
    out = {}
    for backend in ("reference", FUSED_CPU):
        p = pred.clone().requires_grad_(True)
        loss = repose_ext.depth_rank_loss(p, gt, weight=weight, lambda_spatial=1.0, lambda_temporal=1.0,
                                          backend=backend, reduction=reduction)
        loss.sum().backward()
        out[backend] = (loss.detach(), p.grad)
    torch.testing.assert_close(out[FUSED_CPU][0], out["reference"][0])
    torch.testing.assert_close(out[FUSED_CPU][1], out["reference"][1])


def test_a_zero_denominator_leaves_the_sum_undivided():
    gen = torch.Generator().manual_seed(4)
    pred = torch.randn(1, 1, 4, 3, generator=gen, dtype=torch.float64)
    gt = torch.randn(1, 1, 4, 3, generator=gen, dtype=torch.float64)
    weight = torch.tensor([[[3.0, -1.0, -1.0, -1.0]]], dtype=torch.float64)  # all pairs: (3 - 3)^2 = 0
    for backend in ("reference", FUSED_CPU):
        total = repose_ext.spatial_depth_rank_loss(pred, gt, weight=weight, reduction="sum", backend=backend)
        mean = repose_ext.spatial_depth_rank_loss(pred, gt, weight=weight, reduction="mean", backend=backend)
        assert total != 0
        torch.testing.assert_close(mean, total)
