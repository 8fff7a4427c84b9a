"""Seeding, RNG state capture/restore (for bit-exact resume) and a digest of a model's weights.

RNG states are stored as tensors and plain Python data so that checkpoints load with ``torch.load(...,
weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any, Dict

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def derived_seed(*parts: int) -> int:
    """A 63-bit seed derived from integers (e.g. (seed, epoch, rank)); stable across runs and platforms."""
    digest = hashlib.sha256(",".join(str(int(p)) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def capture_rng_state() -> Dict[str, Any]:
    """The state of every global generator this process uses.

    Returns:
        Dict with "python" (``random.getstate()``), "numpy" (the MT19937 state, key as an int64 tensor), "torch"
        (CPU ByteTensor) and "cuda" (list of ByteTensors, empty without CUDA).
    """
    kind, key, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {"kind": kind, "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: Dict[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of the model's state dict (names, dtypes, shapes and exact bytes); equal weights, equal digest."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
