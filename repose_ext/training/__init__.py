"""Training and evaluation of the pose lifters: MotionBERT's recipe plus the RePOSE depth-order losses.

Entry points: ``python train.py`` (see :mod:`repose_ext.training.cli`), or from Python::

    from repose_ext.training import load_config, train
    summary = train(load_config("configs/small_cpu.yaml", ["train.epochs=2"]))

Layout: :mod:`.config` (defaults, YAML, overrides), :mod:`.datasets` (config -> datasets), :mod:`.objective`
(the weighted loss; the evaluator is :mod:`repose_ext.evaluation`), :mod:`.trainer` (the loop, checkpoints,
resume), :mod:`.distributed` (torchrun / DDP), :mod:`.reproducibility` (seeds, RNG states), :mod:`.run_logging`
(CSV, TensorBoard, plots), :mod:`.cli` (the command line).
"""

from .config import DEFAULTS, ConfigError, load_config
from ..evaluation import EvalResult, PoseEvaluator, evaluate, predict
from .objective import PoseObjective
from .trainer import CheckpointScorer, Trainer, evaluate_checkpoint, train

__all__ = [
    "DEFAULTS",
    "CheckpointScorer",
    "ConfigError",
    "EvalResult",
    "PoseEvaluator",
    "PoseObjective",
    "Trainer",
    "evaluate",
    "evaluate_checkpoint",
    "load_config",
    "predict",
    "train",
]
