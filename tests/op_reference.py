"""What ``repose::depth_rank_loss`` returns (csrc/rank_loss.cpp), computed from ``repose_ext.reference`` in
float64: the expected values for every implementation of the op (CPU, CUDA, Triton). Not part of the package."""

from __future__ import annotations

import torch

from repose_ext import reference


def depth_op_reference(pred, gt, weight, margin, window, spatial_scale, temporal_scale):
    """(loss (B,), active (B, 2), d loss.sum() / d pred) for per-sample factors ``spatial_scale`` and
    ``temporal_scale`` ((B,) tensors, or None for a term that is off); window -1 is all pairs."""
    p = pred.detach().cpu().double().requires_grad_(True)
    g = gt.detach().cpu().double()
    w = None if weight is None else weight.detach().cpu().double()
    win = None if window < 0 else window
    zero = torch.zeros(p.shape[0], dtype=torch.float64)

    def hinge_sums(values, margin_):  # per-sample hinge sums of the two terms
        spatial = reference.spatial_depth_rank_loss(values, g, w, margin_, "none") * _pairs(w, p, 2, None)
        temporal = reference.temporal_depth_rank_loss(values, g, w, margin_, win, "none") * _pairs(w, p, 1, win)
        return spatial, temporal

    spatial, temporal = hinge_sums(p, margin)
    loss = zero
    if spatial_scale is not None:
        loss = loss + spatial_scale.cpu().double() * spatial
    if temporal_scale is not None:
        loss = loss + temporal_scale.cpu().double() * temporal
    grad = torch.zeros_like(p)
    if loss.requires_grad:
        (grad,) = torch.autograd.grad(loss.sum(), p)
    # With all predictions equal and margin 1 every active pair costs exactly 1.
    spatial_active, temporal_active = hinge_sums(torch.zeros_like(p), 1.0)
    active = torch.stack([spatial_active if spatial_scale is not None else zero,
                          temporal_active if temporal_scale is not None else zero], dim=1)
    return loss.detach(), active, grad


def _pairs(w, p, dim, window):
    """The reference's "none" denominator of each sample: the (weighted) number of pairs of its series
    (1 where that is 0, as the reference divides)."""
    w = torch.ones(p.shape[:3], dtype=torch.float64) if w is None else w
    ws = w.movedim(dim, -1)  # (B, X, N)
    n = ws.shape[-1]
    k = torch.arange(n)
    near = (k[:, None] - k[None, :]).abs() <= (n if window is None else window)
    den = torch.einsum("bxk,bxl,kl->b", ws, ws, near.double())
    return torch.where(den > 0, den, torch.ones_like(den))
