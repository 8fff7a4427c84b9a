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

    from repose_ext.training.config import load_config
    from repose_ext.training.trainer import CheckpointScorer

    config = load_config(config_path)
    scorer = CheckpointScorer(config, weights)
    print(f"{'split':<12} {'context':<22} {'MPJPE':>8} {'P-MPJPE':>8} {'DOA-spatial':>12}")
    clips = f"{config['data']['n_frames']}-frame clips"
    for name in scorer.splits:
        for label, lifter in ((clips, scorer.model), ("one frame", FrameByFrame(scorer.model))):
            s = scorer.score(name, lifter).summary
            print(f"{name:<12} {label:<22} {s['mpjpe']:8.2f} {s['p_mpjpe']:8.2f} {s['doa_spatial']:12.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
