"""What the joint conversion costs: the same held-out motion lifted from Human3.6M-17 input and from each
detector format's keypoints converted to Human3.6M-17 (repose_ext/keypoints/formats.py).

    python scripts/compare_joint_formats.py [--checkpoint CKPT] [--draws 4]

The 3 held-out clips, each filmed ``--draws`` times by a camera, body and path drawn as in the wild split (clean
2D, fixed seed), are lifted by the model (default: the bundled one) from exact H36M-17 keypoints and from
stand-in keypoints of every format made by :func:`repose_ext.keypoints.formats.from_h36m17`. Those place the
eyes beside the head top and the mid-hip on the pelvis, so what this measures is the body joints' conversion
(thorax = mid-shoulder for COCO-17, spine = mean of pelvis and thorax), not a real detector's face or hips.
Prints P-MPJPE (mm) per format and its ratio to H36M-17 input.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from repose_ext.data.augment import _STREAMS, AugmentConfig, Motion, MotionBank, render_views  # noqa: E402
from repose_ext.data.synthetic_views import TEST_CLIPS, load_mocap  # noqa: E402
from repose_ext.keypoints.formats import FORMATS, from_h36m17  # noqa: E402
from repose_ext.lifter import Lifter  # noqa: E402
from repose_ext.metrics import p_mpjpe  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--draws", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    mocap, fps = load_mocap()
    lifter = Lifter(args.checkpoint, device="cpu")
    config = AugmentConfig()
    errors = {fmt: [] for fmt in FORMATS}
    for c, clip in enumerate(TEST_CLIPS):
        bank = MotionBank(mocap, [clip], fps)
        n = int(bank.frames[0])
        for k in range(args.draws):
            rngs = {name: np.random.default_rng([args.seed, c, k, i]) for i, name in enumerate(_STREAMS)}
            root, directions = bank.gather(np.array([0]), np.arange(n, dtype=np.float64)[None])
            motion = Motion(root=root, directions=directions, lengths=bank.base_lengths[None].copy(),
                            clip=np.array([0]))
            motion = config.trajectory(config.body(motion, rngs["body"]), fps, rngs["trajectory"])
            joints = config.mirror(config.rotate(motion.joints(), rngs["rotate"]), rngs["mirror"])
            out = render_views(joints, config.camera(joints, rngs["camera"]), None, None)
            keypoints = out["keypoints"][0].astype(np.float64)
            truth = torch.tensor(out["camera_3d"][0], dtype=torch.float64)
            truth = truth - truth[:, :1]
            for fmt in FORMATS:
                pose = lifter.lift(from_h36m17(keypoints, fmt), format=fmt).pose3d
                errors[fmt].append(float(p_mpjpe(torch.tensor(pose), truth)))
    base = float(np.mean(errors["h36m17"]))
    print(f"# {lifter.checkpoint}; {len(TEST_CLIPS)} held-out clips x {args.draws} draws, clean 2D")
    print("| input | P-MPJPE (mm) | vs H36M-17 |")
    print("|---|---|---|")
    for fmt in FORMATS:
        value = float(np.mean(errors[fmt]))
        print(f"| {fmt} | {value:.1f} | {100 * (value / base - 1):+.1f} % |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
