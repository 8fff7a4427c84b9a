"""Where a training step of a configuration spends its time: data, forward, loss, backward, optimiser; and the
evaluation that follows an epoch.

    python benchmarks/train_profile.py                                    # configs/default.yaml's model and data
    python benchmarks/train_profile.py --config configs/bundled.yaml --steps 30 --threads 2
    python benchmarks/train_profile.py model=simple_baseline              # the baseline lifter

Variants are timed round-robin in one process (one step of each in turn, after a warm-up round) so that drifting
machine load hits all of them alike:

* ``float64 occlusion, foreach AdamW``: training samples made with the self-occlusion test in float64 and the
  default AdamW (the state before the speed work);
* ``float32 occlusion, foreach AdamW``: the trainer's data path today;
* ``float32 occlusion, fused AdamW``: AdamW's fused CPU kernel;
* ``float32 occlusion, foreach AdamW, bf16 autocast``: the trainer's data path with ``train.amp=bf16`` (the model
  under ``torch.autocast("cpu", torch.bfloat16)``, the loss in float32), fast where the CPU has bf16 instructions
  (AVX512-BF16 or AMX).

Prints the median milliseconds of each phase and steps per second, and the time of one evaluation of the studio
split. Each phase is timed on its own (synchronous CPU work), so the phases add up to the step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

from repose_ext.data import augment
from repose_ext.data.augment import AugmentedMocapDataset
from repose_ext.models import build_model
from repose_ext.training.config import load_config
from repose_ext.training.datasets import build_datasets
from repose_ext.evaluation import evaluate
from repose_ext.training.objective import PoseObjective
from repose_ext.training.trainer import prepare_target

import results
from results import commit, cpu_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHASES = ("data", "forward", "loss", "backward", "optimiser")


class _Float64Occlusion:
    """Make the training samples with the float64 self-occlusion test (the state before the speed work)."""

    def __enter__(self):
        self.original = augment.render_views

        def render_views(*args, geometry_dtype=np.float64, **kwargs):
            return self.original(*args, geometry_dtype=np.float64, **kwargs)

        augment.render_views = render_views

    def __exit__(self, *exc):
        augment.render_views = self.original


class _Nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=os.path.join(REPO, "configs", "default.yaml"))
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--csv", help="also write the medians to this CSV file (benchmarks/results.py schema)")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = load_config(args.config, args.overrides)
    if config["data"]["dataset"] != "mocap_augmented":
        print("error: this profile is for data.dataset=mocap_augmented configurations", file=sys.stderr)
        return 2
    data, t = config["data"], config["train"]
    dataset = AugmentedMocapDataset(data["n_frames"], epoch_size=10 ** 9, seed=data["options"].get("seed", 0),
                                    augment=data["options"].get("augment"))
    objective = PoseObjective.from_config(config["loss"], torch.device("cpu"))
    variants = {}
    for name, occlusion, fused, bf16 in (("float64 occlusion, foreach AdamW", _Float64Occlusion, False, False),
                                         ("float32 occlusion, foreach AdamW", _Nothing, False, False),
                                         ("float32 occlusion, fused AdamW", _Nothing, True, False),
                                         ("float32 occlusion, foreach AdamW, bf16 autocast", _Nothing, False, True)):
        torch.manual_seed(0)
        model = build_model(config["model"])
        optimiser = torch.optim.AdamW(model.parameters(), lr=t["lr"], weight_decay=t["weight_decay"],
                                      fused=fused or None, foreach=None if fused else True)
        variants[name] = (model, optimiser, occlusion, bf16, {p: [] for p in PHASES})

    def step(index, model, optimiser, occlusion, bf16, times):
        b = t["batch_size"]
        t0 = time.perf_counter()
        with occlusion():
            items = dataset.__getitems__(list(range(index * b, index * b + b)))
        inputs = torch.stack([it["input"] for it in items])
        target = prepare_target(torch.stack([it["target"] for it in items]), data["rootrel"], 0)
        t1 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pred = model(inputs)
        t2 = time.perf_counter()
        loss, _ = objective(pred, target)
        t3 = time.perf_counter()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        t4 = time.perf_counter()
        optimiser.step()
        t5 = time.perf_counter()
        if times is not None:
            for phase, seconds in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                times[phase].append(seconds * 1e3)

    for name, (model, optimiser, occlusion, bf16, times) in variants.items():
        model.train()
        step(0, model, optimiser, occlusion, bf16, None)  # warm-up
    for i in range(args.steps):
        for model, optimiser, occlusion, bf16, times in variants.values():
            step(i + 1, model, optimiser, occlusion, bf16, times)

    print(f"# {config['name']}: model {config['model']}, batch {t['batch_size']} x {data['n_frames']} frames, "
          f"{args.threads} thread(s); {cpu_model()}, torch {torch.__version__}, commit {commit()}")
    print(f"| variant | {' | '.join(PHASES)} | step (ms) | steps/s |")
    rows = []
    print("|---|" + "---|" * (len(PHASES) + 2))
    for name, (_, _, _, _, times) in variants.items():
        medians = [statistics.median(times[p]) for p in PHASES]
        total = statistics.median([sum(v) for v in zip(*(times[p] for p in PHASES))])
        print(f"| {name} | " + " | ".join(f"{m:.1f}" for m in medians) + f" | {total:.1f} | {1e3 / total:.2f} |")
        shape = (t["batch_size"], data["n_frames"], 17)
        rows += [results.row(__file__, f"train step: {phase}", shape, name, m) for phase, m in zip(PHASES, medians)]
        rows.append(results.row(__file__, "train step", shape, name, total, note=f"steps/s={1e3 / total:.2f}"))
    if args.csv:
        results.write_csv(args.csv, rows)

    bundle = build_datasets(config, need_train=False)
    loader = torch.utils.data.DataLoader(bundle.test, batch_size=config["eval"]["batch_size"], shuffle=False)
    model = next(iter(variants.values()))[0]
    t0 = time.perf_counter()
    evaluate(model, loader, bundle.skeleton, bundle.protocol, flip=config["eval"]["flip_test"],
             rootrel=data["rootrel"], device=torch.device("cpu"), progress=False)
    print(f"evaluation of the studio split ({len(bundle.test)} clips, flip test "
          f"{'on' if config['eval']['flip_test'] else 'off'}): {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
