"""The training objective: MotionBERT's pose losses plus the RePOSE depth-order (rank) terms.

``L = w_mpjpe * MPJPE + w_n * N-MPJPE + w_v * velocity + lambda_s * spatial_rank + lambda_t * temporal_rank``

MotionBERT's H36M recipe is ``w_mpjpe = 1, w_n = 0.5, w_v = 20``; the rank weights of the paper are
unknown. A term whose weight is 0 is not computed at all, and the rank terms are skipped whatever
their weights when the backend is ``"off"``. All terms are evaluated in float32 on the network output in the
training coordinates (MotionBERT's normalised image units, where intra-body depth gaps are about 0.05-0.15).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import torch

from .. import backends as _backends
from ..losses import spatial_depth_rank_loss, temporal_depth_rank_loss
from .pose_losses import mpjpe_loss, n_mpjpe_loss, velocity_loss

#: Term names in the order they are logged.
TERMS = ("mpjpe", "n_mpjpe", "velocity", "spatial_rank", "temporal_rank")


def resolve_rank_backend(name: str, device: torch.device) -> Optional[str]:
    """Map the configured rank-loss backend to a name the loss functions accept.

    Args:
        name: ``"off"`` (no rank terms), ``"fused"`` (the first fused backend available for the device, in the
            order of ``backend="auto"``), ``"auto"``, ``"reference"`` or a backend name ("cpu", "cuda", "triton").
        device: where the loss runs.

    Returns:
        None for ``"off"``, else the backend name to pass as ``backend=``.

    Raises:
        RuntimeError: ``"fused"`` asked for but no fused backend is available on ``device``.
    """
    if name == "off":
        return None
    if name != "fused":
        return name
    available = _backends.available_backends(device.type)
    order = _backends.AUTO_ORDER.get(device.type, ())
    for candidate in order:
        if candidate != "reference" and candidate in available:
            return candidate
    raise RuntimeError(
        f"loss.rank_backend='fused' needs a fused rank-loss backend for {device.type} tensors; available here: "
        f"{available}. Build the extension (`pip install --no-build-isolation -e .`) or set "
        f"loss.rank_backend=reference (plain PyTorch, slower) or auto"
    )


class PoseObjective:
    """Weighted sum of the pose losses.

    Args:
        mpjpe, n_mpjpe, velocity: weights of MotionBERT's terms.
        spatial_rank, temporal_rank: weights of the RePOSE rank terms (lambda_s, lambda_t).
        rank_backend: backend of the rank terms (see :func:`resolve_rank_backend`).
        rank_margin: hinge margin of the rank terms (0 in the paper).
        temporal_window: None (all frame pairs, the paper) or the largest frame distance of a temporal pair.
        device: device the losses run on (resolves ``"fused"``).

    Attributes:
        weights: term name -> weight, only for the terms that are computed.
        backend: the resolved rank backend (None when no rank term is computed).
    """

    def __init__(self, mpjpe: float = 1.0, n_mpjpe: float = 0.5, velocity: float = 20.0, spatial_rank: float = 0.0,
                 temporal_rank: float = 0.0, rank_backend: str = "fused", rank_margin: float = 0.0,
                 temporal_window: Optional[int] = None, device: torch.device = torch.device("cpu")):
        requested = {"mpjpe": mpjpe, "n_mpjpe": n_mpjpe, "velocity": velocity, "spatial_rank": spatial_rank,
                     "temporal_rank": temporal_rank}
        for key, value in requested.items():
            if not value >= 0:
                raise ValueError(f"weight of {key} must be >= 0; got {value!r}")
        rank_on = rank_backend != "off"
        self.weights: Dict[str, float] = {
            k: float(v) for k, v in requested.items() if v != 0 and (rank_on or not k.endswith("_rank"))
        }
        if not self.weights:
            raise ValueError("every loss weight is 0 (or only rank terms are weighted and loss.rank_backend is off)")
        uses_rank = any(k.endswith("_rank") for k in self.weights)
        self.backend = resolve_rank_backend(rank_backend, torch.device(device)) if uses_rank else None
        self.margin = float(rank_margin)
        self.window = temporal_window

    @classmethod
    def from_config(cls, loss_config, device: torch.device) -> "PoseObjective":
        """Build from the ``loss`` section of a run configuration."""
        c = loss_config
        return cls(c["mpjpe"], c["n_mpjpe"], c["velocity"], c["spatial_rank"], c["temporal_rank"],
                   c["rank_backend"], c["rank_margin"], c["temporal_window"], device)

    @property
    def terms(self) -> List[str]:
        """Names of the computed terms, in :data:`TERMS` order."""
        return [t for t in TERMS if t in self.weights]

    def _term(self, name: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if name == "mpjpe":
            return mpjpe_loss(pred, target)
        if name == "n_mpjpe":
            return n_mpjpe_loss(pred, target)
        if name == "velocity":
            return velocity_loss(pred, target)
        if name == "spatial_rank":
            return spatial_depth_rank_loss(pred, target, margin=self.margin, backend=self.backend)
        return temporal_depth_rank_loss(pred, target, margin=self.margin, window=self.window, backend=self.backend)

    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """Total loss and the unweighted terms.

        Args:
            pred: network output (any float dtype; computed in float32).
            target: ground truth in the same coordinates.

        Returns:
            ``(total, terms)``: the weighted sum (0-d, with graph) and name -> unweighted term (0-d, detached).
            No host synchronisation happens here.

        Shape:
            pred, target: (B, T, J, 3).
        """
        pred = pred.float()
        target = target.float()
        total = None
        terms: Dict[str, torch.Tensor] = {}
        for name in self.terms:
            value = self._term(name, pred, target)
            terms[name] = value.detach()
            weighted = self.weights[name] * value
            total = weighted if total is None else total + weighted
        return total, terms
