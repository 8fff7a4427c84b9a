"""Public API of the RePOSE depth-order losses: functions and nn.Modules.

Each call checks its inputs, turns the reduction and the lambdas into per-sample factors and
calls the chosen backend's op (``repose::depth_rank_loss``'s schema, csrc/rank_loss.cpp): it
reads the depths straight from the poses and returns the reduced loss and its gradient. The
definitions, options and tie rule are those of :mod:`repose_ext.reference`, the specification.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from . import _ops, reference
from .backends import resolve_backend
from .reference import REDUCTIONS
from ._shapes import shape_str as _shape

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)



def _check_inputs(pred, gt, weight, margin, window, reduction):
    for name, t in (("pred", pred), ("gt", gt)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor; got {type(t).__name__}")
        if t.dtype not in _FLOAT_DTYPES:
            raise TypeError(
                f"{name} must be a floating-point tensor (float16, bfloat16, float32 or float64); got {t.dtype}"
            )
        if t.dim() == 4:
            if t.shape[-1] != 3:
                raise ValueError(
                    f"{name} must have shape (B, T, J, 3) (x, y, z in the last dimension) or (B, T, J); "
                    f"got {_shape(t)}"
                )
        elif t.dim() != 3:
            raise ValueError(f"{name} must have shape (B, T, J, 3) or depths (B, T, J); got {_shape(t)}")
    if gt.shape != pred.shape:
        raise ValueError(f"gt must have the shape of pred {_shape(pred)}; got {_shape(gt)}")
    if gt.device != pred.device:
        raise ValueError(f"pred and gt must be on the same device; got pred on {pred.device} and gt on {gt.device}")
    if weight is not None:
        if not isinstance(weight, torch.Tensor):
            raise TypeError(f"weight must be a torch.Tensor or None; got {type(weight).__name__}")
        if weight.shape != pred.shape[:3]:
            raise ValueError(
                f"weight must have shape (B, T, J) = ({', '.join(str(d) for d in pred.shape[:3])}); "
                f"got {_shape(weight)}"
            )
        if weight.dtype not in _FLOAT_DTYPES and weight.dtype != torch.bool:
            raise TypeError(f"weight must be a floating-point or bool tensor; got {weight.dtype}")
        if weight.device != pred.device:
            raise ValueError(f"weight must be on pred's device {pred.device}; got {weight.device}")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not math.isfinite(margin):
        raise ValueError(f"margin must be a finite number; got {margin!r}")
    if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 0):
        raise ValueError(f"window must be None or an int >= 0; got {window!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}; got {reduction!r}")


def _safe_div(num, den):
    return num / torch.where(den > 0, den, torch.ones_like(den))


def _pair_count(n: int, window: Optional[int]) -> int:
    """Number of ordered pairs (k, l), k == l included, of a series of n with |k - l| <= window."""
    m = n - 1 if window is None else min(window, n - 1)
    return n + m * (2 * n - m - 1) if n > 0 else 0


def _pair_weight(w: torch.Tensor, dim: int, window: Optional[int]) -> torch.Tensor:
    """Sum of w_k * w_l over the existing pairs of each series; the series run along ``dim``
    of the (B, T, J) weights. Returns (B, X), X the remaining dimension."""
    if window is None:
        return w.sum(dim=dim) ** 2
    ws = w.double().movedim(dim, -1)  # (B, X, N)
    n = ws.shape[-1]
    csum = torch.nn.functional.pad(ws.cumsum(dim=-1), (1, 0))  # csum[..., k] = sum of w[..., :k]
    k = torch.arange(n, device=w.device)
    hi, lo = torch.clamp(k + window + 1, max=n), torch.clamp(k - window, min=0)
    return (ws * (csum[..., hi] - csum[..., lo])).sum(dim=-1).to(w.dtype)


def _factors(w, dim, window, reduction, shape):
    """Per-sample factors f of one term for reduction "mean", "sum" or "none": the reduced
    term is sum_b f_b * hinge_b (each sample's own for "none"), hinge_b the hinge sum of
    sample b. The series run along ``dim`` (2: joints, 1: frames) of the (B, T, J) depths.
    Returns a float, or (B,) with weights."""
    if reduction == "sum":
        return 1.0
    per_sample = reduction == "none"
    if w is None:  # the same number of pairs in every series
        den = shape[3 - dim] * (1 if per_sample else shape[0]) * _pair_count(shape[dim], window)
        return 1.0 / den if den > 0 else 1.0  # no pairs: every hinge sum is 0
    pair_w = _pair_weight(w, dim, window).sum(dim=1)  # (B,)
    den = pair_w if per_sample else pair_w.sum().expand_as(pair_w)
    return 1 / torch.where(den > 0, den, torch.ones_like(den))


def _one_pass_loss(op, p, g, w, margin, window, reduction, need_grad, lambdas):
    """Both terms from one call of an op with ``repose::depth_rank_loss``'s schema, the
    reduction and the lambdas folded into its per-sample factors (so that backward has
    nothing to do but hand over the saved gradient). "active" divides by counts that
    come out of the op: one call per term. None when both lambdas are 0."""
    b, win = p.shape[0], -1 if window is None else int(window)
    if reduction == "active":
        terms = [None, None]
        for col, lam in enumerate(lambdas):
            if lam != 0:
                scales = [None, None]
                scales[col] = p.new_ones(b, dtype=torch.float64)
                per_sample, active, _ = _ops.call_depth_op(op, p, g, w, margin, win, *scales, need_grad, True)
                terms[col] = _safe_div(per_sample.sum(), active[:, col].sum())
        return _weighted_sum(lambdas, terms)
    scales = [None, None]
    for col, (lam, dim, term_window) in enumerate(zip(lambdas, (2, 1), (None, window))):
        if lam != 0:
            f = _factors(w, dim, term_window, reduction, p.shape)
            f = f.double() if isinstance(f, torch.Tensor) else p.new_full((b,), f, dtype=torch.float64)
            scales[col] = f if lam == 1 else lam * f
    if scales[0] is None and scales[1] is None:
        return None
    per_sample = _ops.call_depth_op(op, p, g, w, margin, win, *scales, need_grad, False)[0]
    return per_sample if reduction == "none" else per_sample.sum()


def _rank_loss(pred, gt, weight, margin, window, reduction, backend, lambda_spatial, lambda_temporal):
    """lambda_spatial * spatial + lambda_temporal * temporal; a term with lambda 0 is not computed."""
    _check_inputs(pred, gt, weight, margin, window, reduction)
    be = resolve_backend(backend, pred.device)
    # (torch.promote_types is a dispatched op: skip it in the usual case of one dtype)
    out_dtype = pred.dtype if pred.dtype == gt.dtype else torch.promote_types(pred.dtype, gt.dtype)
    compute = out_dtype if out_dtype in (torch.float32, torch.float64) else torch.float32  # half/bf16: fp32
    p = pred.to(compute)
    g = gt.detach().to(compute)
    w = None if weight is None else weight.detach().to(compute)
    spatial, temporal = lambda_spatial != 0, lambda_temporal != 0

    need_grad = torch.is_grad_enabled() and pred.requires_grad
    if be.op is None:  # the plain PyTorch specification
        loss = _weighted_sum(
            (lambda_spatial, lambda_temporal),
            (spatial and reference.spatial_depth_rank_loss(p, g, w, margin, reduction),
             temporal and reference.temporal_depth_rank_loss(p, g, w, margin, window, reduction)),
        )
    else:  # one op for both terms, reduced
        loss = _one_pass_loss(be.op, p, g, w, float(margin), window, reduction, need_grad,
                              (lambda_spatial, lambda_temporal))
    if loss is None:
        loss = pred.new_zeros((pred.shape[0],) if reduction == "none" else (), dtype=out_dtype)
    return loss.to(out_dtype)


def _weighted_sum(lambdas, terms):
    """sum of lambda * term over the terms whose lambda is not 0 (None if there are none)."""
    loss = None
    for lam, term in zip(lambdas, terms):
        if lam != 0:
            term = term if lam == 1 else lam * term
            loss = term if loss is None else loss + term
    return loss


def depth_rank_loss(
    pred: torch.Tensor,
    gt: torch.Tensor,
    weight: Optional[torch.Tensor] = None,
    *,
    lambda_spatial: float = 1.0,
    lambda_temporal: float = 1.0,
    margin: float = 0.0,
    window: Optional[int] = None,
    reduction: str = "mean",
    backend: str = "auto",
) -> torch.Tensor:
    """``lambda_spatial * spatial + lambda_temporal * temporal`` in one pass over the poses.

    The same value as the sum of :func:`spatial_depth_rank_loss` and
    :func:`temporal_depth_rank_loss` (``window`` applies to the temporal term), computed
    together: one op reads the depths from pred once and returns one gradient. A term
    with lambda 0 is not computed.

    Args:
        pred, gt, weight, margin, window, reduction, backend: as in the two functions.
        lambda_spatial, lambda_temporal: weights of the two terms (the paper's values are unknown).

    Returns:
        The loss: a scalar, or (B,) for ``reduction="none"``, in the promoted dtype of pred and gt.
    """
    for name, lam in (("lambda_spatial", lambda_spatial), ("lambda_temporal", lambda_temporal)):
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not math.isfinite(lam):
            raise ValueError(f"{name} must be a finite number; got {lam!r}")
    return _rank_loss(pred, gt, weight, margin, window, reduction, backend, lambda_spatial, lambda_temporal)


def spatial_depth_rank_loss(
    pred: torch.Tensor,
    gt: torch.Tensor,
    weight: Optional[torch.Tensor] = None,
    *,
    margin: float = 0.0,
    reduction: str = "mean",
    backend: str = "auto",
) -> torch.Tensor:
    """RePOSE spatial depth-order loss over all ordered joint pairs of every frame.

    ``1/(B*T*J*J) * sum [gt_z(b,t,i) < gt_z(b,t,j)] * relu(pred_z(b,t,i) - pred_z(b,t,j))``
    with the defaults (the paper). See :mod:`repose_ext.reference` for every option.

    Args:
        pred: predicted poses (B, T, J, 3), or predicted depths (B, T, J).
        gt: ground truth of the same shape; it only decides the order (no gradient).
        weight: optional per-joint weight or visibility (B, T, J); a pair counts w_i * w_j.
        margin: hinge margin on active pairs (default 0, the paper).
        reduction: "mean" (paper), "sum", "none" (per sample, (B,)) or "active".
        backend: "auto", "cpu", "cuda", "triton" or "reference".

    Returns:
        The loss: a scalar, or (B,) for ``reduction="none"``, in the promoted dtype of pred and gt.
    """
    return _rank_loss(pred, gt, weight, margin, None, reduction, backend, 1.0, 0.0)


def temporal_depth_rank_loss(
    pred: torch.Tensor,
    gt: torch.Tensor,
    weight: Optional[torch.Tensor] = None,
    *,
    margin: float = 0.0,
    window: Optional[int] = None,
    reduction: str = "mean",
    backend: str = "auto",
) -> torch.Tensor:
    """RePOSE temporal depth-order loss over all ordered frame pairs of every joint.

    ``1/(B*J*T*T) * sum [gt_z(b,t1,j) < gt_z(b,t2,j)] * relu(pred_z(b,t1,j) - pred_z(b,t2,j))``
    with the defaults (the paper). See :mod:`repose_ext.reference` for every option.

    Args:
        pred: predicted poses (B, T, J, 3), or predicted depths (B, T, J).
        gt: ground truth of the same shape; it only decides the order (no gradient).
        weight: optional per-joint weight or visibility (B, T, J); a pair counts w_t1 * w_t2.
        margin: hinge margin on active pairs (default 0, the paper).
        window: None (all frame pairs, the paper) or the largest |t1 - t2| of a pair.
        reduction: "mean" (paper), "sum", "none" (per sample, (B,)) or "active".
        backend: "auto", "cpu", "cuda", "triton" or "reference".

    Returns:
        The loss: a scalar, or (B,) for ``reduction="none"``, in the promoted dtype of pred and gt.
    """
    return _rank_loss(pred, gt, weight, margin, window, reduction, backend, 0.0, 1.0)


class SpatialDepthRankLoss(nn.Module):
    """Module form of :func:`spatial_depth_rank_loss`; forward(pred, gt, weight=None)."""

    def __init__(self, margin: float = 0.0, reduction: str = "mean", backend: str = "auto"):
        super().__init__()
        self.margin, self.reduction, self.backend = margin, reduction, backend

    def forward(self, pred, gt, weight=None):
        return spatial_depth_rank_loss(
            pred, gt, weight, margin=self.margin, reduction=self.reduction, backend=self.backend
        )


class TemporalDepthRankLoss(nn.Module):
    """Module form of :func:`temporal_depth_rank_loss`; forward(pred, gt, weight=None)."""

    def __init__(self, margin: float = 0.0, window: Optional[int] = None, reduction: str = "mean", backend: str = "auto"):
        super().__init__()
        self.margin, self.window, self.reduction, self.backend = margin, window, reduction, backend

    def forward(self, pred, gt, weight=None):
        return temporal_depth_rank_loss(
            pred, gt, weight, margin=self.margin, window=self.window, reduction=self.reduction, backend=self.backend
        )


class DepthRankLoss(nn.Module):
    """Module form of :func:`depth_rank_loss`: ``lambda_spatial * spatial + lambda_temporal * temporal``
    in one pass; a term with weight 0 is not computed. forward(pred, gt, weight=None).

    Args:
        lambda_spatial, lambda_temporal: weights of the two terms (the paper's values are unknown).
        margin, window, reduction, backend: as in the functions.
    """

    def __init__(
        self,
        lambda_spatial: float = 1.0,
        lambda_temporal: float = 1.0,
        margin: float = 0.0,
        window: Optional[int] = None,
        reduction: str = "mean",
        backend: str = "auto",
    ):
        super().__init__()
        self.lambda_spatial, self.lambda_temporal = lambda_spatial, lambda_temporal
        self.margin, self.window, self.reduction, self.backend = margin, window, reduction, backend

    def forward(self, pred, gt, weight=None):
        return depth_rank_loss(
            pred,
            gt,
            weight,
            lambda_spatial=self.lambda_spatial,
            lambda_temporal=self.lambda_temporal,
            margin=self.margin,
            window=self.window,
            reduction=self.reduction,
            backend=self.backend,
        )
