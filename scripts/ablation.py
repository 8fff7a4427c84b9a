"""Does RePOSE help, and where? The rank-loss ablation on the embedded motion capture, resumable.

    python scripts/ablation.py                          # every run not yet in docs/ablation/runs.csv, then the summary
    python scripts/ablation.py --jobs 2                 # two runs at a time (one thread each: 2 cores)
    python scripts/ablation.py --summary-only           # recompute the summary from runs.csv
    python scripts/ablation.py --lifters tcn --seeds 0 1 --variants none both

Runs: {none, spatial, temporal, both} x seeds (default 0-4) x lifters (``tcn``: the CPU-sized VideoPose3D
temporal conv net; ``dstformer``: the small DSTformer), plus a lambda sweep (0.1, 0.3, 1, 3 on both terms) of
"both" on the conv net. Every run of a lifter gets the same step budget (:data:`BUDGETS`: epochs x samples per
epoch / batch size of ``configs/default.yaml``'s augmented data, no time limit, no baseline run; a changed
budget reruns that lifter's grid), and is scored after training
on the studio split (held-out actions, fixed cameras) and the wild split (the same actions as other people under
other cameras, clean and detector-noisy).

Results: one row per run and split in ``docs/ablation/runs.csv`` (columns :data:`COLUMNS`), appended as each run
ends (a run already there is skipped; an interrupted run continues from its ``latest.pt``). The summary
(``summary.md``, ``summary.png``) gives, per lifter, split and metric, the seed-paired difference of each variant
against "none" (variant minus none, seeds present in both) with a 95 % t-interval.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import math
import os
import statistics
import subprocess
import sys
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "docs", "ablation")

COLUMNS = ["lifter", "variant", "lambda_spatial", "lambda_temporal", "seed", "split", "mpjpe", "p_mpjpe",
           "mpjpe_occluded", "mpjpe_visible", "doa_spatial", "doa_temporal", "steps", "wall_s", "commit"]
METRICS = [("mpjpe", "MPJPE"), ("p_mpjpe", "P-MPJPE"), ("mpjpe_occluded", "MPJPE occl."),
           ("mpjpe_visible", "MPJPE vis."), ("doa_spatial", "DOA joints"), ("doa_temporal", "DOA frames")]
VARIANTS = {"none": (0.0, 0.0), "spatial": (1.0, 0.0), "temporal": (0.0, 1.0), "both": (1.0, 1.0)}
SWEEP = (0.1, 0.3, 3.0)  # "both" at these lambdas on the conv net (1.0 is the "both" variant itself)
LIFTERS = {
    "tcn": ["model.preset=tcn81_cpu", "data.n_frames=81", "data.test_stride=81"],
    "dstformer": ['model={"preset": "small", "maxlen": 27}', "data.n_frames=27", "data.test_stride=27",
                  "train.lr=2.0e-3"],
}
#: Step budget per lifter, the same for every variant and seed of that lifter: epochs x (samples per epoch /
#: batch size) steps, and the learning rate's factor per epoch (``lr_decay``; an epoch schedule, not time). A
#: run counts as done only at its lifter's current budget (the ``steps`` column), so a changed budget reruns that
#: lifter's grid and the summary uses the runs at the current budget only. DSTformer: 4x the 1,024-step pilot,
#: whose training loss still fell about 5 % per epoch; lr 0.82 per epoch ends at about 5 % of the first.
BUDGETS = {"tcn": dict(epochs=8, epoch_size=4096, batch_size=32, lr_decay=0.7),
           "dstformer": dict(epochs=16, epoch_size=4096, batch_size=16, lr_decay=0.82)}


def budget_steps(lifter: str) -> int:
    b = BUDGETS[lifter]
    return b["epochs"] * (b["epoch_size"] // b["batch_size"])


def budget_overrides(lifter: str) -> List[str]:
    b = BUDGETS[lifter]
    return [f"train.epochs={b['epochs']}", f"data.options.epoch_size={b['epoch_size']}",
            f"train.batch_size={b['batch_size']}", f"train.lr_decay={b['lr_decay']}"]


def at_current_budget(rows: Iterable[Mapping[str, str]]) -> List[Mapping[str, str]]:
    """The rows of runs trained at their lifter's current budget (others stay in runs.csv as history)."""
    return [r for r in rows if r["lifter"] in BUDGETS and int(float(r["steps"])) == budget_steps(r["lifter"])]
COMMON = ["baseline=null", "train.time_budget_s=null", "train.lr_schedule=epoch", "num_threads=1", "eval.every=0"]


# ---------------------------------------------------------------------------------------------------------------
# Statistics

# Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom (normal beyond).
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t_quantile_975(df: int) -> float:
    """The 97.5 % quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1; got {df}")
    return _T975[df - 1] if df <= len(_T975) else 1.960


def paired_differences(rows: Iterable[Mapping[str, object]], metric: str, reference: str = "none"
                       ) -> List[Dict[str, object]]:
    """Seed-paired differences of each variant against ``reference``.

    Args:
        rows: runs.csv rows (values as read from the file: strings, or numbers).
        metric: a column of :data:`METRICS`.
        reference: the variant the others are compared with.

    Returns:
        One dict per (lifter, split, variant): ``n`` paired seeds, ``mean`` of variant - reference, ``low`` and
        ``high`` of the 95 % t-interval (None when n < 2).
    """
    table: Dict[Tuple[str, str, str], Dict[int, float]] = {}
    for r in rows:
        value = r.get(metric)
        if value in (None, ""):
            continue
        key = (str(r["lifter"]), str(r["split"]), _variant_label(r))
        table.setdefault(key, {})[int(r["seed"])] = float(value)
    out = []
    for (lifter, split, variant), values in sorted(table.items()):
        if variant == reference:
            continue
        base = table.get((lifter, split, reference), {})
        diffs = [values[s] - base[s] for s in sorted(values) if s in base]
        if not diffs:
            continue
        mean = statistics.fmean(diffs)
        low = high = None
        if len(diffs) > 1:
            half = t_quantile_975(len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
            low, high = mean - half, mean + half
        out.append({"lifter": lifter, "split": split, "variant": variant, "metric": metric, "n": len(diffs),
                    "mean": mean, "low": low, "high": high})
    return out


def _variant_label(row: Mapping[str, object]) -> str:
    """The variant name, with the lambdas for the sweep's runs of "both" (e.g. ``both λ=0.3``)."""
    variant = str(row["variant"])
    if variant == "both":
        lam = float(row["lambda_spatial"])
        if lam != 1.0:
            return f"both λ={lam:g}"
    return variant


