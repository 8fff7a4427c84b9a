"""Triton kernel of ``repose::depth_rank_loss`` (schema in csrc/rank_loss.cpp): both RePOSE terms in one launch.

A *series* is one ranking problem: the J joints of one frame (spatial term, every pair) or the T frames of
one joint (temporal term, pairs at most ``window`` apart). For the ordered pair (k, l) of one series:

* k nearer (``gt_k < gt_l``): ``loss += w_k w_l relu(p_k - p_l + m)``, ``grad_k += w_k w_l [p_k - p_l + m > 0]``,
  ``active += w_k w_l``;
* l nearer (``gt_l < gt_k``): ``grad_k -= w_k w_l [p_l - p_k + m > 0]``;
* ties in ``gt`` add nothing; the relu subgradient at 0 is 0 (strict ``>``); a NaN prediction makes the loss
  NaN and passes the gradient, as the reference's ``relu`` does.

The depths are read where they lie: channel 2 of (B, T, J, 3) poses or a (B, T, J) tensor, through the
strides the launcher passes (no copies). Each term is weighed by its per-sample factor (``scale``).

One program takes a block of rows (elements k) of one or more series and runs over their columns in tiles,
accumulating pair terms in registers; it reduces once at the end. It adds the gradient of its rows to
``grad`` (the element's one spatial and one temporal contribution meet there: two atomic adds onto a zero,
which give the same sum in either order) and writes its loss and active-pair sums to its own slots of
``loss`` and ``active``, which the launcher sums per sample in a fixed order. Results are the same from run to run.

Program ``pid`` belongs to sample ``pid // (n_sp + n_tm)``; its remainder ``r`` picks the work:
``r < n_sp``: spatial, frames ``[tb * SP_S, (tb + 1) * SP_S)`` and joint rows ``[kb * SP_K, ...)``;
otherwise temporal, joint ``j`` and frame rows ``[kb * TM_K, ...)``.

The margin arrives as three float32 parts whose float64 sum is the float64 margin exactly (a Python float
argument is float32 inside a Triton kernel); for float32 inputs the two low parts are 0.
"""

import triton
import triton.language as tl


