"""Command line of the trainer (``python train.py ...`` at the repository root).

Usage::

    python train.py                                   # configs/default.yaml: embedded mocap, small model, RePOSE losses
    python train.py --config configs/h36m_repose.yaml data.files.pickle=/data/h36m_sh_conf_cam_source_final.pkl
    python train.py --config configs/small_cpu.yaml train.epochs=3 loss.rank_backend=reference
    python train.py --resume                          # continue the newest run of the config's name
    python train.py --resume runs/default-20250101-120000/latest.pt train.epochs=20
    python train.py --eval-only --checkpoint runs/<run>/best.pt
    python train.py --config configs/h36m_repose.yaml --eval-only --checkpoint best_epoch.bin data.files.pickle=...
    torchrun --nproc_per_node 8 train.py --config configs/h36m_repose.yaml data.files.pickle=...

Positional ``key=value`` arguments override the configuration (values are YAML: ``null``, ``1e-3``, ``true``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional, Sequence

from ..models.checkpoint import CheckpointError
from .config import ConfigError, load_config
from .trainer import LATEST, evaluate_checkpoint, find_latest_run, train

_RESUME_NEWEST = "__newest__"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``train.py``."""
    parser = argparse.ArgumentParser(
        prog="train.py",
        description="Train (or evaluate) a DSTformer lifter with MotionBERT's recipe and the RePOSE depth-order "
                    "losses.",
        epilog="Overrides: key=value pairs after the options, e.g. train.epochs=5 loss.spatial_rank=0.1 "
               "data.files.pickle=/path/h36m_sh_conf_cam_source_final.pkl",
    )
    parser.add_argument("--config", help="YAML configuration (default: configs/default.yaml)")
    parser.add_argument("--resume", nargs="?", const=_RESUME_NEWEST, metavar="PATH",
                        help="continue training from a checkpoint or run folder; without PATH, from the newest "
                             "run of the config's name under output_dir. The checkpoint's configuration is used "
                             "(overrides still apply, e.g. train.epochs=200 to train longer)")
    parser.add_argument("--eval-only", action="store_true",
                        help="evaluate --checkpoint on the evaluation split and print the table")
    parser.add_argument("--checkpoint", metavar="PATH",
                        help="weights for --eval-only: ours (best.pt / latest.pt) or the released RePOSE / "
                             "MotionBERT format ({'model_pos': ...}, 'module.' prefixes)")
    parser.add_argument("--run-dir", metavar="DIR", help="output folder (default: <output_dir>/<name>-<timestamp>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="configuration overrides")
    return parser


def _resume_path(arg: str, need_config, overrides: Sequence[str]) -> str:
    if arg == _RESUME_NEWEST:
        base = load_config(need_config(), overrides)
        return find_latest_run(base["output_dir"], base["name"])
    if os.path.isdir(arg):
        arg = os.path.join(arg, LATEST)
    if not os.path.isfile(arg):
        raise FileNotFoundError(f"--resume: no checkpoint at {arg}")
    return arg


def main(argv: Optional[List[str]] = None, default_config: Optional[str] = None) -> int:
    """Parse arguments and train or evaluate.

    Args:
        argv: arguments (default ``sys.argv[1:]``).
        default_config: configuration used when ``--config`` is not given (``train.py`` passes
            ``configs/default.yaml`` next to it).

    Returns:
        Process exit code.
    """
    args = build_parser().parse_args(argv)
    if args.resume not in (None, _RESUME_NEWEST) and "=" in args.resume and not os.path.exists(args.resume):
        # `--resume train.epochs=5`: argparse took the override as the optional path.
        args.overrides.insert(0, args.resume)
        args.resume = _RESUME_NEWEST
    config_path = args.config or default_config

    def need_config() -> str:
        if config_path is None:
            raise ConfigError("no --config given and no default configuration (configs/default.yaml) found")
        return config_path

    try:
        if args.eval_only:
            if not args.checkpoint:
                raise ConfigError("--eval-only needs --checkpoint PATH")
            base = None
            if args.config is None:  # our checkpoints carry their configuration
                from ..models import load_checkpoint

                base = load_checkpoint(args.checkpoint).get("config")
            config = load_config(None if base is not None else need_config(), args.overrides, base=base)
            evaluate_checkpoint(config, args.checkpoint, progress=not args.no_progress)
            return 0
        if args.checkpoint:
            raise ConfigError("--checkpoint is for --eval-only; to continue training use --resume PATH")
        resume = None
        if args.resume is not None:
            from ..models import load_checkpoint

            resume = _resume_path(args.resume, need_config if args.resume == _RESUME_NEWEST else None,
                                  args.overrides)
            stored = load_checkpoint(resume).get("config")
            if stored is None:
                raise ConfigError(f"{resume} holds no training configuration; --resume needs a checkpoint "
                                  f"written by this trainer")
            if args.config:
                print(f"note: --resume uses the configuration stored in {resume}; --config {args.config} is "
                      f"ignored (overrides still apply)", file=sys.stderr)
            config = load_config(None, args.overrides, base=stored)
        else:
            config = load_config(need_config(), args.overrides)
        train(config, run_dir=args.run_dir, resume=resume, progress=not args.no_progress)
        return 0
    except (ConfigError, FileNotFoundError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # the same-budget baseline runs as `python -m repose_ext.training.cli` (baseline.py)
    sys.exit(main())
