"""Triton backend of the rank losses: launchers, the op ``repose::rank_hinge_triton``, registration.

The op has the arguments of ``repose::rank_hinge`` (csrc/rank_loss.cpp; the schema is
inferred from the type hints, so ``window`` reads ``SymInt``) and is built with
``torch.library.triton_op`` + ``wrap_triton``: ``torch.compile`` sees the kernels and the
fake implementation comes from tracing the launcher. Under Triton's interpreter it is a
plain ``torch.library.custom_op`` with the shared fake implementation instead, because the
interpreter cannot be traced. Its autograd formula is the one shared by every backend
(:func:`repose_ext._ops.register_rank_hinge_autograd`).

Importing this module never fails: without Triton, or without a GPU, the backend "triton"
is registered as unavailable, with the fix in its message, and neither Triton nor the op is
loaded (building a ``triton_op`` imports much of torch.compile, about a second). With
``TRITON_INTERPRET=1`` set before the import, the kernels run on CPU tensors too (Triton's
interpreter; slow, meant for tests).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch

from . import _ops, backends

OP_NAME = "repose::rank_hinge_triton"
INTERPRET = os.environ.get("TRITON_INTERPRET", "0") == "1"


def _triton_installed() -> bool:
    try:
        return importlib.util.find_spec("triton") is not None
    except (ImportError, ValueError):  # e.g. sys.modules["triton"] = None
        return False


TRITON_ERROR: Optional[str] = None  # why the backend is unavailable, None when it is available
if not _triton_installed():
    TRITON_ERROR = "Triton is not installed (`pip install triton`, or `pip install repose-ext[triton]`)"
elif not (INTERPRET or torch.cuda.is_available()):
    TRITON_ERROR = "needs a CUDA GPU (or TRITON_INTERPRET=1 set before importing repose_ext, for CPU tensors)"
else:
    try:
        import triton

        from .kernels import rank_hinge as _kernels
    except ImportError as exc:  # a broken Triton install
        TRITON_ERROR = f"Triton failed to import: {exc}"

# Grid limit of the second launch dimension (CUDA's gridDim.y).
_MAX_GRID_Y = 65535


@dataclass(frozen=True)
class LaunchConfig:
    """Block sizes of the Triton launch (tests shrink them to reach every code path).

    Attributes:
        short_max_n: series up to this length use the one-tile kernel (power of two).
        short_tile: pairs per program of that kernel, BLOCK_S * BLOCK_N**2 (power of two).
        block_k: rows per program of the long-series kernel (power of two).
        block_l: columns per tile of the long-series kernel (power of two).
        reduce_series: series per program of the partial-sum reduction (power of two).
        reduce_blocks: partials per tile of that reduction (power of two).
        short_warps, rows_warps: warps per program of the two pair kernels.

    The defaults keep the pair kernels at 8 to 16 pairs per thread: compiled for sm_90 they
    use 70 to 80 registers in float32 (about 130 in float64) and spill nothing.
    """

    short_max_n: int = 32
    short_tile: int = 2048
    block_k: int = 64
    block_l: int = 32
    reduce_series: int = 32
    reduce_blocks: int = 32
    short_warps: int = 4
    rows_warps: int = 8


DEFAULT_CONFIG = LaunchConfig()


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def split_margin(margin: float, dtype: torch.dtype) -> Tuple[float, float, float]:
    """The margin as float32 parts for the kernels: exact in float64, the float32 rounding otherwise.

    Triton passes a Python float as float32; the three parts add up (in float64) to the
    float64 margin exactly. For float32 inputs only the first part is non-zero, the margin
    rounded to float32, as PyTorch rounds a scalar added to a float32 tensor.
    """
    hi = float(np.float32(margin))
    if dtype != torch.float64:
        return hi, 0.0, 0.0
    lo = float(np.float32(margin - hi))
    return hi, lo, float(np.float32(margin - hi - lo))


def _check_series(t: torch.Tensor, name: str, pred: torch.Tensor) -> None:
    if t.dim() != 2:
        raise ValueError(f"repose::rank_hinge_triton: {name} must have shape (S, N); got {tuple(t.shape)}")
    if t.shape != pred.shape:
        raise ValueError(
            f"repose::rank_hinge_triton: {name} must have the shape of pred {tuple(pred.shape)}; got {tuple(t.shape)}"
        )
    if t.dtype != pred.dtype:
        raise TypeError(f"repose::rank_hinge_triton: {name} must have dtype {pred.dtype} like pred; got {t.dtype}")
    if t.device != pred.device:
        raise ValueError(f"repose::rank_hinge_triton: {name} must be on pred's device {pred.device}; got {t.device}")
    if not t.is_contiguous():
        raise ValueError(f"repose::rank_hinge_triton: {name} must be contiguous")


def plan_launch(s: int, n: int, config: LaunchConfig = DEFAULT_CONFIG) -> dict:
    """The kernels that :func:`launch_rank_hinge` runs on (s, n) series, in launch order.

    Returns:
        ``{"short": ...}`` for short series, else ``{"rows": ...}`` plus ``"reduce"`` when a
        series spans several row blocks; each value is ``(grid, block constexprs, num_warps)``.
    """
    if n <= config.short_max_n:
        block_n = max(2, _next_pow2(n))
        block_s = max(1, min(config.short_tile // (block_n * block_n), _next_pow2(s)))
        return {"short": ((_cdiv(s, block_s),), dict(BLOCK_S=block_s, BLOCK_N=block_n), config.short_warps)}
    block_k = max(2, min(config.block_k, _next_pow2(n)))
    block_l = max(2, min(config.block_l, _next_pow2(n)))
    row_blocks = _cdiv(n, block_k)
    if row_blocks > _MAX_GRID_Y:
        raise ValueError(
            f"repose::rank_hinge_triton: series of length {n} need {row_blocks} row blocks of {block_k}; "
            f"at most {_MAX_GRID_Y} are supported (use a larger LaunchConfig.block_k)"
        )
    plan = {"rows": ((s, row_blocks), dict(BLOCK_K=block_k, BLOCK_L=block_l), config.rows_warps)}
    if row_blocks > 1:
        block_s = max(1, min(config.reduce_series, _next_pow2(s)))
        block_b = max(2, min(config.reduce_blocks, _next_pow2(row_blocks)))
        plan["reduce"] = ((_cdiv(s, block_s),), dict(BLOCK_S=block_s, BLOCK_B=block_b), 4)
    return plan


def launch_rank_hinge(
    pred: torch.Tensor,
    gt: torch.Tensor,
    weight: Optional[torch.Tensor],
    margin: float,
    window: int,
    need_grad: bool,
    need_active: bool,
    config: LaunchConfig = DEFAULT_CONFIG,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-series hinge sums (and their gradient) of (S, N) series with the Triton kernels.

    Args:
        pred: predicted depths (S, N), float32 or float64, contiguous.
        gt: ground-truth depths, like pred.
        weight: element weights like pred, or None.
        margin: hinge margin.
        window: largest |k - l| of a pair, or -1 for all pairs.
        need_grad: also compute the gradient of stats[:, 0] with respect to pred.
        need_active: also compute the weighted count of active pairs.
        config: block sizes.

    Returns:
        ``(stats, grad)``: stats (S, 2) = [hinge sum, active weight (0 unless need_active)];
        grad (S, N), or shape (0,) unless need_grad. Both in pred's dtype.
    """
    if TRITON_ERROR is not None:
        raise RuntimeError(f"backend 'triton' is not available: {TRITON_ERROR}")
    if pred.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"repose::rank_hinge_triton: pred must be float32 or float64; got {pred.dtype}")
    if pred.device.type != "cuda" and not INTERPRET:
        raise ValueError(
            f"repose::rank_hinge_triton: pred must be a CUDA tensor; got {pred.device} "
            "(CPU tensors need TRITON_INTERPRET=1 set before repose_ext is imported)"
        )
    _check_series(pred, "pred", pred)
    _check_series(gt, "gt", pred)
    if weight is not None:
        _check_series(weight, "weight", pred)
    if window < -1:
        raise ValueError(f"repose::rank_hinge_triton: window must be -1 (all pairs) or >= 0; got {window}")

    s, n = pred.shape
    if s == 0 or n == 0:
        return pred.new_zeros((s, 2)), pred.new_zeros((s, n) if need_grad else (0,))
    window = n if window < 0 else min(window, n)
    margin_parts = split_margin(margin, pred.dtype)
    has_weight = weight is not None
    w = weight if has_weight else pred  # a valid pointer that is never read
    stats = pred.new_empty((s, 2))
    grad = pred.new_empty((s, n) if need_grad else (0,))
    # Never written without need_grad; its own buffer, since passing one tensor as two kernel
    # arguments that may be written confuses torch.compile's mutation tracking.
    g_out = grad if need_grad else pred.new_empty((1,))

    plan = plan_launch(s, n, config)
    flags = dict(HAS_WEIGHT=has_weight, NEED_GRAD=need_grad, NEED_ACTIVE=need_active)
    if "short" in plan:
        grid, blocks, warps = plan["short"]
        torch.library.wrap_triton(_kernels._rank_hinge_short_kernel)[grid](
            pred, gt, w, stats, g_out, s, n, window, *margin_parts, **flags, **blocks, num_warps=warps
        )
        return stats, grad

    grid, blocks, warps = plan["rows"]
    row_blocks = grid[1]
    # With one row block per series the partial sums are the stats: no reduction.
    partial = stats if row_blocks == 1 else pred.new_empty((s, row_blocks, 2))
    torch.library.wrap_triton(_kernels._rank_hinge_rows_kernel)[grid](
        pred, gt, w, g_out, partial, n, row_blocks, window, *margin_parts, **flags, **blocks, num_warps=warps
    )
    if "reduce" in plan:
        grid, blocks, warps = plan["reduce"]
        torch.library.wrap_triton(_kernels._sum_partials_kernel)[grid](
            partial, stats, s, row_blocks, **blocks, num_warps=warps
        )
    return stats, grad


