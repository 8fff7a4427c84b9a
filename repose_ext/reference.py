"""Plain PyTorch reference of the RePOSE depth-order (rank) losses: the specification.

Readable over fast: every pair tensor is materialised, O(B*T*J*J) for the spatial term
and O(B*J*T*T) for the temporal term. Tests compare every fused backend with these
functions, benchmarks use them as the baseline, and ``backend="reference"`` calls them.

Definitions (paper: RePOSE, ECCV 2024; released code ``lib/model/loss.py``). With the
predicted depth ``p = pred[..., 2]`` and ground-truth depth ``g = gt[..., 2]`` of shape
``(B, T, J)``:

    spatial  = 1/(B*T*J*J) * sum_{b,t,i,j} [g(b,t,i) < g(b,t,j)] * relu(p(b,t,i) - p(b,t,j))
    temporal = 1/(B*J*T*T) * sum_{b,j,t1,t2} [g(b,t1,j) < g(b,t2,j)] * relu(p(b,t1,j) - p(b,t2,j))

* Every ordered pair counts in the denominator: the diagonal, tied and inactive pairs too.
* Ties in the ground truth (strict ``<``) never contribute, in either order.
* No gradient flows to ``gt``. At an exact tie of predictions (``p_i == p_j`` on an active
  pair) the gradient is the relu subgradient 0; the authors' ``torch.maximum(x, 0)`` gives
  half a gradient there (see :func:`authors_spatial_rank_loss`). This is the one
  difference from the released code.
* NaN in ``pred`` propagates to the loss.

Options beyond the paper (defaults reproduce it). Each series (the joints of one frame,
or the frames of one joint) is a set of elements k with depth p_k, g_k and weight w_k:

* ``margin`` m: an active pair costs ``relu(p_k - p_l + m)``.
* ``weight`` w of shape (B, T, J) (e.g. visibility): the pair (k, l) counts ``w_k * w_l``,
  in the loss and in the denominator.
* ``window`` W (temporal only): only frame pairs with ``|t1 - t2| <= W`` exist.
* ``reduction``: with ``c_kl = w_k w_l`` over the existing pairs and ``a_kl = [g_k < g_l]``,
  ``"sum"`` = sum c*a*hinge; ``"mean"`` (paper) = sum c*a*hinge / sum c; ``"none"`` = the
  ``"mean"`` of each sample, shape (B,); ``"active"`` = sum c*a*hinge / sum c*a.
  A zero denominator gives 0.
* Weights of any sign: the formula applies as written (a pair with ``w_k w_l < 0`` subtracts), and a
  denominator that is not positive leaves its sum undivided (so a zero denominator gives 0 above). Visibility
  weights are non-negative; the sign is not checked (on a GPU that would need a device synchronisation).
"""

from __future__ import annotations

import torch

REDUCTIONS = ("mean", "sum", "none", "active")


def _depth(x: torch.Tensor) -> torch.Tensor:
    """(B, T, J, 3) -> its z channel (B, T, J); (B, T, J) is returned as is."""
    return x[..., 2] if x.dim() == 4 else x


def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return num / torch.where(den > 0, den, torch.ones_like(den))


def pairwise_rank_hinge(p, g, w=None, margin=0.0, window=None, reduction="mean"):
    """The pair sum over the last dimension of (B, X, N) series.

    Args:
        p: predicted depth, (B, X, N).
        g: ground-truth depth, (B, X, N); only compared, never differentiated.
        w: per-element weight (B, X, N), or None for ones.
        margin: hinge margin m.
        window: None, or the largest |k - l| of a pair.
        reduction: one of ``REDUCTIONS``.

    Returns:
        A scalar, or (B,) for ``reduction="none"``.
    """
    g = g.detach()
    n = p.shape[-1]
    active = (g[..., :, None] < g[..., None, :]).to(p.dtype)  # (B, X, N, N): a_kl
    hinge = torch.relu(p[..., :, None] - p[..., None, :] + margin)  # (B, X, N, N)
    pair_w = torch.ones_like(active) if w is None else w.detach()[..., :, None] * w.detach()[..., None, :]
    if window is not None:
        idx = torch.arange(n, device=p.device)
        pair_w = pair_w * ((idx[:, None] - idx[None, :]).abs() <= window).to(p.dtype)
    loss = pair_w * active * hinge  # multiplication keeps NaN predictions visible
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return _safe_div(loss.sum(), pair_w.sum())
    if reduction == "none":
        return _safe_div(loss.sum(dim=(1, 2, 3)), pair_w.sum(dim=(1, 2, 3)))
    if reduction == "active":
        return _safe_div(loss.sum(), (pair_w * active).sum())
    raise ValueError(f"reduction must be one of {REDUCTIONS}; got {reduction!r}")


def spatial_depth_rank_loss(pred, gt, weight=None, margin=0.0, reduction="mean"):
    """Spatial term: all ordered joint pairs of every frame.

    Shape:
        pred, gt: (B, T, J, 3) or depths (B, T, J); weight: (B, T, J) or None.
    """
    return pairwise_rank_hinge(_depth(pred), _depth(gt), weight, margin, None, reduction)


def temporal_depth_rank_loss(pred, gt, weight=None, margin=0.0, window=None, reduction="mean"):
    """Temporal term: all ordered frame pairs of every joint (or those within ``window``).

    Shape:
        pred, gt: (B, T, J, 3) or depths (B, T, J); weight: (B, T, J) or None.
    """
    p, g = _depth(pred).transpose(1, 2), _depth(gt).transpose(1, 2)  # (B, J, T)
    w = None if weight is None else weight.transpose(1, 2)
    return pairwise_rank_hinge(p, g, w, margin, window, reduction)


# The authors' form, kept as the benchmark baseline: the released code's construction
# (repeat_interleave + repeat + torch.maximum). Same value as the paper definition; at an
# exact prediction tie torch.maximum passes half a gradient.


def authors_spatial_rank_loss(pred, gt):
    """Released ``loss_spatial_rank`` form. pred, gt: (B, T, J, 3)."""
    b, t, j, _ = pred.shape
    pz, gz = pred[..., 2], gt[..., 2]
    p_i = pz.repeat_interleave(j, dim=2).view(b, t, j, j)
    p_j = pz.repeat(1, 1, j).view(b, t, j, j)
    g_i = gz.repeat_interleave(j, dim=2).view(b, t, j, j)
    g_j = gz.repeat(1, 1, j).view(b, t, j, j)
    mask = (g_i < g_j).float().to(pred.dtype)
    return (mask * torch.maximum(p_i - p_j, torch.zeros_like(p_i))).mean()


def authors_temporal_rank_loss(pred, gt):
    """Released ``loss_temporal_rank`` form. pred, gt: (B, T, J, 3)."""
    b, t, j, _ = pred.shape
    pz, gz = pred[..., 2].transpose(1, 2), gt[..., 2].transpose(1, 2)  # (B, J, T)
    p_1 = pz.repeat_interleave(t, dim=2).view(b, j, t, t)
    p_2 = pz.repeat(1, 1, t).view(b, j, t, t)
    g_1 = gz.repeat_interleave(t, dim=2).view(b, j, t, t)
    g_2 = gz.repeat(1, 1, t).view(b, j, t, t)
    mask = (g_1 < g_2).float().to(pred.dtype)
    return (mask * torch.maximum(p_1 - p_2, torch.zeros_like(p_1))).mean()
