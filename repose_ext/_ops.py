"""torch.library glue for the compiled ops: fake impls and autograd.

``repose::rank_hinge`` (schema in csrc/rank_loss.cpp) returns the per-series hinge sums
and, in the same pass, their gradient with respect to ``pred``. Its autograd formula only
scales that saved gradient, so backward launches nothing. Other backends' ops (Triton)
reuse :func:`register_rank_hinge_autograd`.

``repose::depth_rank_hinge`` (CPU) computes both terms straight from the poses and saves
the per-series gradients; its backward op writes d loss / d pred in pred's shape in one
pass, so no (B, T, J, 3) zero-fills, copies or sums are left to autograd.
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
    return (  # a term that is off gets empty tensors
        pred.new_empty((b * t, 2) if spatial else (0, 2)),
        pred.new_empty((b * j, 2) if temporal else (0, 2)),
        pred.new_empty((b * t, j) if spatial and need_grad else (0,)),
        pred.new_empty((b * j, t) if temporal and need_grad else (0,)),
    )


def depth_rank_hinge_backward_fake(grad_spatial_stats, grad_temporal_stats, spatial_grad, temporal_grad, pred_shape):
    return spatial_grad.new_empty(pred_shape)


def _depth_setup_context(ctx, inputs, output):
    ctx.pred_shape = inputs[0].shape
    ctx.spatial, ctx.temporal, ctx.need_grad = inputs[5], inputs[6], inputs[7]
    ctx.save_for_backward(output[2], output[3])


def _depth_backward(ctx, grad_spatial_stats, grad_temporal_stats, _grad_sg, _grad_tg):
    if not ctx.need_grad:
        raise RuntimeError(
            "repose rank loss: backward was called on a loss computed with need_grad=False; "
            "compute the loss with autograd enabled and pred.requires_grad=True"
        )
    spatial_grad, temporal_grad = ctx.saved_tensors
    grad = torch.ops.repose.depth_rank_hinge_backward(
        grad_spatial_stats if ctx.spatial else None,
        grad_temporal_stats if ctx.temporal else None,
        spatial_grad,
        temporal_grad,
        ctx.pred_shape,
    )
    return grad, None, None, None, None, None, None, None, None


def _depth_backward_setup_context(ctx, inputs, output):
    ctx.has_spatial, ctx.has_temporal = inputs[0] is not None, inputs[1] is not None
    ctx.save_for_backward(inputs[2], inputs[3])


def _depth_backward_backward(ctx, grad_out):
    """The backward op is linear in the stats gradients (double backward, e.g. create_graph)."""
    spatial_grad, temporal_grad = ctx.saved_tensors
    gz = grad_out[..., 2] if grad_out.dim() == 4 else grad_out  # (B, T, J)
    b, t, j = gz.shape
    grads = [None, None]
    if ctx.has_spatial:
        col = (gz.reshape(b * t, j) * spatial_grad).sum(dim=1, keepdim=True)
        grads[0] = torch.cat([col, torch.zeros_like(col)], dim=1)
    if ctx.has_temporal:
        col = (gz.transpose(1, 2).reshape(b * j, t) * temporal_grad).sum(dim=1, keepdim=True)
        grads[1] = torch.cat([col, torch.zeros_like(col)], dim=1)
    return grads[0], grads[1], None, None, None


if _C is not None:
    torch.library.register_fake(OP_NAME)(rank_hinge_fake)
    register_rank_hinge_autograd(OP_NAME)
    torch.library.register_fake(DEPTH_OP)(depth_rank_hinge_fake)
    torch.library.register_fake(DEPTH_BACKWARD_OP)(depth_rank_hinge_backward_fake)
    torch.library.register_autograd(DEPTH_OP, _depth_backward, setup_context=_depth_setup_context)
    torch.library.register_autograd(
        DEPTH_BACKWARD_OP, _depth_backward_backward, setup_context=_depth_backward_setup_context
    )


def has_kernel(op_name: str, dispatch_key: str) -> bool:
    """Whether the compiled library registered ``op_name`` for ``dispatch_key``."""
    if _C is None:
        return False
    return torch._C._dispatch_has_kernel_for_dispatch_key(op_name, dispatch_key)
