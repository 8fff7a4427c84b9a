"""Triton kernels of the pairwise rank hinge ``repose::rank_hinge`` (see csrc/rank_loss.cpp).

The input is a (S, N) matrix of series. For the ordered pair (k, l) of one series:

* k nearer (``gt_k < gt_l``): ``loss += w_k w_l relu(p_k - p_l + m)`` and
  ``grad_k += w_k w_l [p_k - p_l + m > 0]``, ``active += w_k w_l``;
* l nearer (``gt_l < gt_k``): ``grad_k -= w_k w_l [p_l - p_k + m > 0]``;
* ties in ``gt`` add nothing; the relu subgradient at 0 is 0 (strict ``>``).

Loss and gradient come out of the same pass over pairs, tile by tile, so nothing of size
O(pairs) is stored. A program owns whole rows (element k against its series), so it
writes ``grad[k]`` directly; the per-series sums are reduced in a fixed order (a ``tl.sum``
over a tile, then a sequential loop), never with atomics, so results are bit-identical
from run to run. Arithmetic is in the input dtype (float32 or float64; the Python layer
casts float16/bfloat16 to float32 first).

``window`` arrives normalised to ``0 <= window <= N`` (N means every pair). The margin
arrives as three float32 parts whose sum in float64 is the float64 margin exactly (a
plain Python float argument is float32 inside a Triton kernel); for float32 inputs the
two low parts are 0.

Kernels:
    _rank_hinge_short_kernel: series of N <= BLOCK_N (small, e.g. the J joints of a
        frame); one program takes BLOCK_S whole series as a (BLOCK_S, BLOCK_N, BLOCK_N)
        tile and writes their stats.
    _rank_hinge_rows_kernel: long series (e.g. the T frames of a joint); program
        (s, kb) takes rows [kb * BLOCK_K, (kb + 1) * BLOCK_K) of series s, loops over
        the columns in BLOCK_L tiles and writes one partial sum per program.
    _sum_partials_kernel: sums the partials of each series in block order.
"""

import triton
import triton.language as tl


@triton.jit
def _pair_terms(pk, gk, pl, gl, wl, valid, margin):
    """Loss, gradient and active weight of every pair of a broadcast tile.

    ``pk``/``gk`` are the k side and ``pl``/``gl``/``wl`` the l side, shaped so that they
    broadcast against each other (and ``valid``); ``wl`` may be the scalar 1.0. Returns
    three tiles of the broadcast shape, zero where ``valid`` is false. The factor w_k is
    left to the caller.
    """
    d = (pk - pl) + margin  # hinge argument when k is nearer
    e = (pl - pk) + margin  # hinge argument when l is nearer
    k_nearer = gk < gl
    l_nearer = gl < gk
    relu_d = tl.where(d < 0, 0.0, d)  # a NaN prediction stays NaN
    # Multiplying (not selecting) by k_nearer keeps a NaN prediction visible in the loss.
    loss = tl.where(valid, wl * k_nearer.to(d.dtype) * relu_d, 0.0)
    # "> 0 or NaN" (not <= 0): a NaN difference passes the gradient, as the reference's relu does
    slope = (k_nearer & ((d > 0) | (d != d))).to(d.dtype) - (l_nearer & ((e > 0) | (e != e))).to(d.dtype)
    grad = tl.where(valid, wl * slope, 0.0)
    active = tl.where(valid, wl * k_nearer.to(d.dtype), 0.0)
    return loss, grad, active


