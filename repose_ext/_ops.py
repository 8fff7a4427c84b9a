"""The op contract of the RePOSE rank losses, in Python: fake implementations and the autograd formula.

``repose::depth_rank_loss`` (schema and meaning in csrc/rank_loss.cpp) is the one op behind the public
API on every device: a CPU kernel and a CUDA kernel are registered to it by the C++ extension, and the
Triton backend is ``repose::depth_rank_loss_triton``, a ``triton_op`` with exactly the same schema
(repose_ext/_triton.py). All of them get their fake implementation and autograd formula from here.

The op writes d loss.sum() / d pred in the forward pass, so backward only weighs that saved gradient by
the upstream gradient of each sample's loss (one multiplication, no kernel), or hands it over as it is when
that gradient is 1 for every sample. The public API calls the op through :func:`call_depth_op`.

The CPU extension also defines the series ops ``repose::rank_hinge``, ``rank_hinge_dense`` and
``rank_hinge_sorted`` ((S, N) series, one algorithm each), which tests and benchmarks use to check and
time the CPU algorithms one series at a time; the public API never calls them.
"""

from __future__ import annotations

import torch

try:  # importing _C runs the C++ registrations (CPU, and CUDA when built with it)
    from . import _C  # noqa: F401

    EXTENSION_ERROR: Exception | None = None
except ImportError as exc:  # pragma: no cover - exercised only without a build
    _C = None
    EXTENSION_ERROR = exc

SERIES_OP = "repose::rank_hinge"
DEPTH_OP = "repose::depth_rank_loss"
NEED_GRAD_ERROR = ("repose rank loss: backward was called on a loss computed with need_grad=False; "
                   "compute the loss with autograd enabled and pred.requires_grad=True")


def depth_rank_loss_fake(pred, gt, weight, margin, window, spatial_scale, temporal_scale, need_grad, need_active):
    return (pred.new_empty(pred.shape[:1]), pred.new_empty((pred.shape[0], 2)),
            pred.new_empty(pred.shape if need_grad else (0,)))


def _depth_setup_context(ctx, inputs, output):
    _, active, grad = output
    ctx.need_grad = inputs[7]
    ctx.mark_non_differentiable(active, grad)
    ctx.set_materialize_grads(False)  # no zero-filled upstream gradients for active and grad
    ctx.save_for_backward(grad)


def _all_ones(g: torch.Tensor) -> bool:
    """Whether g is a plain CPU tensor (not fake, functional or batched: torch.compile, opcheck and vmap trace
    backward) that holds the one value 1 broadcast, as ``loss.backward()`` on a sum of the losses gives."""
    if type(g) is not torch.Tensor or g.device.type != "cpu" or g.dim() != 1 or g.stride() != (0,):
        return False
    keys = torch._C._dispatch_keys(g)
    if torch.is_grad_enabled() or any(keys.has(k) for k in _WRAPPED):
        return False
    return g.numel() > 0 and g[0].item() == 1.0


_WRAPPED = (torch._C.DispatchKey.Python, torch._C.DispatchKey.Functionalize, torch._C.DispatchKey.FuncTorchBatched,
            torch._C.DispatchKey.FuncTorchGradWrapper)


def _depth_backward(ctx, grad_loss, _grad_active, _grad_grad):
    if grad_loss is None:
        return (None,) * 9
    if not ctx.need_grad:
        raise RuntimeError(NEED_GRAD_ERROR)
    (grad,) = ctx.saved_tensors
    if _all_ones(grad_loss):
        # The usual loss.backward(): the saved gradient is the answer. Autograd takes it over as pred.grad without
        # a copy once the graph is freed (with retain_graph, or while anyone else holds it, it copies). On CPU
        # this saves a pass over (B, T, J, 3) and a fresh buffer per step (a quarter of the op's time at
        # (32, 243, 17), one thread).
        return (grad,) + (None,) * 8
    # The hinge is piecewise linear: treating the saved gradient as a constant is exact for higher orders too.
    return (grad * grad_loss.view((-1,) + (1,) * (grad.dim() - 1)),) + (None,) * 8


class _DepthRankLossFunction(torch.autograd.Function):
    """The same formula (setup_context and backward above) as an autograd.Function around the op: the
    eager path of the public API. ``register_autograd``'s Python wrapper costs about 45 us more per forward +
    backward (103 against 58 us at a tiny shape, one thread), a tenth of the whole call at (8, 243, 17); the
    forward(ctx, ...) form avoids the per-call signature binding of the setup_context form (about 35 us)."""

    @staticmethod
    def forward(ctx, op, *args):
        with torch._C._AutoDispatchBelowAutograd():
            output = op(*args)
        _depth_setup_context(ctx, args, output)
        return output

    @staticmethod
    def backward(ctx, *grads):
        return (None,) + _depth_backward(ctx, *grads)


def call_depth_op(op, *args):
    """``op(*args)`` for an op with ``repose::depth_rank_loss``'s schema: through the autograd.Function in eager
    mode when a gradient is needed, the op itself (its registered autograd) under torch.compile and otherwise."""
    need_grad = args[7]  # the schema's need_grad
    if need_grad and torch.is_grad_enabled() and not torch.compiler.is_compiling():
        return _DepthRankLossFunction.apply(op, *args)
    return op(*args)


def register_depth_op(op) -> None:
    """Give an op with ``repose::depth_rank_loss``'s schema the shared fake implementation and autograd."""
    torch.library.register_fake(op)(depth_rank_loss_fake)
    torch.library.register_autograd(op, _depth_backward, setup_context=_depth_setup_context)


def rank_hinge_fake(pred, gt, weight, margin, window, need_grad, need_active):
    s, n = pred.shape
    return pred.new_empty((s, 2)), pred.new_empty((s, n) if need_grad else (0,))


def _series_setup_context(ctx, inputs, output):
    ctx.need_grad = inputs[5]
    ctx.save_for_backward(output[1])


def _series_backward(ctx, grad_stats, _grad_of_grad):
    if not ctx.need_grad:
        raise RuntimeError(NEED_GRAD_ERROR)
    (grad,) = ctx.saved_tensors
    # Only stats[:, 0] depends on pred; its gradient is already in `grad`.
    return grad_stats[:, :1] * grad, None, None, None, None, None, None


def register_series_op(op) -> None:
    """Give a CPU series op (``repose::rank_hinge``'s schema) its fake implementation and autograd."""
    torch.library.register_fake(op)(rank_hinge_fake)
    torch.library.register_autograd(op, _series_backward, setup_context=_series_setup_context)


if _C is not None:
    register_depth_op(DEPTH_OP)
    register_series_op(SERIES_OP)


def has_kernel(op_name: str, dispatch_key: str) -> bool:
    """Whether the compiled library registered ``op_name`` for ``dispatch_key``."""
    if _C is None:
        return False
    return torch._C._dispatch_has_kernel_for_dispatch_key(op_name, dispatch_key)