@triton.jit
def _pair_terms(pk, gk, pl, gl, wl, valid, margin):
    """Loss, gradient and active weight of every pair of a broadcast tile (zero where not ``valid``).

    ``pk``/``gk`` are the k side and ``pl``/``gl``/``wl`` the l side, shaped to broadcast against each other
    and ``valid``; ``wl`` may be the scalar 1.0. The factor w_k is left to the caller.
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
def _series_rows(
    pred_ptr, gt_ptr, w_ptr, grad_ptr,
    p_base, g_base, w_base, d_base,  # (BLOCK_S,) int64: where element 0 of each series is in pred, gt, weight, grad
    p_es, g_es, w_es, d_es,  # strides from one element of a series to the next, in the same four tensors
    s_ok,  # (BLOCK_S,) which series exist
    N, k_first, window, margin, scale,  # series length, first row, largest |k - l|, margin, factor of the term
    HAS_WEIGHT: tl.constexpr, NEED_GRAD: tl.constexpr, NEED_ACTIVE: tl.constexpr,
    BLOCK_S: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_L: tl.constexpr,
):
    """Rows ``[k_first, k_first + BLOCK_K)`` of BLOCK_S series against their columns; adds ``scale`` x the rows'
    gradient to ``grad`` and returns (``scale`` x hinge sum, active weight) of those rows."""
    k = k_first + tl.arange(0, BLOCK_K)  # (BLOCK_K,) int64
    row_ok = s_ok[:, None] & (k < N)[None, :]  # (BLOCK_S, BLOCK_K)
    pk = tl.load(pred_ptr + p_base[:, None] + k[None, :] * p_es, mask=row_ok, other=0.0)
    gk = tl.load(gt_ptr + g_base[:, None] + k[None, :] * g_es, mask=row_ok, other=0.0)

    # Only the columns within `window` of some row of this block.
    lo = tl.maximum(k_first - window, 0)
    hi = tl.minimum(tl.minimum(k_first + BLOCK_K, N) + window, N)
    acc_loss = tl.zeros([BLOCK_S, BLOCK_K, BLOCK_L], dtype=pk.dtype)
    acc_grad = tl.zeros([BLOCK_S, BLOCK_K, BLOCK_L], dtype=pk.dtype)
    acc_active = tl.zeros([BLOCK_S, BLOCK_K, BLOCK_L], dtype=pk.dtype)
    for l0 in range(lo, hi, BLOCK_L):
        l = l0 + tl.arange(0, BLOCK_L)  # (BLOCK_L,)
        col_ok = s_ok[:, None] & (l < hi)[None, :]  # (BLOCK_S, BLOCK_L)
        pl = tl.load(pred_ptr + p_base[:, None] + l[None, :] * p_es, mask=col_ok, other=0.0)
        gl = tl.load(gt_ptr + g_base[:, None] + l[None, :] * g_es, mask=col_ok, other=0.0)
        if HAS_WEIGHT:
            wl = tl.load(w_ptr + w_base[:, None] + l[None, :] * w_es, mask=col_ok, other=0.0)[:, None, :]
        else:
            wl = 1.0
        dist = k[:, None] - l[None, :]  # (BLOCK_K, BLOCK_L)
        in_window = (dist <= window) & (-dist <= window)
        valid = row_ok[:, :, None] & col_ok[:, None, :] & in_window[None, :, :]
        loss, grad, active = _pair_terms(pk[:, :, None], gk[:, :, None], pl[:, None, :], gl[:, None, :], wl, valid,
                                         margin)
        acc_loss += loss
        if NEED_GRAD:
            acc_grad += grad
        if NEED_ACTIVE:
            acc_active += active

    row_loss = tl.sum(acc_loss, axis=2)  # (BLOCK_S, BLOCK_K)
    row_active = tl.sum(acc_active, axis=2)
    if HAS_WEIGHT:
        wk = tl.load(w_ptr + w_base[:, None] + k[None, :] * w_es, mask=row_ok, other=0.0)
    else:
        wk = 1.0
    if NEED_GRAD:
        row_grad = tl.sum(acc_grad, axis=2) * wk * scale
        tl.atomic_add(grad_ptr + d_base[:, None] + k[None, :] * d_es, row_grad, mask=row_ok)
    loss_sum = tl.sum(tl.sum(row_loss * wk, axis=1), axis=0) * scale
    active_sum = tl.sum(tl.sum(row_active * wk, axis=1), axis=0)
    return loss_sum, active_sum


@triton.jit
def depth_rank_loss_kernel(
    pred_ptr,  # float32/float64: depths at pred_ptr + p0 + b * p_sb + t * p_st + j * p_sj
    gt_ptr,  # pred's dtype, strides g_*
    w_ptr,  # pred's dtype, (B, T, J) weights with strides w_* (read only if HAS_WEIGHT)
    grad_ptr,  # pred's dtype, zero-filled, out: the gradient, depth at d0 + strides d_* (only if NEED_GRAD)
    sscale_ptr,  # (B,) float64: spatial factor of each sample (read only if SPATIAL)
    tscale_ptr,  # (B,) float64: temporal factor of each sample (read only if TEMPORAL)
    loss_ptr,  # (B * (n_sp + n_tm),) pred's dtype, out: the loss of each program's pairs
    active_ptr,  # (B * (n_sp + n_tm), 2) pred's dtype, out: their [spatial, temporal] active weight
    T, J, n_sp, n_tm,  # frames, joints, spatial and temporal programs per sample
    sp_kb, tm_kb,  # row blocks per frame (spatial) and per joint (temporal)
    p0, p_sb, p_st, p_sj,
    g0, g_sb, g_st, g_sj,
    w_sb, w_st, w_sj,
    d0, d_sb, d_st, d_sj,
    window,  # largest |t1 - t2| of a temporal pair, 0 <= window <= T
    margin_hi, margin_lo, margin_lo2,  # float32 parts of the margin (see the module docstring)
    SPATIAL: tl.constexpr, TEMPORAL: tl.constexpr,
    HAS_WEIGHT: tl.constexpr, NEED_GRAD: tl.constexpr, NEED_ACTIVE: tl.constexpr,
    SP_S: tl.constexpr, SP_K: tl.constexpr, SP_L: tl.constexpr,  # spatial: frames per program, row and column tile
    TM_K: tl.constexpr, TM_L: tl.constexpr,  # temporal: row and column tile
):
    pid = tl.program_id(0).to(tl.int64)
    per_sample = n_sp + n_tm
    b = pid // per_sample
    r = pid % per_sample
    dtype = pred_ptr.dtype.element_ty
    margin = tl.cast(margin_hi, dtype) + tl.cast(margin_lo, dtype) + tl.cast(margin_lo2, dtype)
    if SPATIAL:
        if r < n_sp:
            t = (r // sp_kb) * SP_S + tl.arange(0, SP_S)  # (SP_S,) frames
            scale = tl.load(sscale_ptr + b).to(dtype)
            loss, active = _series_rows(
                pred_ptr, gt_ptr, w_ptr, grad_ptr,
                p0 + b * p_sb + t * p_st, g0 + b * g_sb + t * g_st, b * w_sb + t * w_st, d0 + b * d_sb + t * d_st,
                p_sj, g_sj, w_sj, d_sj, t < T, J, (r % sp_kb) * SP_K, J, margin, scale,
                HAS_WEIGHT, NEED_GRAD, NEED_ACTIVE, SP_S, SP_K, SP_L,
            )
            tl.store(loss_ptr + pid, loss)
            tl.store(active_ptr + 2 * pid, active)
            tl.store(active_ptr + 2 * pid + 1, tl.zeros_like(active))
    if TEMPORAL:
        if r >= n_sp:
            q = r - n_sp
            j = q // tm_kb + tl.zeros([1], dtype=tl.int64)  # (1,): one series
            scale = tl.load(tscale_ptr + b).to(dtype)
            loss, active = _series_rows(
                pred_ptr, gt_ptr, w_ptr, grad_ptr,
                p0 + b * p_sb + j * p_sj, g0 + b * g_sb + j * g_sj, b * w_sb + j * w_sj, d0 + b * d_sb + j * d_sj,
                p_st, g_st, w_st, d_st, j < J, T, (q % tm_kb) * TM_K, window, margin, scale,
                HAS_WEIGHT, NEED_GRAD, NEED_ACTIVE, 1, TM_K, TM_L,
            )
            tl.store(loss_ptr + pid, loss)
            tl.store(active_ptr + 2 * pid, tl.zeros_like(active))
            tl.store(active_ptr + 2 * pid + 1, active)
