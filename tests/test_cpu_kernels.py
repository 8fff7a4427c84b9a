"""The CPU algorithms of ``repose::rank_hinge`` against the reference, per series.

``rank_hinge_dense`` (the pair loop: lanes-across-series kernel for short series, row
kernel with or without ground-truth buckets for long ones, each for every instruction set)
and ``rank_hinge_sorted`` (the O(N log N) Fenwick sweep) must give the reference's
per-series hinge sums, active counts and gradients, ties included, for every option.
"""

import pytest
import torch

import repose_ext  # noqa: F401  (loads the ops)
from repose_ext import _cpu, reference

OPS = {
    "auto": torch.ops.repose.rank_hinge,
    "dense": torch.ops.repose.rank_hinge_dense,
    "sorted": torch.ops.repose.rank_hinge_sorted,
}
ISAS = ["avx512", "avx2", "base", "scalar"]  # REPOSE_CPU_ISA caps the instruction set (never raises it)


def reference_stats(p, g, w=None, margin=0.0, window=None):
    """Per-series hinge sum, active count and gradient from the reference, in float64."""
    p = p.double().detach().requires_grad_(True)
    g = g.double()
    w = torch.ones_like(g) if w is None else w.double()
    n = p.shape[1]
    # Series s as sample s (B=S, X=1): "none" gives each series' sum over its pair weight.
    pair_w = w[:, :, None] * w[:, None, :]
    if window is not None:
        idx = torch.arange(n)
        pair_w = pair_w * ((idx[:, None] - idx[None, :]).abs() <= window)
    den = pair_w.sum(dim=(1, 2))
    den = torch.where(den > 0, den, torch.ones_like(den))
    loss = reference.pairwise_rank_hinge(p[:, None], g[:, None], w[:, None], margin, window, "none") * den
    # With every prediction 0 and margin 1 each active pair costs exactly its weight.
    zeros = torch.zeros_like(p[:, None])
    active = reference.pairwise_rank_hinge(zeros, g[:, None], w[:, None], 1.0, window, "none") * den
    (grad,) = torch.autograd.grad(loss.sum(), p)
    return loss.detach(), active, grad


def run(op, p, g, w=None, margin=0.0, window=None, need_grad=True, need_active=True):
    stats, grad = OPS[op](p, g, w, margin, -1 if window is None else window, need_grad, need_active)
    return stats[:, 0], stats[:, 1], grad


def series(s, n, dtype=torch.float64, ties=False, seed=0, weighted=False):
    """Random series; with ties, predictions and ground truth on a coarse grid (exact in fp32)."""
    gen = torch.Generator().manual_seed(seed)
    if ties:
        p = torch.randint(-4, 5, (s, n), generator=gen).to(dtype) * 0.25
        g = torch.randint(0, 4, (s, n), generator=gen).to(dtype)
    else:
        p = torch.randn(s, n, generator=gen, dtype=torch.float64).to(dtype)
        g = torch.randn(s, n, generator=gen, dtype=torch.float64).to(dtype)
    w = torch.randint(0, 5, (s, n), generator=gen).to(dtype) * 0.25 if weighted else None
    return p, g, w


def assert_matches_reference(op, p, g, w=None, margin=0.0, window=None, exact=False):
    loss_r, act_r, grad_r = reference_stats(p, g, w, margin, window)
    loss, act, grad = run(op, p, g, w, margin, window)
    assert loss.dtype == p.dtype and grad.dtype == p.dtype and grad.shape == p.shape
    if exact:  # grid data: exact gradients; sums exact up to the reference's own rounding
        tol = dict(rtol=1e-12 if p.dtype == torch.float64 else 1e-7, atol=1e-12)
    elif p.dtype == torch.float64:
        tol = dict(rtol=1e-10, atol=1e-10)
    else:
        tol = dict(rtol=2e-5, atol=1e-4)
    torch.testing.assert_close(loss.double(), loss_r, **tol)
    torch.testing.assert_close(act.double(), act_r, **tol)
    if exact:
        tol = dict(rtol=0, atol=0)
    torch.testing.assert_close(grad.double(), grad_r, **tol)


# Lengths around every kernel switch: lanes (<= 48), rows, bucketed rows (>= 64), sorted.
LENGTHS = [1, 2, 3, 17, 47, 48, 49, 63, 64, 65, 130, 243]


@pytest.mark.parametrize("op", ["dense", "sorted"])
@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("ties", [False, True])
def test_ops_match_reference_lengths(op, n, ties):
    p, g, _ = series(19, n, ties=ties, seed=n)  # 19 series: one full lane block and a partial one
    assert_matches_reference(op, p, g, exact=ties)


OPTIONS = [
    dict(margin=0.25),
    dict(margin=-0.25),
    dict(weighted=True),
    dict(weighted=True, margin=0.5),
    dict(window=0),
    dict(window=3),
    dict(window=70),
    dict(window=3, weighted=True, margin=0.25),
]


