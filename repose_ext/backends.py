"""Backend registry for the rank losses: dispatch is data.

A backend computes ``repose::rank_hinge``-style per-series stats for (S, N) depth series
(see csrc/rank_loss.cpp), except ``reference``, which evaluates the plain PyTorch
specification. ``backend="auto"`` takes the first available backend of the tensor's device
type in ``AUTO_ORDER``; the environment variable ``REPOSE_BACKEND`` (read at import)
replaces "auto". Availability is probed once, at registration, so that the dispatch is plain
Python that ``torch.compile`` traces without graph breaks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from . import _cpu, _ops  # noqa: F401  (_cpu registers the CPU algorithm ops)


@dataclass(frozen=True)
class Backend:
    """One way to compute the rank losses.

    Attributes:
        name: what users pass as ``backend=``.
        devices: device types it runs on ("cpu", "cuda").
        available: whether it can run here (probed at registration).
        fix: what to do when it is not available.
        op: callable with the ``repose::rank_hinge`` schema, or None for the reference.
        depth_op: optional callable with the schema of ``repose::depth_rank_loss``: both
            terms straight from the poses, reduced, in one pass; without one the losses lay
            the series out in Python and call ``op``.
    """

    name: str
    devices: tuple
    available: bool
    fix: str
    op: Optional[Callable] = None
    depth_op: Optional[Callable] = None


_REGISTRY: dict = {}
AUTO_ORDER = {"cpu": ("cpu", "reference"), "cuda": ("cuda", "triton", "reference")}
ENV_VAR = "REPOSE_BACKEND"
FORCED = os.environ.get(ENV_VAR, "").strip() or None


def register_backend(backend: Backend) -> None:
    _REGISTRY[backend.name] = backend


def available_backends(device: Optional[str] = None) -> list:
    """Names of the backends that can run here, optionally for one device type."""
    return [
        b.name for b in _REGISTRY.values() if b.available and (device is None or device in b.devices)
    ]


def resolve_backend(name: str, device: torch.device) -> Backend:
    """The backend for ``name`` ("auto" or a registered name) on ``device``, or a clear error."""
    if name == "auto" and FORCED is not None:
        name = FORCED
    if name == "auto":
        for candidate in AUTO_ORDER.get(device.type, ("reference",)):
            b = _REGISTRY.get(candidate)
            if b is not None and b.available and device.type in b.devices:
                return b
        return _REGISTRY["reference"]
    if name not in _REGISTRY:
        raise ValueError(f"backend must be 'auto' or one of {sorted(_REGISTRY)}; got {name!r}")
    b = _REGISTRY[name]
    if not b.available:
        raise RuntimeError(f"backend {name!r} is not available here: {b.fix}")
    if device.type not in b.devices:
        raise ValueError(
            f"backend {name!r} runs on {'/'.join(b.devices)} tensors; pred is on {device}. "
            f"Use backend='auto' or one of {available_backends(device.type)}"
        )
    return b


_BUILD_FIX = "the C++ extension repose_ext._C is not built; run `pip install --no-build-isolation -e .`"
register_backend(Backend("reference", ("cpu", "cuda"), True, ""))
register_backend(
    Backend(
        "cpu",
        ("cpu",),
        _ops.has_kernel(_ops.OP_NAME, "CPU"),
        f"{_BUILD_FIX} ({_ops.EXTENSION_ERROR})",
        getattr(torch.ops.repose, "rank_hinge", None) if _ops._C is not None else None,
        torch.ops.repose.depth_rank_loss.default if _ops._C is not None else None,
    )
)
register_backend(
    Backend(
        "cuda",
        ("cuda",),
        _ops.has_kernel(_ops.OP_NAME, "CUDA") and torch.cuda.is_available(),
        "needs a CUDA GPU and repose_ext._C built against a CUDA torch "
        "(`pip install --no-build-isolation -e .` on the GPU machine, or FORCE_CUDA=1)",
        getattr(torch.ops.repose, "rank_hinge", None) if _ops._C is not None else None,
    )
)
