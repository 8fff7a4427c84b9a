"""Backend registry of the rank losses: dispatch is data.

Every backend but ``reference`` (the plain PyTorch specification) is an op with the schema of
``repose::depth_rank_loss`` (csrc/rank_loss.cpp): "cpu" and "cuda" are that op itself, whose C++ library
registers a kernel per device; "triton" is ``repose::depth_rank_loss_triton``, the same schema. They are
registered here, explicitly. ``backend="auto"`` takes the first available backend of the tensor's device type
in ``AUTO_ORDER``; the environment variable ``REPOSE_BACKEND`` (read at import) replaces "auto".

Availability is probed once, at import, without importing Triton; an op is loaded on the first call that
needs it and kept, so that the dispatch is plain Python that ``torch.compile`` traces without graph breaks.
"""

from __future__ import annotations

import os
from typing import Callable, Optional

import torch

from . import _cpu, _ops, _triton  # noqa: F401  (_cpu registers the CPU series ops)


class Backend:
    """One way to compute the rank losses.

    Args:
        name: what users pass as ``backend=``.
        devices: device types it runs on ("cpu", "cuda").
        unavailable: why it cannot run here, or None when it can.
        load: returns the op (``repose::depth_rank_loss``'s schema); None for the reference.
    """

    def __init__(self, name: str, devices: tuple, unavailable: Optional[str], load: Optional[Callable] = None):
        self.name, self.devices, self.unavailable, self._load = name, devices, unavailable, load
        self._op = None

    @property
    def available(self) -> bool:
        return self.unavailable is None

    @property
    def op(self) -> Optional[Callable]:
        """The op, loaded on first use; None for the reference."""
        if self._load is not None:
            self._loaded()
        return self._op

    def _loaded(self) -> bool:
        if self._op is None:
            self._op = self._load()
        return True

    # Under torch.compile, _loaded runs as plain Python at trace time (an op cannot be built inside a trace):
    # what torch.compiler.assume_constant_result marks, set here without importing torch._dynamo (and with it
    # Triton) when repose_ext is imported; tests/test_triton.py compiles a first call.
    _loaded._dynamo_marked_constant = True


_REGISTRY: dict = {}
AUTO_ORDER = {"cpu": ("cpu", "reference"), "cuda": ("cuda", "triton", "reference")}
ENV_VAR = "REPOSE_BACKEND"
FORCED = os.environ.get(ENV_VAR, "").strip() or None


def register_backend(backend: Backend) -> None:
    _REGISTRY[backend.name] = backend


def available_backends(device: Optional[str] = None) -> list:
    """Names of the backends that can run here, optionally for one device type."""
    return [b.name for b in _REGISTRY.values() if b.available and (device is None or device in b.devices)]


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
        raise RuntimeError(f"backend {name!r} is not available here: {b.unavailable}")
    if device.type not in b.devices:
        raise ValueError(
            f"backend {name!r} runs on {'/'.join(b.devices)} tensors; pred is on {device}. "
            f"Use backend='auto' or one of {available_backends(device.type)}"
        )
    return b


def _compiled(dispatch_key: str, fix: str) -> Optional[str]:
    """None when the C++ library has a ``repose::depth_rank_loss`` kernel for ``dispatch_key``, else why not."""
    if _ops._C is None:
        return f"the C++ extension repose_ext._C is not built ({_ops.EXTENSION_ERROR}); {fix}"
    return None if _ops.has_kernel(_ops.DEPTH_OP, dispatch_key) else fix


def _depth_op():
    return torch.ops.repose.depth_rank_loss.default


_BUILD = "run `pip install --no-build-isolation -e .`"
register_backend(Backend("reference", ("cpu", "cuda"), None))
register_backend(Backend("cpu", ("cpu",), _compiled("CPU", _BUILD), _depth_op))
_cuda_missing = _compiled("CUDA", "repose_ext._C was built without CUDA kernels: build it against a CUDA torch "
                                  "(`pip install --no-build-isolation -e .` on the GPU machine, or FORCE_CUDA=1)")
register_backend(Backend("cuda", ("cuda",), _cuda_missing or (None if torch.cuda.is_available() else "needs a CUDA GPU"),
                         _depth_op))
register_backend(Backend("triton", ("cuda", "cpu") if _triton._interpret() else ("cuda",), _triton.unavailable(),
                         _triton.load_op))
