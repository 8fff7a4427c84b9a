"""Triton backend of the rank losses: the launcher and the op ``repose::depth_rank_loss_triton``.

The op has exactly the schema of ``repose::depth_rank_loss`` (read from the C++ library, where it is defined
once: csrc/rank_loss.cpp) and the shared fake implementation and autograd formula (repose_ext/_ops.py). It is
built with ``torch.library.triton_op`` + ``wrap_triton``, so ``torch.compile`` sees the kernel; under Triton's
interpreter it is a plain ``torch.library.custom_op`` instead, because the interpreter cannot be traced.

Nothing here imports Triton until the op is first needed (:func:`load_op`): :func:`unavailable` only probes
whether it is installed and whether there is a GPU (or ``TRITON_INTERPRET=1``, set before repose_ext is imported,
which runs the kernel on CPU tensors: slow, meant for tests).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np
import torch

from . import _ops

OP_NAME = "repose::depth_rank_loss_triton"


def _interpret() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def unavailable() -> Optional[str]:
    """Why the Triton backend cannot run here (None when it can). Cheap: imports nothing."""
    try:
        installed = importlib.util.find_spec("triton") is not None
    except (ImportError, ValueError):  # e.g. sys.modules["triton"] = None
        installed = False
    if not installed:
        return "Triton is not installed (`pip install triton`, or `pip install repose-ext[triton]`)"
    if not (_interpret() or torch.cuda.is_available()):
        return "needs a CUDA GPU (or TRITON_INTERPRET=1 set before repose_ext is imported, for CPU tensors)"
    if _ops._C is None:
        return f"the op schema comes from the C++ extension repose_ext._C, which is not built ({_ops.EXTENSION_ERROR})"
    return None


@dataclass(frozen=True)
class LaunchConfig:
    """Tile sizes of the launch (powers of two; tests shrink them to reach every code path).

    Attributes:
        spatial_tile: pairs per program of the spatial term, SP_S * SP_K * SP_L: the joint tiles SP_K = SP_L are
            J rounded up to a power of two (at most ``spatial_max_j``), SP_S frames fill the rest.
        spatial_max_j: largest joint tile; more joints are split into row blocks and column tiles.
        temporal_k: frame rows per program of the temporal term.
        temporal_l: frame columns per tile of the temporal term.
        warps: warps per program.

    A program holds three accumulator tiles of its pair-tile size: 2048 pairs over 8 warps is 8 per thread
    and tile. Compiled for sm_90 at (B, 243, 17) (``ptxas -v``): 128 registers in float32, 192 in float64, no
    spills; with 4 warps 192 and 255 registers, and spills in float64.
    """

    spatial_tile: int = 2048
    spatial_max_j: int = 32
    temporal_k: int = 64
    temporal_l: int = 32
    warps: int = 8


DEFAULT_CONFIG = LaunchConfig()


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def split_margin(margin: float, dtype: torch.dtype) -> Tuple[float, float, float]:
    """The margin as float32 parts for the kernel: exact in float64, the float32 rounding otherwise.

    Triton passes a Python float as float32; the three parts add up (in float64) to the float64 margin
    exactly. For float32 inputs only the first part is non-zero, the margin rounded to float32, as PyTorch
    rounds a scalar added to a float32 tensor.
    """
    hi = float(np.float32(margin))
    if dtype != torch.float64:
        return hi, 0.0, 0.0
    lo = float(np.float32(margin - hi))
    return hi, lo, float(np.float32(margin - hi - lo))


def plan_launch(t: int, j: int, spatial: bool, temporal: bool, config: LaunchConfig = DEFAULT_CONFIG) -> dict:
    """Tile sizes and programs per sample of one launch on (B, t, j) depths.

    Returns:
        ``n_sp``/``n_tm`` spatial/temporal programs per sample, ``sp_kb``/``tm_kb`` row blocks per frame and per
        joint, and the constexpr tile sizes ``SP_S, SP_K, SP_L, TM_K, TM_L``.
    """
    sp_k = max(2, min(config.spatial_max_j, _next_pow2(j)))
    sp_s = max(1, min(config.spatial_tile // (sp_k * sp_k), _next_pow2(t)))
    tm_k = max(2, min(config.temporal_k, _next_pow2(t)))
    tm_l = max(2, min(config.temporal_l, _next_pow2(t)))
    sp_kb, tm_kb = _cdiv(j, sp_k), _cdiv(t, tm_k)
    return dict(
        n_sp=_cdiv(t, sp_s) * sp_kb if spatial else 0, n_tm=j * tm_kb if temporal else 0, sp_kb=sp_kb, tm_kb=tm_kb,
        SP_S=sp_s, SP_K=sp_k, SP_L=sp_k, TM_K=tm_k, TM_L=tm_l,
    )


def _strides(x: torch.Tensor) -> Tuple[int, int, int, int]:
    """Offset of the depth channel and the (b, t, j) strides of (B, T, J, 3) poses or (B, T, J) depths."""
    return (2 * x.stride(3) if x.dim() == 4 else 0), x.stride(0), x.stride(1), x.stride(2)


def launch_depth_rank_loss(
    pred: torch.Tensor,
    gt: torch.Tensor,
    weight: Optional[torch.Tensor],
    margin: float,
    window: int,
    spatial_scale: Optional[torch.Tensor],
    temporal_scale: Optional[torch.Tensor],
    need_grad: bool,
    need_active: bool,
    config: LaunchConfig = DEFAULT_CONFIG,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``repose::depth_rank_loss`` (csrc/rank_loss.cpp) with the Triton kernel: one launch and a per-sample sum.

    Args:
        pred: (B, T, J, 3) poses or (B, T, J) depths, float32 or float64, any strides.
        gt: the same shape and dtype as pred, any strides.
        weight: (B, T, J) in pred's dtype, or None.
        margin: hinge margin.
        window: largest |t1 - t2| of a temporal pair, or -1 for all pairs.
        spatial_scale, temporal_scale: (B,) factors of each term, or None for a term that is off.
        need_grad: also compute d loss.sum() / d pred.
        need_active: also compute the weighted active-pair counts.
        config: tile sizes.

    Returns:
        ``(loss (B,), active (B, 2), grad)``: grad in pred's shape (zeros in channels 0 and 1), or (0,).
    """
    _check(pred, gt, weight, window, spatial_scale, temporal_scale)
    bsz, t, j = pred.shape[:3]
    spatial, temporal = spatial_scale is not None, temporal_scale is not None
    grad = torch.zeros_like(pred, memory_format=torch.contiguous_format) if need_grad else pred.new_empty((0,))
    plan = plan_launch(t, j, spatial, temporal, config)
    programs = bsz * (plan["n_sp"] + plan["n_tm"])
    if programs == 0 or t == 0 or j == 0:
        return pred.new_zeros((bsz,)), pred.new_zeros((bsz, 2)), grad
    partial_loss = pred.new_empty((bsz, plan["n_sp"] + plan["n_tm"]))
    partial_active = pred.new_empty((bsz, plan["n_sp"] + plan["n_tm"], 2))
    w = weight if weight is not None else pred  # a valid pointer that is never read
    # Never written without need_grad; its own buffer, since passing one tensor as two kernel arguments that may
    # be written confuses torch.compile's mutation tracking.
    g_out = grad if need_grad else pred.new_empty((1,))
    d_strides = _strides(grad) if need_grad else (0, 0, 0, 0)
    unused = pred.new_empty((0,), dtype=torch.float64)  # stands in for the factors of a term that is off
    args = (
        pred, gt, w, g_out,
        spatial_scale if spatial else unused, temporal_scale if temporal else unused, partial_loss, partial_active,
        t, j, plan["n_sp"], plan["n_tm"], plan["sp_kb"], plan["tm_kb"],
        *_strides(pred), *_strides(gt), *(w.stride()[:3] if weight is not None else (0, 0, 0)), *d_strides,
        t if window < 0 else min(window, t), *split_margin(margin, pred.dtype),
    )
    tiles = {k: plan[k] for k in ("SP_S", "SP_K", "SP_L", "TM_K", "TM_L")}
    kernel = torch.library.wrap_triton(_load_kernel())
    with _device_guard(pred.device):
        kernel[(programs,)](*args, SPATIAL=spatial, TEMPORAL=temporal, HAS_WEIGHT=weight is not None,
                            NEED_GRAD=need_grad, NEED_ACTIVE=need_active, **tiles, num_warps=config.warps)
    # each sample's programs summed in a fixed order
    return partial_loss.sum(dim=1), partial_active.sum(dim=1), grad


