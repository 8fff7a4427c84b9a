"""Ship a finished run of configs/bundled.yaml as the package's default model.

Copies the run's final weights (``model.pt``, not ``best.pt``) to ``repose_ext/assets/default_model.pt`` and writes
``default_model.json`` beside it: the config, the commit the run was trained at, the machine, steps and wall time
of the model and of its same-budget baseline, and every split's metrics of both, read from the run's
``summary.json`` files.

    python scripts/export_bundled.py runs/bundled-<time> --commit <sha> --machine "2-core Intel Xeon, ..."
"""

from __future__ import annotations

import argparse
import json
import os
import sys

ASSETS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "repose_ext", "assets")
METRICS = ("mpjpe", "p_mpjpe", "mpjpe_occluded", "mpjpe_visible", "doa_spatial", "doa_temporal")
METRICS_NOTE = ("final weights (not best.pt); mm, depth order in fraction of pairs; studio = held-out actions under "
                "the fixed studio cameras; wild = held-out actions as other people under other cameras (8 draws per "
                "clip), clean 2D and with detector errors")


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise SystemExit(f"error: {path} not found: is the run finished (it writes summary.json at the end)?")
    except json.JSONDecodeError as exc:
        raise SystemExit(f"error: {path} is not valid JSON ({exc})")


def _metrics(splits: dict) -> dict:
    return {name: {k: values[k] for k in METRICS} for name, values in splits.items()}


def export(run_dir: str, commit: str, machine: str, assets: str = ASSETS) -> dict:
    """Copy ``run_dir``'s final model into ``assets`` and write its record; returns the record."""
    summary = _read_json(os.path.join(run_dir, "summary.json"))
    base = _read_json(os.path.join(run_dir, "baseline", "summary.json"))
    if not summary.get("baseline_splits"):
        raise SystemExit(f"error: {run_dir} has no baseline results: the bundled model ships with its same-budget "
                         "baseline's numbers")
    weights = os.path.join(run_dir, "model.pt")
    if not os.path.isfile(weights):
        raise SystemExit(f"error: {weights} not found")
    from repose_ext._atomic import atomic_write  # after the argument checks: a mistake need not wait for torch
    from repose_ext.models import build_model, load_checkpoint

    ckpt = load_checkpoint(weights)
    config = ckpt["config"]
    parameters = sum(p.numel() for p in build_model(config["model"]).parameters())
    record = {
        "what": "the model python -m repose_ext.lift and repose_ext.Lifter() use without a checkpoint",
        "config": "configs/bundled.yaml",
        "command": "python train.py --config configs/bundled.yaml",
        "commit": commit,
        "machine": machine,
        "model": {"config": config["model"], "parameters": parameters,
                  "epochs": summary["epochs"], "steps": summary["global_step"],
                  "wall_seconds": summary["wall_seconds"]},
        "baseline": {"config": config["baseline"], "rank_losses": False, "epochs": base["epochs"],
                     "steps": base["global_step"], "wall_seconds": base["wall_seconds"]},
        "metrics_note": METRICS_NOTE,
        "metrics": _metrics({name: s["summary"] for name, s in summary["splits"].items()}),
        "baseline_metrics": _metrics(summary["baseline_splits"]),
    }
    with open(weights, "rb") as f:
        data = f.read()
    atomic_write(os.path.join(assets, "default_model.pt"), lambda f: f.write(data), fault="checkpoint_tmp")
    atomic_write(os.path.join(assets, "default_model.json"), lambda f: f.write(json.dumps(record, indent=2) + "\n"),
                 binary=False)
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a finished run folder of configs/bundled.yaml")
    parser.add_argument("--commit", required=True, help="the commit the run was trained at")
    parser.add_argument("--machine", required=True, help="the machine and conditions of the run, in words")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.run_dir):
        parser.error(f"run_dir {args.run_dir!r} is not a folder")
    record = export(args.run_dir, args.commit, args.machine)
    print(json.dumps({k: record[k] for k in ("model", "baseline")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
