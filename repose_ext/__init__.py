"""RePOSE: depth-order (rank) losses for 3D human pose estimation, with fused kernels.

Quick start::

    import torch, repose_ext
    loss = repose_ext.spatial_depth_rank_loss(pred, gt) + repose_ext.temporal_depth_rank_loss(pred, gt)
    loss = repose_ext.depth_rank_loss(pred, gt)  # the same sum in one pass (fastest on CPU)
    loss.backward()
"""

from . import reference
from .backends import available_backends
from .losses import (
    DepthRankLoss,
    SpatialDepthRankLoss,
    TemporalDepthRankLoss,
    depth_rank_loss,
    spatial_depth_rank_loss,
    temporal_depth_rank_loss,
)

__version__ = "0.1.0"
__all__ = [
    "DepthRankLoss",
    "LiftResult",
    "Lifter",
    "SpatialDepthRankLoss",
    "TemporalDepthRankLoss",
    "available_backends",
    "depth_rank_loss",
    "reference",
    "spatial_depth_rank_loss",
    "temporal_depth_rank_loss",
]


def __getattr__(name):
    # The lifting API pulls in the models and data code: imported on first use, not with the losses.
    if name in ("Lifter", "LiftResult"):
        from . import lifter

        return getattr(lifter, name)
    raise AttributeError(f"module 'repose_ext' has no attribute {name!r}")