@triton.jit
def _rank_hinge_short_kernel(
    pred_ptr,  # (S, N) float32/float64, contiguous: predicted depths, one series per row
    gt_ptr,  # (S, N) pred's dtype, contiguous: ground-truth depths
    weight_ptr,  # (S, N) pred's dtype, contiguous: element weights (read only if HAS_WEIGHT)
    stats_ptr,  # (S, 2) pred's dtype, out: [:, 0] hinge sum, [:, 1] active weight (0 unless NEED_ACTIVE)
    grad_ptr,  # (S, N) pred's dtype, out: d stats[:, 0] / d pred (written only if NEED_GRAD)
    S,  # number of series
    N,  # series length, N <= BLOCK_N
    window,  # largest |k - l| of a pair, 0 <= window <= N
    margin_hi,  # float32 parts of the margin (see the module docstring)
    margin_lo,
    margin_lo2,
    HAS_WEIGHT: tl.constexpr,
    NEED_GRAD: tl.constexpr,
    NEED_ACTIVE: tl.constexpr,
    BLOCK_S: tl.constexpr,  # series per program
    BLOCK_N: tl.constexpr,  # power of two >= N
):
    pid = tl.program_id(0).to(tl.int64)
    s = pid * BLOCK_S + tl.arange(0, BLOCK_S)  # (BLOCK_S,) series, int64
    n = tl.arange(0, BLOCK_N)  # (BLOCK_N,) element index within a series
    s_ok = s < S
    n_ok = n < N
    offs = s[:, None] * N + n[None, :]  # (BLOCK_S, BLOCK_N)
    mask = s_ok[:, None] & n_ok[None, :]
    p = tl.load(pred_ptr + offs, mask=mask, other=0.0)
    g = tl.load(gt_ptr + offs, mask=mask, other=0.0)
    margin = tl.cast(margin_hi, p.dtype) + tl.cast(margin_lo, p.dtype) + tl.cast(margin_lo2, p.dtype)
    if HAS_WEIGHT:
        w = tl.load(weight_ptr + offs, mask=mask, other=0.0)
        wl = w[:, None, :]
    else:
        wl = 1.0

    k = n[:, None]
    l = n[None, :]
    in_window = ((k - l) <= window) & ((l - k) <= window)  # (BLOCK_N, BLOCK_N)
    valid = mask[:, :, None] & n_ok[None, None, :] & in_window[None, :, :]  # (BLOCK_S, BLOCK_N, BLOCK_N)
    loss, grad, active = _pair_terms(p[:, :, None], g[:, :, None], p[:, None, :], g[:, None, :], wl, valid, margin)

    row_loss = tl.sum(loss, axis=2)  # (BLOCK_S, BLOCK_N)
    if HAS_WEIGHT:
        row_loss = row_loss * w
    tl.store(stats_ptr + 2 * s, tl.sum(row_loss, axis=1), mask=s_ok)
    if NEED_ACTIVE:
        row_active = tl.sum(active, axis=2)
        if HAS_WEIGHT:
            row_active = row_active * w
        tl.store(stats_ptr + 2 * s + 1, tl.sum(row_active, axis=1), mask=s_ok)
    else:
        tl.store(stats_ptr + 2 * s + 1, tl.zeros([BLOCK_S], dtype=p.dtype), mask=s_ok)
    if NEED_GRAD:
        row_grad = tl.sum(grad, axis=2)
        if HAS_WEIGHT:
            row_grad = row_grad * w
        tl.store(grad_ptr + offs, row_grad, mask=mask)


