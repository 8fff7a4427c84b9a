"""Differentiable pose losses of MotionBERT's training recipe (the base objective RePOSE adds its rank losses to).

MotionBERT's H36M objective is ``mpjpe_loss + 0.5 * n_mpjpe_loss + 20 * velocity_loss``; the RePOSE
depth-order terms are in :mod:`repose_ext.losses`. These losses work in whatever units the inputs use (the
normalised image coordinates of the MotionBERT data pipeline during training).
"""

from __future__ import annotations

import torch

from .._shapes import shape_str as _shape



def _check(pred: torch.Tensor, gt: torch.Tensor) -> None:
    for name, t in (("pred", pred), ("gt", gt)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor; got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor; got {t.dtype}")
    if pred.dim() != 4 or pred.shape[-1] != 3:
        raise ValueError(f"pred must have shape (B, T, J, 3); got {_shape(pred)}")
    if gt.shape != pred.shape:
        raise ValueError(f"gt must have the shape of pred {_shape(pred)}; got {_shape(gt)}")


def mpjpe_loss(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance between predicted and ground-truth joints.

    Args:
        pred: predicted poses.
        gt: ground-truth poses.

    Returns:
        0-d tensor: mean over B, T and J of ||pred - gt||_2.

    Shape:
        pred, gt: (B, T, J, 3).
    """
    _check(pred, gt)
    return torch.linalg.vector_norm(pred - gt, dim=-1).mean()


def n_mpjpe_loss(pred: torch.Tensor, gt: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """MPJPE after rescaling each predicted pose by its least-squares scale.

    For every (b, t): ``s = mean_j <p_j, g_j> / mean_j <p_j, p_j>``, then ``mpjpe_loss(s * pred, gt)``. The
    gradient flows through ``s`` as well. The denominator is clamped to ``eps`` so an all-zero prediction gives
    ``s = 0`` instead of NaN.

    Args:
        pred: predicted poses.
        gt: ground-truth poses.
        eps: lower bound of the denominator.

    Returns:
        0-d tensor.

    Shape:
        pred, gt: (B, T, J, 3).
    """
    _check(pred, gt)
    pp = (pred * pred).sum(dim=-1, keepdim=True).mean(dim=-2, keepdim=True)  # (B, T, 1, 1)
    pg = (pred * gt).sum(dim=-1, keepdim=True).mean(dim=-2, keepdim=True)
    scale = pg / pp.clamp_min(eps)
    return mpjpe_loss(scale * pred, gt)


def velocity_loss(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """MPJPE between the first temporal differences of prediction and ground truth.

    ``mean ||(P[t+1] - P[t]) - (G[t+1] - G[t])||_2`` over B, the T - 1 differences and J. A clip of one frame has
    no velocity: the loss is then 0 (still attached to ``pred``'s graph, so ``backward`` works).

    Args:
        pred: predicted poses.
        gt: ground-truth poses.

    Returns:
        0-d tensor.

    Shape:
        pred, gt: (B, T, J, 3).
    """
    _check(pred, gt)
    if pred.shape[1] <= 1:
        return (pred * 0).sum()
    return mpjpe_loss(pred.diff(dim=1), gt.diff(dim=1))
