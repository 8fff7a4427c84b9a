"""torch.library glue for the compiled ops: fake impls and autograd.

``repose::rank_hinge`` (schema in csrc/rank_loss.cpp) returns the per-series hinge sums
and, in the same pass, their gradient with respect to ``pred``. Its autograd formula only
scales that saved gradient, so backward launches nothing. Other backends' ops (Triton)
reuse :func:`register_rank_hinge_autograd`.

``repose::depth_rank_loss`` (CPU) computes both terms straight from the poses, reduced with
per-sample factors, and writes d loss / d pred in pred's shape in the same pass; its autograd
is registered in C++ (csrc/rank_loss_autograd.cpp), its fake impl here.
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
DEPTH_OP = "repose::depth_rank_loss"


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


def depth_rank_loss_fake(pred, gt, weight, margin, window, spatial_scale, temporal_scale, need_grad, need_active):
    return pred.new_empty(pred.shape[:1]), pred.new_empty((pred.shape[0], 2)), pred.new_empty(
        pred.shape if need_grad else (0,)
    )


if _C is not None:
    torch.library.register_fake(OP_NAME)(rank_hinge_fake)
    register_rank_hinge_autograd(OP_NAME)
    torch.library.register_fake(DEPTH_OP)(depth_rank_loss_fake)


def has_kernel(op_name: str, dispatch_key: str) -> bool:
    """Whether the compiled library registered ``op_name`` for ``dispatch_key``."""
    if _C is None:
        return False
    return torch._C._dispatch_has_kernel_for_dispatch_key(op_name, dispatch_key)
