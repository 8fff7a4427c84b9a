"""Pose-lifting networks (DSTformer of MotionBERT / RePOSE, SimpleBaseline, VideoPose3D's conv net) and checkpoint I/O."""

from .checkpoint import load_checkpoint, load_model_weights, save_checkpoint, strip_prefixes
from .baselines import SimpleBaseline, TemporalConvNet
from .dstformer import PRESETS, DSTformer, model_config
from .registry import LIFTER_PRESETS, build_model, lifter_config

__all__ = [
    "DSTformer",
    "LIFTER_PRESETS",
    "PRESETS",
    "SimpleBaseline",
    "TemporalConvNet",
    "build_model",
    "lifter_config",
    "load_checkpoint",
    "load_model_weights",
    "model_config",
    "save_checkpoint",
    "strip_prefixes",
]
