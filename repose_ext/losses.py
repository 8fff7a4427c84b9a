"""Public API of the RePOSE depth-order losses: functions and nn.Modules.

Each call checks its inputs, lays the depths out as (S, N) series (the J joints of each
frame for the spatial term, the T frames of each joint for the temporal term), runs the
chosen backend on them and applies the reduction. The definitions, options and tie rule
are those of :mod:`repose_ext.reference`, which is the specification.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from . import reference
from .backends import resolve_backend
from .reference import REDUCTIONS

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


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


def _pair_weight(w: Optional[torch.Tensor], s: int, n: int, window: Optional[int], like: torch.Tensor):
    """Sum of w_k * w_l over the existing pairs of each series: (S,)."""
    if w is None:
        if window is None:
            return like.new_full((s,), float(n * n))
        k = torch.arange(n, device=like.device)
        count = (torch.clamp(k + window + 1, max=n) - torch.clamp(k - window, min=0)).sum()
        return like.new_full((s,), float(count))
    if window is None:
        return w.sum(dim=1) ** 2
    csum = torch.nn.functional.pad(w.double().cumsum(dim=1), (1, 0))  # csum[:, k] = sum of w[:, :k]
    k = torch.arange(n, device=w.device)
    hi, lo = torch.clamp(k + window + 1, max=n), torch.clamp(k - window, min=0)
    return (w.double() * (csum[:, hi] - csum[:, lo])).sum(dim=1).to(w.dtype)


def _rank_loss(pred, gt, weight, margin, window, reduction, backend, temporal):
    _check_inputs(pred, gt, weight, margin, window, reduction)
    be = resolve_backend(backend, pred.device)
    out_dtype = torch.promote_types(pred.dtype, gt.dtype)
    compute = torch.promote_types(out_dtype, torch.float32)  # half/bf16 accumulate in fp32
    p = reference._depth(pred).to(compute)
    g = reference._depth(gt).detach().to(compute)
    w = None if weight is None else weight.detach().to(compute)

    if be.op is None:  # the plain PyTorch specification
        if temporal:
            loss = reference.temporal_depth_rank_loss(p, g, w, margin, window, reduction)
        else:
            loss = reference.spatial_depth_rank_loss(p, g, w, margin, reduction)
        return loss.to(out_dtype)

    if temporal:  # series = the frames of one joint
        p, g = p.transpose(1, 2), g.transpose(1, 2)
        w = None if w is None else w.transpose(1, 2)
    b, x, n = p.shape
    s = b * x
    p, g = p.reshape(s, n).contiguous(), g.reshape(s, n).contiguous()
    w = None if w is None else w.reshape(s, n).contiguous()
    need_grad = torch.is_grad_enabled() and pred.requires_grad
    stats, _ = be.op(p, g, w, float(margin), -1 if window is None else int(window), need_grad, reduction == "active")
    loss_series = stats[:, 0]
    if reduction == "sum":
        loss = loss_series.sum()
    elif reduction == "active":
        loss = _safe_div(loss_series.sum(), stats[:, 1].sum())
    else:
        pair_w = _pair_weight(w, s, n, window, loss_series)
        if reduction == "mean":
            loss = _safe_div(loss_series.sum(), pair_w.sum())
        else:  # "none": the mean of each sample
            loss = _safe_div(loss_series.view(b, x).sum(dim=1), pair_w.view(b, x).sum(dim=1))
    return loss.to(out_dtype)


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
    return _rank_loss(pred, gt, weight, margin, None, reduction, backend, temporal=False)


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
    return _rank_loss(pred, gt, weight, margin, window, reduction, backend, temporal=True)


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
    """``lambda_spatial * spatial + lambda_temporal * temporal``; a term with weight 0 is not computed.

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
        self.spatial = SpatialDepthRankLoss(margin, reduction, backend)
        self.temporal = TemporalDepthRankLoss(margin, window, reduction, backend)

    def forward(self, pred, gt, weight=None):
        loss = None
        if self.lambda_spatial != 0:
            loss = self.lambda_spatial * self.spatial(pred, gt, weight)
        if self.lambda_temporal != 0:
            term = self.lambda_temporal * self.temporal(pred, gt, weight)
            loss = term if loss is None else loss + term
        if loss is None:
            shape = (pred.shape[0],) if self.spatial.reduction == "none" else ()
            loss = pred.new_zeros(shape)
        return loss
