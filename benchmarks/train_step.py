"""Time one training step of a lifter with the RePOSE rank loss off, fused, and in its plain PyTorch reference form.

    python benchmarks/train_step.py                      # "repose" preset, B=2, T=243, CPU
    python benchmarks/train_step.py --preset small --batch 32 --frames 27 --repeats 10
    python benchmarks/train_step.py --device cuda --csv out.csv

A step is what the trainer does per batch: forward, the objective (MPJPE + 0.5 N-MPJPE + 20 velocity, plus
spatial + temporal rank terms with weight 1 unless off), backward, AdamW step. Variants are timed round-robin
(one step of each in turn, ``--repeats`` rounds after a warm-up round) so that drifting machine load hits all of
them alike; medians and min-max are reported. The rank loss alone (forward + backward of spatial + temporal on
the same shapes) is timed the same way; its share of the step is ``rank-loss time / fused step time``.
Every fused rank loss is checked against the reference before timing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

import repose_ext
from repose_ext.models import build_model
from repose_ext.training.objective import PoseObjective, resolve_rank_backend

import results
from results import commit


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_batch(batch: int, frames: int, device: torch.device, seed: int = 0):
    """Random 2D inputs (x, y, confidence) and 3D targets with body-like depth spread (z std about 0.1)."""
    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(batch, frames, 17, 3, generator=g) * 0.2
    inputs[..., 2] = torch.rand(batch, frames, 17, generator=g)
    target = torch.randn(batch, frames, 17, 3, generator=g) * torch.tensor([0.2, 0.2, 0.1])
    return inputs.to(device), target.to(device)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="repose", help="model preset (repose, motionbert, small)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--frames", type=int, default=243)
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds after one warm-up round")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fused", default="fused", help="backend of the fused variant (fused = best for device)")
    parser.add_argument("--csv", help="also write the medians to this CSV file (benchmarks/results.py schema)")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build_model({"preset": args.preset, "maxlen": max(args.frames, 1)}).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    inputs, target = make_batch(args.batch, args.frames, device)
    fused = resolve_rank_backend(args.fused, device)
    variants = {
        "rank off": PoseObjective(rank_backend="off", device=device),
        f"fused ({fused})": PoseObjective(spatial_rank=1.0, temporal_rank=1.0, rank_backend=fused, device=device),
        "reference": PoseObjective(spatial_rank=1.0, temporal_rank=1.0, rank_backend="reference", device=device),
    }

    # Correctness first: the fused loss and gradient equal the reference.
    pred = (target + 0.05 * torch.randn_like(target)).requires_grad_(True)
    losses = {}
    for name in ("cpu" if device.type == "cpu" else fused, "reference"):
        pred.grad = None
        loss = (repose_ext.spatial_depth_rank_loss(pred, target, backend=name)
                + repose_ext.temporal_depth_rank_loss(pred, target, backend=name))
        loss.backward()
        losses[name] = (loss.detach().double(), pred.grad.clone())
    (l1, g1), (l2, g2) = losses.values()
    torch.testing.assert_close(l1, l2, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-9)

    def train_step(objective):
        pred = model(inputs)
        loss, _ = objective(pred, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def rank_only(backend):
        p = pred.detach().requires_grad_(True)
        loss = (repose_ext.spatial_depth_rank_loss(p, target, backend=backend)
                + repose_ext.temporal_depth_rank_loss(p, target, backend=backend))
        loss.backward()

    jobs = {f"step: {k}": (lambda o=o: train_step(o)) for k, o in variants.items()}
    jobs[f"rank loss only: {fused}"] = lambda: rank_only(fused)
    jobs["rank loss only: reference"] = lambda: rank_only("reference")
    times = {k: [] for k in jobs}
    for round_ in range(args.repeats + 1):
        for name, job in jobs.items():
            _sync(device)
            t0 = time.perf_counter()
            job()
            _sync(device)
            if round_ > 0:  # round 0 is the warm-up
                times[name].append((time.perf_counter() - t0) * 1e3)

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"machine: {results.machine()}; commit {commit()}")
    print(f"preset {args.preset}, B={args.batch}, T={args.frames}, J=17, device {device}, "
          f"{args.repeats} rounds (median, min-max in ms)")
    width = max(len(k) for k in times)
    for k, v in times.items():
        print(f"  {k:<{width}}  {med[k]:10.1f}  ({min(v):.1f}-{max(v):.1f})")
    fused_step = med[f"step: fused ({fused})"]
    ref_step = med["step: reference"]
    fused_share = 100 * med[f"rank loss only: {fused}"] / fused_step
    ref_share = 100 * med["rank loss only: reference"] / ref_step
    print(f"rank loss share of the step: fused {fused_share:.2f}% (rank-only time / fused step); "
          f"reference {ref_share:.2f}%")
    print(f"step time vs rank off: fused {fused_step / med['step: rank off']:.3f}x, "
          f"reference {ref_step / med['step: rank off']:.3f}x")
    if args.csv:
        results.write_csv(args.csv, [
            results.row(__file__, name, (args.batch, args.frames, 17), args.preset, med[name],
                        note=f"min={min(v):.2f}; max={max(v):.2f}; rounds={len(v)}", device=args.device)
            for name, v in times.items()])
    return 0


if __name__ == "__main__":
    sys.exit(main())
