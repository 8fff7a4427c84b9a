"""Pose-lifting networks: the DSTformer of MotionBERT / RePOSE, its presets and checkpoint I/O."""

from .checkpoint import load_checkpoint, load_model_weights, save_checkpoint, strip_prefixes
from .dstformer import PRESETS, DSTformer, build_model, model_config

__all__ = [
    "DSTformer",
    "PRESETS",
    "build_model",
    "load_checkpoint",
    "load_model_weights",
    "model_config",
    "save_checkpoint",
    "strip_prefixes",
]