@triton.jit
def _rank_hinge_rows_kernel(
    pred_ptr,  # (S, N) float32/float64, contiguous: predicted depths, one series per row
    gt_ptr,  # (S, N) pred's dtype, contiguous: ground-truth depths
    weight_ptr,  # (S, N) pred's dtype, contiguous: element weights (read only if HAS_WEIGHT)
    grad_ptr,  # (S, N) pred's dtype, out: d (hinge sum of the series) / d pred (only if NEED_GRAD)
    partial_ptr,  # (S, KB, 2) pred's dtype, out: this block's [hinge sum, active weight (0 unless NEED_ACTIVE)]
    N,  # series length
    KB,  # row blocks per series, cdiv(N, BLOCK_K)
    window,  # largest |k - l| of a pair, 0 <= window <= N
    margin_hi,  # float32 parts of the margin (see the module docstring)
    margin_lo,
    margin_lo2,
    HAS_WEIGHT: tl.constexpr,
    NEED_GRAD: tl.constexpr,
    NEED_ACTIVE: tl.constexpr,
    BLOCK_K: tl.constexpr,  # rows per program
    BLOCK_L: tl.constexpr,  # columns per tile
):
    s = tl.program_id(0).to(tl.int64)
    kb = tl.program_id(1).to(tl.int64)
    base = s * N
    k_first = kb * BLOCK_K
    k = k_first + tl.arange(0, BLOCK_K)  # (BLOCK_K,) rows, int64
    k_ok = k < N
    pk = tl.load(pred_ptr + base + k, mask=k_ok, other=0.0)
    gk = tl.load(gt_ptr + base + k, mask=k_ok, other=0.0)
    margin = tl.cast(margin_hi, pk.dtype) + tl.cast(margin_lo, pk.dtype) + tl.cast(margin_lo2, pk.dtype)

    # Only the columns within `window` of some row of this block.
    k_last = tl.minimum(k_first + BLOCK_K, N) - 1
    lo = tl.maximum(k_first - window, 0)
    hi = tl.minimum(k_last + window + 1, N)
    acc_loss = tl.zeros_like(pk)
    acc_grad = tl.zeros_like(pk)
    acc_active = tl.zeros_like(pk)
    for l0 in range(lo, hi, BLOCK_L):
        l = l0 + tl.arange(0, BLOCK_L)  # (BLOCK_L,) columns
        l_ok = l < hi
        pl = tl.load(pred_ptr + base + l, mask=l_ok, other=0.0)
        gl = tl.load(gt_ptr + base + l, mask=l_ok, other=0.0)
        if HAS_WEIGHT:
            wl = tl.load(weight_ptr + base + l, mask=l_ok, other=0.0)[None, :]
        else:
            wl = 1.0
        dist = k[:, None] - l[None, :]
        valid = k_ok[:, None] & l_ok[None, :] & (dist <= window) & (-dist <= window)  # (BLOCK_K, BLOCK_L)
        loss, grad, active = _pair_terms(pk[:, None], gk[:, None], pl[None, :], gl[None, :], wl, valid, margin)
        acc_loss += tl.sum(loss, axis=1)
        if NEED_GRAD:
            acc_grad += tl.sum(grad, axis=1)
        if NEED_ACTIVE:
            acc_active += tl.sum(active, axis=1)

    if HAS_WEIGHT:
        wk = tl.load(weight_ptr + base + k, mask=k_ok, other=0.0)
        acc_loss = acc_loss * wk
        acc_grad = acc_grad * wk
        acc_active = acc_active * wk
    if NEED_GRAD:
        tl.store(grad_ptr + base + k, acc_grad, mask=k_ok)
    out = partial_ptr + (s * KB + kb) * 2
    tl.store(out, tl.sum(acc_loss, axis=0))
    tl.store(out + 1, tl.sum(acc_active, axis=0))  # zeros unless NEED_ACTIVE


@triton.jit
def _sum_partials_kernel(
    partial_ptr,  # (S, KB, 2) float32/float64: per-block [hinge sum, active weight]
    stats_ptr,  # (S, 2) partial's dtype, out: per-series sums of the blocks, in block order
    S,  # number of series
    KB,  # blocks per series
    BLOCK_S: tl.constexpr,  # series per program
    BLOCK_B: tl.constexpr,  # blocks per tile
):
    pid = tl.program_id(0).to(tl.int64)
    s = pid * BLOCK_S + tl.arange(0, BLOCK_S)  # (BLOCK_S,) int64
    s_ok = s < S
    b = tl.arange(0, BLOCK_B)
    acc_loss = tl.zeros([BLOCK_S], dtype=stats_ptr.dtype.element_ty)
    acc_active = tl.zeros([BLOCK_S], dtype=stats_ptr.dtype.element_ty)
    for b0 in range(0, KB, BLOCK_B):
        bb = b0 + b
        mask = s_ok[:, None] & (bb < KB)[None, :]
        offs = (s[:, None] * KB + bb[None, :]) * 2  # (BLOCK_S, BLOCK_B)
        acc_loss += tl.sum(tl.load(partial_ptr + offs, mask=mask, other=0.0), axis=1)
        acc_active += tl.sum(tl.load(partial_ptr + offs + 1, mask=mask, other=0.0), axis=1)
    tl.store(stats_ptr + 2 * s, acc_loss, mask=s_ok)
    tl.store(stats_ptr + 2 * s + 1, acc_active, mask=s_ok)
