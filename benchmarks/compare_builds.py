"""Side-by-side timing of the fused CPU loss in two builds of the package, in alternating processes.

    git worktree add /tmp/before <commit> && (cd /tmp/before && pip install --no-build-isolation -e . --no-deps)
    python benchmarks/compare_builds.py /tmp/before . --threads 1 --rounds 3
    python benchmarks/compare_builds.py /tmp/before . --threads 2 --shapes 32,243,17 1,65536,17

Each round runs ``run_cpu_table.py`` for the fused providers (the public API's forward + backward of both terms in
one call and in two calls, checked against the reference first) once with each build first on ``PYTHONPATH``, in turn, so that drifting machine load hits
both alike. Prints, per shape, each build's medians over the rounds (with their range) and the ratio B / A;
``--csv PATH`` also writes them in the one schema of ``results.py`` (the commit column is this checkout's).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import results  # noqa: E402
import torch  # noqa: E402
LINE = re.compile(r"^\s*(\S+)\s+(.+?):\s+([0-9.]+) ms")
FUSED = ["fused-cpu", "fused-cpu (two calls)"]


def one_run(root: str, shapes, providers, threads: int, budget: float) -> dict:
    """{(shape, provider): median ms} of one run_cpu_table.py process with `root` first on the path."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(root), OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, os.path.join(HERE, "run_cpu_table.py"), "--providers", *providers,
           "--budget", str(budget), "--shapes", *shapes]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=os.path.abspath(root))
    if out.returncode != 0:
        sys.exit(f"compare_builds: the run in {root} failed:\n{out.stderr[-2000:]}")
    times = {}
    for line in out.stdout.splitlines():
        m = LINE.match(line)
        if m:
            times[(m.group(1), m.group(2).strip())] = float(m.group(3))
    return times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build_a", help="repository root of the first build (e.g. the previous release)")
    ap.add_argument("build_b", help="repository root of the second build (e.g. this checkout)")
    ap.add_argument("--shapes", nargs="+", default=["8,243,17", "32,243,17", "4,1024,17", "1,4096,17"])
    ap.add_argument("--providers", nargs="+", default=FUSED, choices=FUSED)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--budget", type=float, default=2.0, help="seconds of timing per shape and run")
    ap.add_argument("--csv", help="also write the medians to this CSV file (benchmarks/results.py schema)")
    args = ap.parse_args(argv)
    for root in (args.build_a, args.build_b):
        if not os.path.isdir(os.path.join(root, "repose_ext")):
            sys.exit(f"compare_builds: {root} is not a repository root (no repose_ext/ in it)")
    runs = {"A": [], "B": []}
    for r in range(args.rounds):
        for key, root in (("A", args.build_a), ("B", args.build_b)):
            runs[key].append(one_run(root, args.shapes, args.providers, args.threads, args.budget))
            print(f"round {r + 1} {key}: " + ", ".join(f"{s} {p} {t:.3f} ms" for (s, p), t in runs[key][-1].items()),
                  flush=True)
    print(f"\n{args.threads} thread(s), {args.rounds} alternating rounds; A = {args.build_a}, B = {args.build_b}")
    torch.set_num_threads(args.threads)  # what the threads column of the CSV rows says
    csv_rows = []
    print("| (B,T,J) | provider | A median ms (range) | B median ms (range) | B / A |")
    print("|---|---|---|---|---|")
    for key in runs["A"][0]:
        if not all(key in t for t in runs["A"] + runs["B"]):
            continue  # skipped by run_cpu_table in some run
        a = [t[key] for t in runs["A"]]
        b = [t[key] for t in runs["B"]]
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"| {key[0]} | {key[1]} | {ma:.3f} ({min(a):.3f}-{max(a):.3f}) | {mb:.3f} ({min(b):.3f}-{max(b):.3f}) "
              f"| {mb / ma:.2f} |")
        for name, root, times in (("A", args.build_a, a), ("B", args.build_b, b)):
            csv_rows.append(results.row(__file__, "depth rank loss forward+backward", key[0], f"{key[1]} [{name}]",
                                        statistics.median(times), note=f"build {name}: {os.path.abspath(root)}; "
                                        f"{min(times):.3f}-{max(times):.3f} ms over {args.rounds} alternating rounds; "
                                        f"B / A {mb / ma:.2f}"))
    if args.csv:
        results.write_csv(args.csv, csv_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