def _rank_hinge_triton(
    pred: torch.Tensor,
    gt: torch.Tensor,
    weight: Optional[torch.Tensor],
    margin: float,
    window: int,
    need_grad: bool,
    need_active: bool,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """``repose::rank_hinge`` computed by the Triton kernels; see :func:`launch_rank_hinge`."""
    return launch_rank_hinge(pred, gt, weight, margin, window, need_grad, need_active)


rank_hinge_triton = None
if TRITON_ERROR is None:
    if INTERPRET:
        # The interpreter runs kernels on whatever tensors it gets, fake ones included, so
        # the launcher cannot be traced: keep the op opaque, with the shared fake impl.
        rank_hinge_triton = torch.library.custom_op(OP_NAME, _rank_hinge_triton, mutates_args=())
        rank_hinge_triton.register_fake(_ops.rank_hinge_fake)
    else:
        # torch.compile traces into the launcher and sees the kernels (wrap_triton).
        rank_hinge_triton = torch.library.triton_op(OP_NAME, _rank_hinge_triton, mutates_args=())
    _ops.register_rank_hinge_autograd(OP_NAME)


def _register_backend() -> None:
    backends.register_backend(
        backends.Backend(
            "triton",
            ("cuda", "cpu") if INTERPRET else ("cuda",),
            TRITON_ERROR is None,
            TRITON_ERROR or "",
            torch.ops.repose.rank_hinge_triton if rank_hinge_triton is not None else None,
        )
    )


_register_backend()