@pytest.mark.parametrize("op", ["dense", "sorted"])
@pytest.mark.parametrize("n", [17, 100])
@pytest.mark.parametrize("opts", OPTIONS, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("ties", [False, True])
def test_ops_match_reference_options(op, n, opts, dtype, ties):
    p, g, w = series(18, n, dtype=dtype, ties=ties, seed=3, weighted=opts.get("weighted", False))
    assert_matches_reference(op, p, g, w, opts.get("margin", 0.0), opts.get("window"), exact=ties)


@pytest.mark.parametrize("isa", ISAS[:-1])
@pytest.mark.parametrize("n", [17, 80, 243])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_instruction_sets_agree(monkeypatch, isa, n, dtype):
    """Every ISA's instance of the one kernel template gives the scalar one's results and the reference;
    unweighted gradients are exact counts, so identical."""
    cases = [dict(), dict(margin=0.25), dict(window=5), dict(weighted=True, margin=0.1),
             dict(weighted=True, window=7)]
    p, g, w = series(21, n, dtype=dtype, seed=n, weighted=True)

    def runs():
        return [run("dense", p, g, w if c.get("weighted") else None, c.get("margin", 0.0), c.get("window"))
                for c in cases]

    monkeypatch.setenv("REPOSE_CPU_ISA", "scalar")
    base = runs()
    monkeypatch.setenv("REPOSE_CPU_ISA", isa)
    for c, expected, got in zip(cases, base, runs()):
        torch.testing.assert_close(got[0], expected[0], rtol=1e-6, atol=1e-5)
        torch.testing.assert_close(got[1], expected[1], rtol=1e-6, atol=1e-5)
        if c.get("weighted"):
            torch.testing.assert_close(got[2], expected[2], rtol=1e-6, atol=1e-6)
        else:
            assert torch.equal(got[2], expected[2]), c
    pt, gt, wt = series(21, n, ties=True, seed=n + 1, weighted=True)
    for c in cases:
        w_c = wt if c.get("weighted") else None
        assert_matches_reference("dense", pt, gt, w_c, c.get("margin", 0.0), c.get("window"), exact=True)


@pytest.mark.parametrize("n", [64, 300, 2500])
def test_sorted_equals_dense_exactly_without_weights(n):
    # Both reduce to the same integer counts and share the loss epilogue: bit-identical.
    for ties in (False, True):
        p, g, _ = series(5, n, dtype=torch.float32, ties=ties, seed=n)
        for margin in (0.0, 0.25):
            d, s = run("dense", p, g, margin=margin), run("sorted", p, g, margin=margin)
            for a, b in zip(d, s):
                assert torch.equal(a, b)


def test_long_series_against_reference():
    # Past the crossover: auto takes the sorted sweep; check it and dense on a long series.
    n = 2500
    assert n > max(_cpu.sorted_min_n(isa, w) for isa in _cpu.ISAS for w in (False, True))
    p, g, w = series(2, n, ties=True, seed=7, weighted=True)
    for op in ("auto", "dense", "sorted"):
        assert_matches_reference(op, p, g, w, 0.25, exact=True)
    p, g, _ = series(2, n, dtype=torch.float32, seed=8)
    assert_matches_reference("auto", p, g)


def test_tie_rules_both_directions():
    # Element pairs built so that every tie case appears with the nearer element first and last.
    g = torch.tensor([[0.0, 0.0, 1.0, 1.0, 2.0, 0.0, 2.0, 1.0]], dtype=torch.float64)
    p = torch.tensor([[1.0, 1.0, 1.0, 0.5, 0.5, 2.0, 2.0, 1.0]], dtype=torch.float64)
    for n_rep in (1, 12):  # 8 and 96 elements: lanes, rows and bucketed rows
        pp, gg = p.repeat(1, n_rep), g.repeat(1, n_rep)
        for op in ("dense", "sorted"):
            for margin in (0.0, 0.5, -0.5):  # 0.5: p_k - p_l + m hits exactly 0 on some pairs
                assert_matches_reference(op, pp, gg, None, margin, exact=True)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("margin", [0.0, 0.25])  # with a margin, an infinite prediction also violates +inf
def test_nan_and_inf(monkeypatch, isa, margin):
    monkeypatch.setenv("REPOSE_CPU_ISA", isa)
    p, g, _ = series(3, 100, seed=1)
    p[0, 7] = float("nan")
    p[1, 3] = float("inf")
    g[2, 5] = float("nan")  # a NaN ground truth is never nearer nor farther
    loss_r, act_r, grad_r = reference_stats(p, g, margin=margin)
    for op in ("dense", "sorted"):
        loss, act, grad = run(op, p, g, margin=margin)
        assert torch.isnan(loss[0]) and torch.isnan(loss[1]), op
        torch.testing.assert_close(loss[2], loss_r[2], rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(act, act_r, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(grad[2], grad_r[2], rtol=1e-10, atol=1e-10)
        # the reference's gradient at NaN and inf too: its relu passes the gradient unless the difference is <= 0
        torch.testing.assert_close(grad, grad_r, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("op", ["dense", "sorted"])
def test_deterministic_across_runs_and_threads(op):
    p, g, w = series(40, 300, dtype=torch.float32, seed=2, weighted=True)
    threads = torch.get_num_threads()
    first = run(op, p, g, w, 0.1)
    try:
        for t in (1, threads, 1, threads):
            torch.set_num_threads(t)
            for _ in range(5):
                again = run(op, p, g, w, 0.1)
                assert all(torch.equal(a, b) for a, b in zip(first, again))
    finally:
        torch.set_num_threads(threads)


def test_flags_and_empty():
    p, g, _ = series(4, 30, seed=4)
    stats, grad = OPS["sorted"](p, g, None, 0.0, -1, False, False)
    assert grad.shape == (0,) and torch.count_nonzero(stats[:, 1]) == 0
    for op in OPS.values():
        stats, grad = op(torch.zeros(0, 5), torch.zeros(0, 5), None, 0.0, -1, True, True)
        assert stats.shape == (0, 2) and grad.shape == (0, 5)
        stats, grad = op(torch.zeros(3, 0), torch.zeros(3, 0), None, 0.0, -1, True, True)
        assert torch.count_nonzero(stats) == 0 and grad.shape == (3, 0)


def test_opcheck_and_gradcheck():
    gen = torch.Generator().manual_seed(5)
    for name in ("rank_hinge_dense", "rank_hinge_sorted"):
        op = getattr(torch.ops.repose, name).default
        for s, n, weighted, margin, window, need_grad, need_active in [
            (5, 17, False, 0.0, -1, True, False),
            (3, 70, True, 0.1, -1, True, True),
            (4, 9, True, 0.1, 2, True, True),
        ]:
            p = torch.randn(s, n, generator=gen, dtype=torch.float64, requires_grad=need_grad)
            g = torch.randn(s, n, generator=gen, dtype=torch.float64)
            w = torch.rand(s, n, generator=gen, dtype=torch.float64) if weighted else None
            torch.library.opcheck(op, (p, g, w, margin, window, need_grad, need_active))
            assert torch.autograd.gradcheck(lambda x: op(x, g, w, margin, window, True, False)[0][:, 0], (p,))


def test_errors_name_the_argument():
    with pytest.raises(RuntimeError, match=r"rank_hinge_sorted: weight must have the shape of pred"):
        OPS["sorted"](torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 4), 0.0, -1, False, False)
    with pytest.raises(RuntimeError, match=r"rank_hinge_dense \(cpu\): pred must be float32 or float64"):
        OPS["dense"](torch.zeros(2, 3, dtype=torch.half), torch.zeros(2, 3, dtype=torch.half), None, 0.0, -1, False, False)


def test_signed_zero_ground_truths_tie():
    # -0.0 and +0.0 compare equal: such pairs never count, in either direction.
    g = torch.tensor([[-0.0, 0.0, 1.0, -0.0, 0.0, -1.0] * 20], dtype=torch.float32)
    p = torch.linspace(1.0, -1.0, g.shape[1], dtype=torch.float32)[None]
    for op in ("dense", "sorted"):
        assert_matches_reference(op, p, g, None, 0.0, exact=True)
        assert_matches_reference(op, p.flip(1), g, None, 0.5, exact=True)


def boundary_triples(count, seed=0):
    """float32 (p_k, p_l, m) where fl(fl(p_k - p_l) + m) > 0 differs from a reassociated order."""
    gen = torch.Generator().manual_seed(seed)
    found = []
    while len(found) < count:
        pk = torch.rand(4096, generator=gen) * 4 - 2
        pl = pk - torch.rand(4096, generator=gen) * 1e-3
        m = -(pk - pl) * (1 + (torch.rand(4096, generator=gen) - 0.5) * 1e-6)
        ref = (pk - pl) + m > 0
        other = ((pk + m) - pl > 0) | (pk - (pl - m) > 0)
        other_false = ~(((pk + m) - pl > 0) & (pk - (pl - m) > 0))
        hit = (ref & other_false) | (~ref & other)
        found += [(a.item(), b.item(), c.item()) for a, b, c in zip(pk[hit], pl[hit], m[hit])]
    return found[:count]


@pytest.mark.parametrize("n_pad", [0, 70])  # lanes kernel, and row kernels (padding with far ties)
def test_margin_predicate_is_the_references_float_expression(n_pad):
    # Pairs whose margin test sits on a rounding boundary: the kernels must round like the reference.
    for pk, pl, m in boundary_triples(4):
        p = torch.tensor([[pk, pl] + [0.0] * n_pad], dtype=torch.float32)
        g = torch.tensor([[0.0, 1.0] + [5.0] * n_pad], dtype=torch.float32)  # k nearer than l
        # The reference in float32, as the public API runs it on float32 input.
        p_ref = p[:, None].clone().requires_grad_(True)
        loss_r = reference.pairwise_rank_hinge(p_ref, g[:, None], None, m, None, "sum")
        (grad_r,) = torch.autograd.grad(loss_r, p_ref)
        for op in ("dense", "sorted"):
            _, _, grad = run(op, p, g, None, m)
            assert torch.equal(grad[0, :2], grad_r[0, 0, :2]), (op, pk, pl, m)
