"""The training-batch case of the CPU floor issue: (B, T, J) = (32, 243, 17), forward+backward of
spatial + temporal rank loss, against the target of 1.4 ms (half the speed of the dense pair
loop's compute floor, about 0.68 ms on the 2-core development machine).

    python benchmarks/bench_floor.py [--threads N] [--seconds 20] [--block 1]

Rows, timed round-robin in one run (so their ratios are comparable on a shared machine):
  depth_rank_loss        the public one-pass API (what DepthRankLoss and the trainer use)
  spatial + temporal     the two public functions, one call each
  op only                repose::depth_rank_loss called directly, which returns the loss and
                         d loss / d pred (the public API minus Python checks and autograd)
  kernels only           repose::rank_hinge on (S, N) series prepared beforehand (no layout
                         work, no backward pass)
All rows compute the same loss and gradient (checked before timing). Prints the median and the
10th percentile of each, and the public API's median over the target. With --block N each row
runs N times in a row before the next one (the steady state of a training loop, which calls the
same loss every step); the default, 1, alternates the rows call by call, so that each call finds
the caches and the heap as the other rows left them.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import repose_ext
from provenance import commit, cpu_model

SHAPE = (32, 243, 17)
TARGET_MS = 1.4


def make_rows(pred, gt):
    b, t, j, _ = pred.shape
    zp, zg = pred.detach()[..., 2], gt[..., 2]
    series = (  # spatial (B*T, J) and temporal (B*J, T), contiguous
        (zp.reshape(b * t, j).contiguous(), zg.reshape(b * t, j).contiguous()),
        (zp.transpose(1, 2).reshape(b * j, t).contiguous(), zg.transpose(1, 2).reshape(b * j, t).contiguous()),
    )
    factors = (torch.full((b,), 1.0 / (b * t * j * j), dtype=torch.float64),
               torch.full((b,), 1.0 / (b * j * t * t), dtype=torch.float64))  # reduction "mean"

    def api(p):
        p.grad = None
        repose_ext.depth_rank_loss(p, gt, backend="cpu").backward()
        return p.grad

    def two_calls(p):
        p.grad = None
        (repose_ext.spatial_depth_rank_loss(p, gt, backend="cpu")
         + repose_ext.temporal_depth_rank_loss(p, gt, backend="cpu")).backward()
        return p.grad

    def op_only(p):
        return torch.ops.repose.depth_rank_loss(p.detach(), gt, None, 0.0, -1, *factors, True, False)[2]

    def kernels_only(p):
        for ps, gs in series:
            torch.ops.repose.rank_hinge(ps, gs, None, 0.0, -1, True, False)
        return None

    return {"depth_rank_loss": api, "spatial + temporal": two_calls, "op only": op_only,
            "kernels only": kernels_only}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--seconds", type=float, default=20.0, help="total timing budget")
    ap.add_argument("--block", type=int, default=1, help="consecutive calls of a row before the next row")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    pred = torch.randn(*SHAPE, 3, generator=gen).requires_grad_(True)
    gt = torch.randn(*SHAPE, 3, generator=gen)
    rows = make_rows(pred, gt)

    grads = {name: fn(pred) for name, fn in rows.items()}  # warm-up and check
    for name in ("spatial + temporal", "op only"):
        torch.testing.assert_close(grads[name], grads["depth_rank_loss"], rtol=1e-5, atol=1e-9)

    times = {name: [] for name in rows}
    end = time.perf_counter() + args.seconds
    while time.perf_counter() < end:
        for name, fn in rows.items():
            for _ in range(args.block):
                t0 = time.perf_counter()
                fn(pred)
                times[name].append(time.perf_counter() - t0)

    print(f"(B, T, J) = {SHAPE}; {cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"commit {commit()}; {len(times['depth_rank_loss'])} calls per row in blocks of {args.block}")
    print("| forward+backward | median ms | p10 ms |")
    print("|---|---|---|")
    for name, ts in times.items():
        ts.sort()
        print(f"| {name} | {statistics.median(ts) * 1e3:.3f} | {ts[len(ts) // 10] * 1e3:.3f} |")
    api = statistics.median(times["depth_rank_loss"]) * 1e3
    print(f"depth_rank_loss median / target {TARGET_MS} ms = {api / TARGET_MS:.2f} "
          f"({'met' if api <= TARGET_MS else 'missed'})")


if __name__ == "__main__":
    main()
