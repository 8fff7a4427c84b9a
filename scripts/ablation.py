"""Does RePOSE help, and where? {no rank loss, spatial, temporal, both} x seeds on the embedded mocap data.

    python scripts/ablation.py [--seeds 0 1 2] [--out docs/ablation] [key=value ...]

Each run is ``python train.py`` (configs/default.yaml) with the rank weights of its variant and its seed; extra
``key=value`` overrides apply to every run. Writes ``results.csv`` (one row per run), ``ablation.md`` (mean ± std
over seeds, occluded and visible joints separately) and ``ablation.png`` (bar chart) into ``--out``, and renders
one held-out clip of the "both" model (``clip.png``: 2D input with occluded joints marked, ground truth and
prediction in 3D).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from repose_ext.training.config import load_config  # noqa: E402
from repose_ext.training.trainer import train  # noqa: E402

METRICS = [  # key, header, lower is better
    ("mpjpe", "MPJPE (mm)", True),
    ("p_mpjpe", "P-MPJPE (mm)", True),
    ("mpjpe_occluded", "MPJPE occluded (mm)", True),
    ("mpjpe_visible", "MPJPE visible (mm)", True),
    ("doa_spatial", "depth order, joints", False),
    ("doa_temporal", "depth order, frames", False),
]


def variants(lam_s: float, lam_t: float):
    return {
        "none": (0.0, 0.0),
        "spatial": (lam_s, 0.0),
        "temporal": (0.0, lam_t),
        "both": (lam_s, lam_t),
    }


def run_all(args, overrides):
    base = load_config(os.path.join(ROOT, "configs", "default.yaml"), overrides)
    lam_s = base["loss"]["spatial_rank"] or 1.0
    lam_t = base["loss"]["temporal_rank"] or 1.0
    rows, run_dirs = [], {}
    for name, (s, t) in variants(lam_s, lam_t).items():
        for seed in args.seeds:
            config = load_config(os.path.join(ROOT, "configs", "default.yaml"),
                                 list(overrides) + [f"seed={seed}", f"loss.spatial_rank={s}",
                                                    f"loss.temporal_rank={t}", f"name=ablation_{name}_s{seed}"])
            run_dir = os.path.join(args.out, "runs", f"{name}_seed{seed}")
            summary = train(config, run_dir=run_dir, progress=not args.quiet)
            final = summary["final"]["summary"]
            row = {"variant": name, "seed": seed, "lambda_spatial": s, "lambda_temporal": t,
                   "wall_s": summary["wall_seconds"]}
            row.update({k: final.get(k) for k, _, _ in METRICS})
            rows.append(row)
            run_dirs[(name, seed)] = run_dir
            print(json.dumps(row), flush=True)
    return rows, run_dirs


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return float("nan"), float("nan")
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def write_table(rows, path, seeds):
    lines = [f"Embedded mocap (held-out clips), mean ± std over seeds {list(seeds)}; "
             f"`python scripts/ablation.py`. Depth order = fraction of pairs in the right order.", "",
             "| variant | " + " | ".join(h for _, h, _ in METRICS) + " |", "|---" * (len(METRICS) + 1) + "|"]
    for name in ("none", "spatial", "temporal", "both"):
        sel = [r for r in rows if r["variant"] == name]
        cells = []
        for key, _, _ in METRICS:
            m, s = mean_std([r[key] for r in sel])
            cells.append(f"{m:.3f} ± {s:.3f}" if key.startswith("doa") else f"{m:.2f} ± {s:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return "\n".join(lines)


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = ["none", "spatial", "temporal", "both"]
    keys = [("mpjpe_visible", "visible joints"), ("mpjpe_occluded", "occluded joints")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    x = np.arange(len(names))
    for i, (key, label) in enumerate(keys):
        ms = [mean_std([r[key] for r in rows if r["variant"] == n]) for n in names]
        axes[0].bar(x + (i - 0.5) * 0.38, [m for m, _ in ms], 0.38, yerr=[s for _, s in ms], capsize=3, label=label)
    axes[0].set_xticks(x, names)
    axes[0].set_ylabel("MPJPE (mm)")
    axes[0].set_title("MPJPE by rank-loss variant")
    axes[0].legend()
    for i, (key, label) in enumerate([("doa_spatial", "joint pairs"), ("doa_temporal", "frame pairs")]):
        ms = [mean_std([r[key] for r in rows if r["variant"] == n]) for n in names]
        axes[1].bar(x + (i - 0.5) * 0.38, [m for m, _ in ms], 0.38, yerr=[s for _, s in ms], capsize=3, label=label)
    axes[1].set_xticks(x, names)
    axes[1].set_ylabel("depth-order accuracy")
    axes[1].set_ylim(0.0, 1.0)
    axes[1].axhline(0.5, color="0.5", lw=0.8, ls="--")  # chance
    axes[1].set_title("Depth-order accuracy")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render_held_out_clip(run_dir, path):
    """2D input (occluded joints marked), ground truth and prediction of one held-out clip."""
    import torch

    from repose_ext.data.synthetic_views import SyntheticViewsDataset
    from repose_ext.lifter import Lifter
    from repose_ext.visualize import render_clip

    lifter = Lifter(os.path.join(run_dir, "best.pt"), device="cpu")
    model = lifter.model
    test = SyntheticViewsDataset("test", n_frames=lifter.window or 27)
    sample = test[len(test) // 2]
    with torch.no_grad():
        pred = model(sample["input"][None])[0]
    gt = sample["target"]
    pred, gt = pred - pred[:, :1], gt - gt[:, :1]
    render_clip(path, sample["input"][..., :2].numpy(), [gt.numpy(), pred.numpy()],
                [f"ground truth ({sample['action']})", "prediction (both rank terms)"],
                occluded=sample["occluded"].numpy())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "ablation"))
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    ap.add_argument("overrides", nargs="*", help="key=value applied to every run (e.g. train.epochs=3)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rows, run_dirs = run_all(args, args.overrides)
    with open(os.path.join(args.out, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(write_table(rows, os.path.join(args.out, "ablation.md"), args.seeds))
    plot(rows, os.path.join(args.out, "ablation.png"))
    render_held_out_clip(run_dirs[("both", args.seeds[0])], os.path.join(args.out, "clip.png"))
    print(f"wrote {args.out}/ablation.md, ablation.png, clip.png, results.csv")


if __name__ == "__main__":
    main()
