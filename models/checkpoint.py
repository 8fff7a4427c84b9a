"""Checkpoint I/O for the pose lifters: the released RePOSE/MotionBERT format and our own.

Released format (RePOSE ``best_epoch.bin``, MotionBERT checkpoints): a dict whose ``"model_pos"`` entry is the
model's state dict, saved from ``nn.DataParallel`` so every key starts with ``"module."``; other entries
(``"epoch"``, ``"lr"``, ``"optimizer"``, ``"min_loss"``) are ignored here.

Our format (written by :func:`save_checkpoint`) uses the same ``"model_pos"`` key with plain parameter names, so
either program can read the other's weights, plus ``"format": "repose_ext"``, ``"format_version"`` and the
optional fields the trainer passes (optimizer / scheduler state, epoch, config, metrics, anything else), and
``"integrity_sha256"``: a SHA-256 over every other entry (tensor bytes, shapes, dtypes and plain values), checked by
:func:`load_checkpoint`, so a checkpoint with flipped bytes is refused instead of training on. A file that cannot be
read at all (empty, truncated) raises :class:`CheckpointError` too.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections import OrderedDict
from typing import Any, Mapping, Optional, Union

import numpy as np
import torch
from torch import nn

from .._atomic import atomic_write

MODEL_KEY = "model_pos"
FORMAT_NAME = "repose_ext"
FORMAT_VERSION = 1
_PREFIXES = ("module.", "_orig_mod.")
_MAX_LISTED = 12
INTEGRITY_KEY = "integrity_sha256"

PathLike = Union[str, "os.PathLike[str]"]


class CheckpointError(ValueError):
    """A checkpoint file that is unreadable or fails its integrity check."""


def content_digest(obj: Any) -> str:
    """SHA-256 of a checkpoint payload: tensors and arrays by dtype, shape and bytes, containers in key order,
    other values by ``repr``."""
    h = hashlib.sha256()

    def visit(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous().reshape(-1)
            h.update(f"T{x.dtype}{tuple(x.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(x, np.ndarray):
            h.update(f"A{x.dtype}{x.shape}".encode())
            h.update(np.ascontiguousarray(x).tobytes() if x.dtype != object else repr(x.tolist()).encode())
        elif isinstance(x, Mapping):
            h.update(b"{")
            for key in sorted(x, key=repr):
                h.update(repr(key).encode())
                visit(x[key])
            h.update(b"}")
        elif isinstance(x, (list, tuple)):
            h.update(b"[" if isinstance(x, list) else b"(")
            for v in x:
                visit(v)
            h.update(b"]")
        else:
            h.update(repr(x).encode())

    visit(obj)
    return h.hexdigest()


def _unwrap(model: nn.Module) -> nn.Module:
    """The underlying module of DataParallel / DistributedDataParallel / torch.compile wrappers."""
    while True:
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def strip_prefixes(state_dict: Mapping[str, Any], prefixes=_PREFIXES) -> "OrderedDict[str, Any]":
    """Remove wrapper prefixes (``"module."`` of (Distributed)DataParallel, ``"_orig_mod."`` of torch.compile).

    Args:
        state_dict: parameter name -> tensor.
        prefixes: prefixes removed, repeatedly, from the start of every key.

    Returns:
        A new ordered dict with the same tensors under the stripped names.
    """
    out: "OrderedDict[str, Any]" = OrderedDict()
    for key, value in state_dict.items():
        stripped = True
        while stripped:
            stripped = False
            for prefix in prefixes:
                if key.startswith(prefix):
                    key = key[len(prefix):]
                    stripped = True
        out[key] = value
    return out


def atomic_torch_save(obj: Any, path: PathLike) -> None:
    """``torch.save`` to a temporary file in the destination folder, then ``os.replace`` it onto ``path``.

    A reader never sees a half-written file: ``path`` holds either the old or the new content.
    """
    os.makedirs(os.path.dirname(os.path.abspath(os.fspath(path))), exist_ok=True)
    atomic_write(path, lambda f: torch.save(obj, f), fault="checkpoint_tmp")


def save_checkpoint(path: PathLike, model: nn.Module, *, optimizer: Optional[Any] = None,
                    scheduler: Optional[Any] = None, epoch: Optional[int] = None,
                    config: Optional[Mapping[str, Any]] = None, metrics: Optional[Mapping[str, Any]] = None,
                    extra: Optional[Mapping[str, Any]] = None) -> None:
    """Write a checkpoint atomically in our format (readable by :func:`load_model_weights` and by RePOSE's
    ``evaluate.py``, which reads ``"model_pos"``).

    Args:
        path: destination file.
        model: the network (DataParallel / DDP / compiled wrappers are unwrapped, so names carry no prefix).
        optimizer: optional object with ``state_dict()``, stored under ``"optimizer"``.
        scheduler: optional object with ``state_dict()``, stored under ``"scheduler"``.
        epoch: optional epoch number.
        config: optional run configuration (plain Python data).
        metrics: optional metrics (plain Python data).
        extra: more top-level entries (e.g. RNG states); keys must not clash with the ones above.
    """
    payload = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, MODEL_KEY: _unwrap(model).state_dict()}
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        payload["scheduler"] = scheduler.state_dict()
    if epoch is not None:
        payload["epoch"] = epoch
    if config is not None:
        payload["config"] = dict(config)
    if metrics is not None:
        payload["metrics"] = dict(metrics)
    if extra:
        clash = sorted(set(extra) & set(payload))
        if clash:
            raise ValueError(f"extra must not contain the reserved keys {clash}")
        payload.update(extra)
    payload[INTEGRITY_KEY] = content_digest(payload)
    atomic_torch_save(payload, path)


def load_checkpoint(path: PathLike, map_location: Any = "cpu", weights_only: bool = True) -> dict:
    """Read a checkpoint file (released RePOSE/MotionBERT format or ours) without touching a model.

    Args:
        path: checkpoint file.
        map_location: passed to ``torch.load`` (default CPU, so GPU-saved files load anywhere).
        weights_only: ``torch.load``'s safe unpickler (tensors and plain Python data only). Set False only for
            files you trust that hold other objects.

    Returns:
        The checkpoint dict. A file holding a bare state dict is returned as ``{"model_pos": state_dict}``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file holds no mapping with model weights.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        obj = _read_verified(path, map_location, weights_only)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc}{_intact_hint(path)}") from None
    if not isinstance(obj, Mapping):
        raise ValueError(f"checkpoint {path} must hold a dict; got {type(obj).__name__}")
    if MODEL_KEY not in obj:
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return {MODEL_KEY: obj}
        raise ValueError(
            f"checkpoint {path} must hold a dict with key {MODEL_KEY!r} (the model state dict); "
            f"got keys {sorted(map(str, obj))[:_MAX_LISTED]}"
        )
    return dict(obj)