def _load_kernel():
    from .kernels.depth_rank import depth_rank_loss_kernel

    return depth_rank_loss_kernel


def _device_guard(device: torch.device):
    """Launch on the tensors' GPU, not the current one (Triton launches on the current device)."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _check(pred, gt, weight, window, spatial_scale, temporal_scale) -> None:
    """The op's argument checks (the public API has checked its own arguments before this)."""
    name = OP_NAME
    if pred.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name}: pred must be float32 or float64; got {pred.dtype}")
    if pred.dim() not in (3, 4) or (pred.dim() == 4 and pred.shape[3] != 3):
        raise ValueError(f"{name}: pred must have shape (B, T, J, 3) or (B, T, J); got {tuple(pred.shape)}")
    if pred.device.type != "cuda" and not _interpret():
        raise ValueError(f"{name}: pred must be a CUDA tensor; got {pred.device} "
                         "(CPU tensors need TRITON_INTERPRET=1)")
    for arg, t in (("gt", gt), ("weight", weight)):
        if t is None:
            continue
        shape = pred.shape if arg == "gt" else pred.shape[:3]
        if t.shape != shape or t.dtype != pred.dtype or t.device != pred.device:
            raise ValueError(f"{name}: {arg} must be {tuple(shape)} {pred.dtype} on {pred.device} like pred; "
                             f"got {tuple(t.shape)} {t.dtype} on {t.device}")
    for arg, s in (("spatial_scale", spatial_scale), ("temporal_scale", temporal_scale)):
        if s is not None and (s.shape != pred.shape[:1] or s.dtype != torch.float64 or s.device != pred.device):
            raise ValueError(f"{name}: {arg} must be ({pred.shape[0]},) float64 on {pred.device}; "
                             f"got {tuple(s.shape)} {s.dtype} on {s.device}")
    if window < -1:
        raise ValueError(f"{name}: window must be -1 (all pairs) or >= 0; got {window}")


