"""torch.library glue for the compiled ops: fake impls and autograd.

``repose::rank_hinge`` (schema in csrc/rank_loss.cpp) returns the per-series hinge sums
and, in the same pass, their gradient with respect to ``pred``. Its autograd formula only
scales that saved gradient, so backward launches nothing. Other backends' ops (Triton)
reuse :func:`register_rank_hinge_autograd`.

``repose::depth_rank_hinge`` (CPU) computes both terms straight from the poses and saves
their gradients; its autograd is registered in C++ (csrc/rank_loss_autograd.cpp) and its
backward op writes d loss / d pred in pred's shape in one pass, so no (B, T, J, 3)
zero-fills, copies or sums are left to autograd. Their fake impls are here, with the
double-backward formula of the backward op.
"""

from __future__ import annotations

import torch

try:  # importing _C runs the C++ registrations (CPU, and CUDA when built with it)
    from . import _C  # noqa: F401

    EXTENSION_ERROR: Exception | None = None
except ImportError as exc:  # pragma: no cover - exercised only without a build
    _C = None
    EXTENSION_ERROR = exc

OP_NAME = "repose::rank_hinge"
DEPTH_OP = "repose::depth_rank_hinge"
DEPTH_BACKWARD_OP = "repose::depth_rank_hinge_backward"


def rank_hinge_fake(pred, gt, weight, margin, window, need_grad, need_active):
    s, n = pred.shape
    return pred.new_empty((s, 2)), pred.new_empty((s, n) if need_grad else (0,))


def _setup_context(ctx, inputs, output):
    _, grad = output
    ctx.need_grad = inputs[5]
    ctx.save_for_backward(grad)


def _backward(ctx, grad_stats, _grad_of_grad):
    if not ctx.need_grad:
        raise RuntimeError(
            "repose rank loss: backward was called on a loss computed with need_grad=False; "
            "compute the loss with autograd enabled and pred.requires_grad=True"
        )
    (grad,) = ctx.saved_tensors
    # Only stats[:, 0] depends on pred; its gradient is already in `grad`. The hinge is
    # piecewise linear, so treating `grad` as a constant is exact for higher orders too.
    return grad_stats[:, :1] * grad, None, None, None, None, None, None


def register_rank_hinge_autograd(op) -> None:
    """Attach the shared autograd formula to a rank-hinge op with the schema above."""
    torch.library.register_autograd(op, _backward, setup_context=_setup_context)


def depth_rank_hinge_fake(pred, gt, weight, margin, window, spatial, temporal, need_grad, need_active):
    b, t, j = pred.shape[:3]
    return (  # a term that is off, or a gradient that is not needed, comes back empty
        pred.new_empty((b, 2) if spatial else (0, 2)),
        pred.new_empty((b, 2) if temporal else (0, 2)),
        pred.new_empty((b, t, j) if spatial and need_grad else (0,)),
        pred.new_empty((b, t, j) if temporal and need_grad else (0,)),
    )


def depth_rank_hinge_backward_fake(grad_spatial_stats, grad_temporal_stats, spatial_grad, temporal_grad, pose):
    shape = (spatial_grad if grad_spatial_stats is not None else temporal_grad).shape  # (B, T, J)
    return spatial_grad.new_empty((*shape, 3) if pose else shape)


def _depth_backward_setup_context(ctx, inputs, output):
    ctx.has_spatial, ctx.has_temporal = inputs[0] is not None, inputs[1] is not None
    ctx.save_for_backward(inputs[2], inputs[3])


def _depth_backward_backward(ctx, grad_out):
    """The backward op is linear in the stats gradients (double backward, e.g. create_graph)."""
    spatial_grad, temporal_grad = ctx.saved_tensors
    gz = grad_out[..., 2] if grad_out.dim() == 4 else grad_out  # (B, T, J)
    grads = [None, None]
    for i, (on, saved) in enumerate(((ctx.has_spatial, spatial_grad), (ctx.has_temporal, temporal_grad))):
        if on:
            col = (gz * saved).sum(dim=(1, 2))
            grads[i] = torch.stack([col, torch.zeros_like(col)], dim=1)
    return grads[0], grads[1], None, None, None


if _C is not None:
    torch.library.register_fake(OP_NAME)(rank_hinge_fake)
    register_rank_hinge_autograd(OP_NAME)
    torch.library.register_fake(DEPTH_OP)(depth_rank_hinge_fake)
    torch.library.register_fake(DEPTH_BACKWARD_OP)(depth_rank_hinge_backward_fake)
    torch.library.register_autograd(
        DEPTH_BACKWARD_OP, _depth_backward_backward, setup_context=_depth_backward_setup_context
    )


def has_kernel(op_name: str, dispatch_key: str) -> bool:
    """Whether the compiled library registered ``op_name`` for ``dispatch_key``."""
    if _C is None:
        return False
    return torch._C._dispatch_has_kernel_for_dispatch_key(op_name, dispatch_key)
