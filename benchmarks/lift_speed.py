"""How long lifting a long clip takes: a 10-minute, 30 fps clip (18,000 frames) of COCO-17 keypoints from a
results JSON with two persons per frame, through the whole pipeline of ``python -m repose_ext.lift`` (reading,
tracking, joint conversion, resampling to 50 Hz and back, flip test, writing the npz).

    python benchmarks/lift_speed.py [--frames 18000] [--checkpoint CKPT] [--threads 2]

Prints the wall time of each run (two runs after one warm-up on a short clip) and the commit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

from repose_ext.lifter import Lifter

import results
from results import commit, cpu_model


def write_clip(path: str, frames: int) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(frames) / 30.0
    base = rng.uniform(-80, 80, size=(17, 2)) + np.array([960.0, 540.0])
    rows = []
    for i in range(frames):
        for who, offset in ((0, 0.0), (1, 600.0 * np.sin(t[i] / 7))):
            kp = base + offset * np.array([1.0, 0.0]) + 5 * np.sin(t[i] * (1 + np.arange(17)))[:, None]
            if who:
                kp = (kp - kp.mean(0)) * 0.6 + kp.mean(0) + np.array([0, -100.0])
            flat = np.concatenate([kp, np.full((17, 1), 0.9)], 1).reshape(-1)
            rows.append({"image_id": i, "category_id": 1, "keypoints": flat.round(2).tolist(), "score": 0.9})
    with open(path, "w", encoding="utf-8") as f:
        json.dump(rows, f)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=18000)
    ap.add_argument("--checkpoint", default=None, help="default: the bundled model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--csv", help="also write the times to this CSV file (benchmarks/results.py schema)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        src, short = os.path.join(tmp, "clip.json"), os.path.join(tmp, "short.json")
        write_clip(src, args.frames)
        write_clip(short, 300)
        lifter = Lifter(args.checkpoint, device="cpu")
        lifter.lift(short, fps=30, width=1920, height=1080)
        print(f"# lifting {args.frames} frames at 30 fps, 2 persons per frame; {cpu_model()}, {args.threads} "
              f"threads, torch {torch.__version__}, commit {commit()}")
        seconds = []
        for run in range(2):
            start = time.perf_counter()
            result = lifter.lift(src, fps=30, width=1920, height=1080)
            result.save(os.path.join(tmp, "out.npz"))
            seconds.append(time.perf_counter() - start)
            print(f"run {run + 1}: {seconds[-1]:.1f} s ({len(result.frame)} poses)")
    if args.csv:
        results.write_csv(args.csv, [results.row(__file__, "lift a COCO JSON file, save npz", (args.frames, 2, 17),
                                                 "cpu", 1e3 * statistics.median(seconds),
                                                 note=f"runs={','.join(f'{s:.2f}' for s in seconds)} s")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