def _depth_rank_loss_triton(pred, gt, weight, margin, window, spatial_scale, temporal_scale, need_grad, need_active):
    """The op's implementation: :func:`launch_depth_rank_loss` with the default tiles."""
    return launch_depth_rank_loss(pred, gt, weight, margin, window, spatial_scale, temporal_scale, need_grad,
                                  need_active)


_OP: Optional[Callable] = None


def load_op() -> Callable:
    """``repose::depth_rank_loss_triton``, built on first use (this imports Triton)."""
    global _OP
    if _OP is None:
        reason = unavailable()
        if reason is not None:
            raise RuntimeError(f"backend 'triton' is not available: {reason}")
        schema = str(torch.ops.repose.depth_rank_loss.default._schema)
        schema = schema[schema.index("("):]  # the argument and return list, without the op's name
        if _interpret():
            # The interpreter runs kernels on whatever tensors it gets, fake ones included, so the launcher
            # cannot be traced: keep the op opaque, with the shared fake implementation.
            torch.library.custom_op(OP_NAME, _depth_rank_loss_triton, mutates_args=(), schema=schema)
        else:
            # torch.compile traces into the launcher and sees the kernel (wrap_triton).
            torch.library.triton_op(OP_NAME, _depth_rank_loss_triton, mutates_args=(), schema=schema)
        _ops.register_depth_op(OP_NAME)
        _OP = torch.ops.repose.depth_rank_loss_triton.default
    return _OP
