"""Forward+backward time and extra peak memory of the rank losses on a CUDA GPU.

    python benchmarks/bench_gpu.py [--shapes 32,243,17 1,4096,17] [--out DIR] [--budget 1.0]

For every (B, T, J) and provider it times one forward+backward of spatial + temporal loss
(the paper's defaults) with CUDA events (median, 20th and 80th percentile over repeated
passes after warm-up; torch.compile and Triton compile during warm-up) and measures the
extra peak memory of one pass with ``torch.cuda.max_memory_allocated`` (peak minus what
was allocated before the pass; the inputs are not counted, pred.grad is). Every provider is
first checked against the float64 reference at a small shape. For scale, the row
"dstformer-step" times one training step (forward, MSE loss, backward) of the "repose"
DSTformer on the same (B, T, J) input (T <= 243). A provider that fails (out
of memory, compile error) gets its error in the table and the run goes on.

Writes ``bench_gpu.csv`` (one row per measurement, in the schema of every benchmark: results.py) and
``bench_gpu.md`` to --out (default: $OUT, else benchmarks/results), rewritten after every measurement so that a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from providers import PROVIDERS, backend_loss, make_inputs  # noqa: E402
import results  # noqa: E402

import repose_ext  # noqa: E402

DEFAULT_SHAPES = ["32,243,17", "128,243,17", "4,1024,17", "1,4096,17"]
OP = "spatial+temporal fwd+bwd"


_MODEL = None


def _dstformer_step(pred, gt):
    """Context, not a rank loss: one DSTformer ("repose" preset) training step's forward and loss.

    Its backward (run by ``step``) reaches the model's parameters, not ``pred``.
    """
    global _MODEL
    if _MODEL is None:
        from repose_ext.models.dstformer import build_model

        _MODEL = build_model("repose").to(pred.device)
    out = _MODEL(pred.detach())
    return ((out - gt) ** 2).mean()


GPU_PROVIDERS = {
    "cuda": backend_loss("cuda"),
    "triton": backend_loss("triton"),
    "authors": PROVIDERS["authors"],
    "broadcast": PROVIDERS["broadcast"],
    "compile(broadcast)": PROVIDERS["compile(broadcast)"],
    "dstformer-step": _dstformer_step,
}
NOT_A_LOSS = {"dstformer-step"}  # context rows: no reference check


def _versions():
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = "-"
    return {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "triton": triton_version,
        "cuda": torch.version.cuda or "-",
        "commit": results.commit(),
    }


def step(fn, pred, gt):
    pred.grad = None
    loss = fn(pred, gt)
    loss.backward()
    return loss.detach()


def check(fn):
    """Raise if the provider disagrees with the float64 reference at a small shape."""
    pred, gt = make_inputs(2, 33, 17, device="cuda", dtype=torch.float64)
    expected = step(PROVIDERS["broadcast"], pred, gt).detach()
    expected_grad = pred.grad.clone()
    got = step(fn, pred, gt).detach()
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(pred.grad, expected_grad, rtol=1e-6, atol=1e-9)


def measure(fn, shape, budget_s):
    """(loss, sorted times in ms, extra peak MB) of forward+backward at (B, T, J)."""
    pred, gt = make_inputs(*shape, device="cuda")
    for _ in range(2):  # warm-up: compilation, allocator caches
        loss = step(fn, pred, gt)
    torch.cuda.synchronize()

    pred.grad = None
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step(fn, pred, gt)
    torch.cuda.synchronize()
    peak_mb = (torch.cuda.max_memory_allocated() - base) / 2**20

    t0 = time.perf_counter()
    step(fn, pred, gt)
    torch.cuda.synchronize()
    once = time.perf_counter() - t0
    reps = int(min(200, max(5, budget_s / max(once, 1e-6))))
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(reps)]
    for i in range(reps):
        starts[i].record()
        step(fn, pred, gt)
        ends[i].record()
    torch.cuda.synchronize()
    times = sorted(s.elapsed_time(e) for s, e in zip(starts, ends))
    return float(loss), times, peak_mb


def _describe(exc):
    """One short line for the table: the exception type and the first line of its message."""
    lines = str(exc).splitlines()
    text = f"{type(exc).__name__}: {lines[0][:120]}" if lines else type(exc).__name__
    return text.replace("|", "/")


def _quantile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def write_outputs(rows, out_dir, versions):
    results.write_csv(os.path.join(out_dir, "bench_gpu.csv"), [
        results.row(__file__, r["op"], (r["B"], r["T"], r["J"]), r["provider"], r.get("median_ms"), r.get("peak_extra_mb"),
                    note=f"status={r['status']}" + (f"; p20={r['p20_ms']:.4f}; p80={r['p80_ms']:.4f}; reps={r['reps']}; "
                                                    f"loss={r['loss']}" if r["status"] == "ok" else ""),
                    device="cuda")
        for r in rows])
    lines = [
        f"# Rank losses on {versions['device']}: forward+backward of spatial + temporal loss (float32)",
        "",
        f"torch {versions['torch']}, Triton {versions['triton']}, CUDA {versions['cuda']}, commit {versions['commit']}. "
        "Median over repeated passes (CUDA events), [20th-80th percentile]; extra peak memory of one pass "
        "(torch.cuda.max_memory_allocated minus what the inputs hold); speed-up against the authors' form.",
        "",
        "| (B, T, J) | provider | median ms | [p20, p80] ms | extra peak MB | speed-up vs authors | status |",
        "|---|---|---|---|---|---|---|",
    ]
    authors = {(r["B"], r["T"], r["J"]): r["median_ms"] for r in rows if r["provider"] == "authors" and r["status"] == "ok"}
    for r in rows:
        shape = f"({r['B']}, {r['T']}, {r['J']})"
        if r["status"] != "ok":
            lines.append(f"| {shape} | {r['provider']} | - | - | - | - | {r['status']} |")
            continue
        ref = authors.get((r["B"], r["T"], r["J"]))
        speedup = f"{ref / r['median_ms']:.3g}x" if ref and r["provider"] not in NOT_A_LOSS else "-"
        lines.append(
            f"| {shape} | {r['provider']} | {r['median_ms']:.3f} | [{r['p20_ms']:.3f}, {r['p80_ms']:.3f}] | "
            f"{r['peak_extra_mb']:.1f} | {speedup} | ok |"
        )
    with open(os.path.join(out_dir, "bench_gpu.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="+", default=DEFAULT_SHAPES, help="B,T,J triples")
    parser.add_argument("--providers", nargs="+", default=list(GPU_PROVIDERS), choices=list(GPU_PROVIDERS))
    parser.add_argument("--budget", type=float, default=1.0, help="seconds of timed passes per measurement")
    parser.add_argument("--out", default=os.environ.get("OUT") or os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        sys.exit("bench_gpu.py needs a CUDA GPU")
    os.makedirs(args.out, exist_ok=True)
    versions = _versions()
    print(f"{versions}; backends for cuda: {repose_ext.available_backends('cuda')}", flush=True)

    failed_check = {}
    for name in args.providers:
        if name in NOT_A_LOSS:
            continue
        try:
            check(GPU_PROVIDERS[name])
        except Exception as exc:  # noqa: BLE001 - reported in the table
            failed_check[name] = f"check failed: {_describe(exc)}"
            print(f"{name}: {failed_check[name]}", flush=True)

    rows = []
    for shape_text in args.shapes:
        shape = tuple(int(x) for x in shape_text.split(","))
        for name in args.providers:
            row = dict(op=OP, provider=name, B=shape[0], T=shape[1], J=shape[2], dtype="float32", **versions)
            if name in failed_check:
                row["status"] = failed_check[name]
            else:
                try:
                    loss, times, peak_mb = measure(GPU_PROVIDERS[name], shape, args.budget)
                    row.update(
                        median_ms=statistics.median(times), p20_ms=_quantile(times, 0.2), p80_ms=_quantile(times, 0.8),
                        reps=len(times), peak_extra_mb=peak_mb, loss=f"{loss:.8g}", status="ok",
                    )  # fmt: skip
                except torch.cuda.OutOfMemoryError:
                    row["status"] = "out of memory"
                except Exception as exc:  # noqa: BLE001 - one failing provider must not end the run
                    row["status"] = _describe(exc)
                torch.cuda.synchronize()
                torch.cuda.empty_cache()
            rows.append(row)
            print(f"{shape} {name}: {row.get('median_ms', '-')} ms, {row.get('peak_extra_mb', '-')} MB, {row['status']}",
                  flush=True)  # fmt: skip
            write_outputs(rows, args.out, versions)
    print(write_outputs(rows, args.out, versions))


if __name__ == "__main__":
    main()