def summary_table(rows: Sequence[Mapping[str, object]]) -> str:
    """Markdown: per lifter and split, each variant's paired difference against "none" for every metric."""
    lines = ["Seed-paired difference against `none` (variant − none; MPJPE columns in mm, lower is better; depth "
             "order in fraction of pairs, higher is better), mean [95 % t-interval] over the seeds both have.", ""]
    diffs = {m: paired_differences(rows, m) for m, _ in METRICS}
    keys = sorted({(d["lifter"], d["split"], d["variant"]) for m in diffs for d in diffs[m]})
    lines.append("| lifter | split | variant | n | " + " | ".join(h for _, h in METRICS) + " |")
    lines.append("|---" * (len(METRICS) + 4) + "|")
    for lifter, split, variant in keys:
        cells, n = [], 0
        for m, _ in METRICS:
            d = next((x for x in diffs[m] if (x["lifter"], x["split"], x["variant"]) == (lifter, split, variant)),
                     None)
            if d is None:
                cells.append("–")
                continue
            n = d["n"]
            digits = 3 if m.startswith("doa") else 1
            interval = "" if d["low"] is None else f" [{d['low']:+.{digits}f}, {d['high']:+.{digits}f}]"
            cells.append(f"{d['mean']:+.{digits}f}{interval}")
        lines.append(f"| {lifter} | {split} | {variant} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: Sequence[Mapping[str, object]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("p_mpjpe", "P-MPJPE difference (mm)"), ("doa_spatial", "depth-order (joints) difference")]
    lifters = sorted({str(r["lifter"]) for r in rows})
    fig, axes = plt.subplots(len(lifters), 2, figsize=(11, 3.2 * len(lifters)), squeeze=False)
    for i, lifter in enumerate(lifters):
        for j, (metric, title) in enumerate(panels):
            ax = axes[i][j]
            diffs = [d for d in paired_differences(rows, metric) if d["lifter"] == lifter]
            labels = [f"{d['split']}\n{d['variant']}" for d in diffs]
            means = [d["mean"] for d in diffs]
            err = [[d["mean"] - d["low"] if d["low"] is not None else 0 for d in diffs],
                   [d["high"] - d["mean"] if d["high"] is not None else 0 for d in diffs]]
            ax.errorbar(range(len(diffs)), means, yerr=err, fmt="o", capsize=3)
            ax.axhline(0, color="0.5", lw=0.8)
            ax.set_xticks(range(len(diffs)), labels, fontsize=6, rotation=90)
            ax.set_title(f"{lifter}: {title}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------------------
# Runs

def read_rows(path: str) -> List[Dict[str, str]]:
    if not os.path.isfile(path):
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def append_rows(path: str, rows: List[Dict[str, object]]) -> None:
    """Append rows (header first if the file is new); one write per run so a kill loses at most the run."""
    new = not os.path.isfile(path)
    with open(path, "a", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            w.writeheader()
        w.writerows(rows)
        f.flush()
        os.fsync(f.fileno())


def planned_runs(lifters: Sequence[str], variants: Sequence[str], seeds: Sequence[int], sweep: bool):
    runs = []  # seed by seed, so that a partial grid already holds complete seed-paired comparisons
    for lifter in lifters:
        for seed in seeds:
            for variant in variants:
                runs.append((lifter, variant, *VARIANTS[variant], seed))
        if sweep and lifter == "tcn" and "both" in variants:
            for lam in SWEEP:
                for seed in seeds:
                    runs.append((lifter, "both", lam, lam, seed))
    return runs


def run_key(lifter, variant, lam_s, lam_t, seed) -> str:
    return f"{lifter}_{variant}_s{lam_s:g}_t{lam_t:g}_seed{seed}"


def run_dir_name(run: Tuple) -> str:
    """The run's folder: its key, and the budget when that is not the first one (1024 steps)."""
    steps = budget_steps(run[0])
    return run_key(*run) + ("" if steps == 1024 else f"_{steps}steps")


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def train_one(run: Tuple, runs_dir: str, commit: str, extra: Sequence[str] = ()
              ) -> Optional[List[Dict[str, object]]]:
    """Train (or continue) one run in a child process and return its rows, None if it failed."""
    import json

    lifter, variant, lam_s, lam_t, seed = run
    run_dir = os.path.join(runs_dir, run_dir_name(run))
    os.makedirs(run_dir, exist_ok=True)
    latest = os.path.join(run_dir, "latest.pt")
    summary_path = os.path.join(run_dir, "summary.json")
    if not os.path.isfile(summary_path):
        overrides = COMMON + LIFTERS[lifter] + budget_overrides(lifter) + [
            f"seed={seed}", f"loss.spatial_rank={lam_s}", f"loss.temporal_rank={lam_t}",
            f"name=ablation-{run_key(*run)}"] + list(extra)
        cmd = [sys.executable, os.path.join(ROOT, "train.py"), "--run-dir", run_dir, "--no-progress"]
        cmd += (["--resume", latest] if os.path.isfile(latest) else []) + overrides
        with open(os.path.join(run_dir, "train.log"), "a", encoding="utf-8") as log:
            done = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        if done.returncode != 0 or not os.path.isfile(summary_path):
            print(f"run {run_key(*run)} failed (exit {done.returncode}); see {run_dir}/train.log", flush=True)
            return None
    with open(summary_path, encoding="utf-8") as f:
        summary = json.load(f)
    rows = []
    for split, result in summary["splits"].items():
        values = result["summary"]
        rows.append({"lifter": lifter, "variant": variant, "lambda_spatial": lam_s, "lambda_temporal": lam_t,
                     "seed": seed, "split": split, **{m: values.get(m) for m, _ in METRICS},
                     "steps": summary["global_step"], "wall_s": summary["wall_seconds"], "commit": commit})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lifters", nargs="+", default=list(LIFTERS), choices=list(LIFTERS))
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--no-sweep", action="store_true", help="skip the lambda sweep")
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time")
    ap.add_argument("--out", default=OUT, help="where runs.csv and the summary go (committed)")
    ap.add_argument("--runs-dir", default=os.path.join(ROOT, "runs", "ablation"),
                    help="the runs' folders (checkpoints, logs; not committed)")
    ap.add_argument("--summary-only", action="store_true")
    ap.add_argument("--extra", nargs="*", default=[], metavar="KEY=VALUE",
                    help="overrides for every run, after the budget (e.g. a quick check: train.epochs=1)")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    csv_path = os.path.join(args.out, "runs.csv")
    if not args.summary_only:
        done = {run_key(r["lifter"], r["variant"], float(r["lambda_spatial"]), float(r["lambda_temporal"]),
                        int(r["seed"])) for r in at_current_budget(read_rows(csv_path))}
        todo = [r for r in planned_runs(args.lifters, args.variants, args.seeds, not args.no_sweep)
                if run_key(*r) not in done]
        print(f"{len(todo)} run(s) to do, {len(done)} in {csv_path}", flush=True)
        commit = _commit()
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = {pool.submit(train_one, run, args.runs_dir, commit, args.extra): run for run in todo}
            for future in concurrent.futures.as_completed(futures):
                rows = future.result()
                if rows:
                    append_rows(csv_path, rows)
                    print(f"done {run_key(*futures[future])}", flush=True)
    rows = at_current_budget(read_rows(csv_path))
    if not rows:
        print(f"no runs in {csv_path} yet")
        return 0
    text = summary_table(rows)
    with open(os.path.join(args.out, "summary.md"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    plot(rows, os.path.join(args.out, "summary.png"))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
