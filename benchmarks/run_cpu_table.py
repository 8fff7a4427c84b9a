"""Table of forward+backward time and extra peak memory of the rank losses on CPU.

    python benchmarks/run_cpu_table.py [--shapes 8,243,17 32,243,17] [--out docs/benchmarks_cpu.md]

Times are medians of repeated forward+backward passes (spatial + temporal) measured in one run,
so ratios between providers are comparable. Memory is the extra peak resident set of one pass
in a fresh process: peak RSS (VmHWM, reset through /proc/self/clear_refs) minus the RSS after
the inputs and one warm-up pass exist. Every provider is checked against the reference first.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results  # noqa: E402
from results import commit  # noqa: E402
from providers import PROVIDERS, check, make_inputs, step  # noqa: E402

DEFAULT_SHAPES = ["8,243,17", "32,243,17", "4,1024,17", "1,4096,17"]


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure_memory(provider, shape):
    """Extra peak RSS in MB of one forward+backward (run in a fresh process)."""
    pred, gt = make_inputs(*shape)
    step(provider, pred, gt)  # warm-up: compilation, thread pools, allocator caches
    pred.grad = None
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the current RSS
    base = _status_kb("VmRSS")
    step(provider, pred, gt)
    return (_status_kb("VmHWM") - base) / 1024.0


def measure_time(provider, shape, budget_s):
    pred, gt = make_inputs(*shape)
    step(provider, pred, gt)  # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < budget_s and len(times) < 200):
        t0 = time.perf_counter()
        step(provider, pred, gt)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, len(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", nargs="+", default=DEFAULT_SHAPES, help="B,T,J triples")
    ap.add_argument("--providers", nargs="+", default=list(PROVIDERS), choices=list(PROVIDERS))
    ap.add_argument("--budget", type=float, default=2.0, help="seconds of timing per provider and shape")
    ap.add_argument("--skip-slow-above", type=float, default=2.0e8,
                    help="skip the materialising baselines when B*J*T*T exceeds this many pairs")
    ap.add_argument("--out", default=None, help="write the markdown table here (and a .csv beside it)")
    ap.add_argument("--memory-one", nargs=2, metavar=("PROVIDER", "SHAPE"), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.memory_one:
        provider, shape = args.memory_one
        print(json.dumps(measure_memory(provider, tuple(map(int, shape.split(","))))))
        return

    for provider in args.providers:
        check(provider)
    rows = []
    for spec in args.shapes:
        shape = tuple(map(int, spec.split(",")))
        b, t, j = shape
        row = {"shape": spec}
        for provider in args.providers:
            if provider != "fused-cpu" and b * j * t * t > args.skip_slow_above:
                row[provider] = None
                continue
            ms, n = measure_time(provider, shape, args.budget)
            out = subprocess.run(
                [sys.executable, __file__, "--memory-one", provider, spec], capture_output=True, text=True
            )
            mb = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else float("nan")
            row[provider] = (ms, mb, n)
            print(f"{spec:>12} {provider:>20}: {ms:10.2f} ms (n={n}), extra peak {mb:8.1f} MB", flush=True)
        rows.append(row)

    header = "| (B,T,J) | " + " | ".join(f"{p} ms / MB" for p in args.providers) + " | fused speed-up vs " + ", ".join(
        p for p in args.providers if p != "fused-cpu") + " |"
    lines = [f"Machine: {results.machine()}; commit {commit()}.", "", header, "|" + "---|" * (len(args.providers) + 2)]
    for row in rows:
        cells = []
        for p in args.providers:
            v = row[p]
            cells.append("skipped" if v is None else f"{v[0]:.2f} / {v[1]:.0f}")
        fused = row.get("fused-cpu")
        ratios = []
        for p in args.providers:
            if p == "fused-cpu":
                continue
            v = row[p]
            ratios.append("-" if v is None or fused is None else f"{v[0] / fused[0]:.0f}x")
        lines.append(f"| {row['shape']} | " + " | ".join(cells) + " | " + ", ".join(ratios) + " |")
    table = "\n".join(lines)
    print("\n" + table)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            f.write(table + "\n")
        results.write_csv(os.path.splitext(args.out)[0] + ".csv", [
            results.row(__file__, "spatial+temporal fwd+bwd", r["shape"], p, r[p][0], r[p][1], note=f"n={r[p][2]}")
            for r in rows for p in args.providers if r[p] is not None])


if __name__ == "__main__":
    main()