def _read_verified(path: str, map_location: Any = "cpu", weights_only: bool = True) -> Any:
    """``torch.load`` plus the integrity check; the stored digest is removed from the result."""
    try:
        obj = torch.load(path, map_location=map_location, weights_only=weights_only)
    except Exception as exc:  # empty, truncated, not a torch file, or objects the safe unpickler refuses
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:160] if str(exc) else ''})") from None
    if isinstance(obj, Mapping) and INTEGRITY_KEY in obj:
        rest = {k: v for k, v in obj.items() if k != INTEGRITY_KEY}
        if content_digest(rest) != obj[INTEGRITY_KEY]:
            raise CheckpointError(f"checkpoint {path} is corrupt (its content does not match its SHA-256)")
        obj = rest
    return obj


def newest_intact_checkpoint(folder: str, exclude: Optional[str] = None) -> Optional[str]:
    """The most recently written checkpoint (``*.pt``) in ``folder`` that loads and passes its check, or None."""
    candidates = sorted(glob.glob(os.path.join(folder, "*.pt")), key=os.path.getmtime, reverse=True)
    for candidate in candidates:
        if exclude is not None and os.path.abspath(candidate) == os.path.abspath(exclude):
            continue
        try:
            _read_verified(candidate)
        except CheckpointError:
            continue
        return candidate
    return None


def _intact_hint(path: str) -> str:
    other = newest_intact_checkpoint(os.path.dirname(os.path.abspath(path)), exclude=path)
    return f"; the newest intact checkpoint beside it is {other}" if other else "; no intact checkpoint beside it"


def _listing(names) -> str:
    names = list(names)
    shown = ", ".join(names[:_MAX_LISTED])
    if len(names) > _MAX_LISTED:
        shown += f", ... ({len(names) - _MAX_LISTED} more)"
    return shown


def load_model_weights(model: nn.Module, source: Union[PathLike, Mapping[str, Any]], strict: bool = True,
                       map_location: Any = "cpu", weights_only: bool = True) -> dict:
    """Load weights into ``model`` from a checkpoint file or an already-loaded checkpoint / state dict.

    Accepts the released format (``{"model_pos": ...}`` with ``"module."`` keys), ours, and a bare state dict.
    Wrapper prefixes are stripped, and the model is unwrapped if it is a DataParallel / DDP / compiled module.

    Args:
        model: the network to fill.
        source: a path, a checkpoint dict (with ``"model_pos"``), or a state dict.
        strict: require the key sets and shapes to match exactly. With False, matching entries are loaded and the
            others reported in the return value.
        map_location, weights_only: as in :func:`load_checkpoint` (used when ``source`` is a path).

    Returns:
        The checkpoint dict, with ``"missing_keys"`` and ``"unexpected_keys"`` added (lists; empty when strict).

    Raises:
        RuntimeError: with ``strict``, any missing key, unexpected key or shape mismatch; the message lists them.
    """
    if isinstance(source, Mapping):
        checkpoint = dict(source) if MODEL_KEY in source else {MODEL_KEY: source}
    else:
        checkpoint = load_checkpoint(source, map_location=map_location, weights_only=weights_only)
    state = strip_prefixes(checkpoint[MODEL_KEY])
    target = _unwrap(model)
    expected = target.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if strict and (missing or unexpected or mismatched):
        lines = [f"checkpoint does not match {type(target).__name__} (strict=True):"]
        if missing:
            lines.append(f"  missing keys ({len(missing)}): {_listing(missing)}")
        if unexpected:
            lines.append(f"  unexpected keys ({len(unexpected)}): {_listing(unexpected)}")
        if mismatched:
            lines.append(f"  shape mismatches ({len(mismatched)}): {_listing(mismatched)}")
        lines.append("  (is the model built with the checkpoint's preset, e.g. build_model('repose')?)")
        raise RuntimeError("\n".join(lines))
    if not strict:
        bad = {m.split(":")[0] for m in mismatched}
        state = OrderedDict((k, v) for k, v in state.items() if k not in bad)
    result = target.load_state_dict(state, strict=strict)
    checkpoint["missing_keys"] = list(result.missing_keys)
    checkpoint["unexpected_keys"] = list(result.unexpected_keys)
    return checkpoint
