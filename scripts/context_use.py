"""How much a trained temporal lifter uses its temporal context.

Scores a finished run's weights on every evaluation split of its config twice: as trained (clips of
``data.n_frames`` frames) and one frame at a time (each frame lifted as a clip of its own, which a VideoPose3D
conv net pads into a still clip of its receptive field, so it sees no motion). The difference is what the lifter
gains from the frames around each frame.

    python scripts/context_use.py runs/<run> [--weights model.pt]
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
from torch import nn


class FrameByFrame(nn.Module):
    """``model`` applied to every frame of a clip on its own: (B, T, J, C) -> (B * T, 1, J, C) -> (B, T, J, 3)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        y = self.model(x.reshape(b * t, 1, *x.shape[2:]))
        return y.reshape(b, t, *y.shape[2:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a run folder (with config.yaml)")
    parser.add_argument("--weights", default="model.pt", help="weights file in the run folder (default model.pt)")
    args = parser.parse_args(argv)
    config_path = os.path.join(args.run, "config.yaml")
    weights = os.path.join(args.run, args.weights)
    for path in (config_path, weights):
        if not os.path.isfile(path):
            print(f"error: {path} not found: give a finished run folder", file=sys.stderr)
            return 2

    from torch.utils.data import DataLoader

    from repose_ext.evaluation import evaluate
    from repose_ext.models import build_model, load_model_weights
    from repose_ext.training.config import load_config
    from repose_ext.training.datasets import build_datasets
    from repose_ext.training.trainer import _model_config, seed_everything, set_threads

    config = load_config(config_path)
    set_threads(config)
    seed_everything(config["seed"])
    data = build_datasets(config, need_train=False)
    model = build_model(_model_config(config))
    load_model_weights(model, weights)
    e = config["eval"]
    print(f"{'split':<12} {'context':<22} {'MPJPE':>8} {'P-MPJPE':>8} {'DOA-spatial':>12}")
    for name, dataset in [(data.test_name, data.test), *data.extra_tests.items()]:
        loader = DataLoader(dataset, batch_size=e["batch_size"], shuffle=False)
        for label, lifter in ((f"{config['data']['n_frames']}-frame clips", model), ("one frame", FrameByFrame(model))):
            s = evaluate(lifter, loader, data.skeleton, data.protocol, flip=e["flip_test"],
                         rootrel=config["data"]["rootrel"]).summary
            print(f"{name:<12} {label:<22} {s['mpjpe']:8.2f} {s['p_mpjpe']:8.2f} {s['doa_spatial']:12.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
