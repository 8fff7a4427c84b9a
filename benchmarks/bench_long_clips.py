"""Long clips on CPU: the dense pair loop vs the exact O(T log T) sorted sweep vs the authors' form.

    python benchmarks/bench_long_clips.py [--lengths 243 1024 4096 16384 65536] [--out docs/long_clips]

Every row is one forward+backward of spatial + temporal rank loss through the public API
(``backend="cpu"``) on (B, T, J) = (1, T, 17) clips, plus the training batch (32, 243, 17).
"dense" and "sorted" fix the algorithm of the temporal term (``REPOSE_CPU_ALGO``; the spatial
term's 17-joint series always take the dense lanes kernel), "auto" is the default choice, "authors" is the released code's construction
(``repose_ext.reference.authors_*``), run only where its pair tensors fit in ``--max-authors-gb``.
Providers are timed round-robin in one run, so their ratios are comparable on a shared machine;
each is checked against the others (and the authors' form where it runs) before timing.
``--crossover`` adds the per-op dense/sorted sweep over series lengths behind the automatic
choice. With matplotlib installed, ``--out`` also saves a log-log plot of time vs T.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

import torch

import repose_ext
from repose_ext import _cpu, reference

import results
from results import commit

J = 17
BATCH_CASE = (32, 243, 17)
ALGO_ENV = "REPOSE_CPU_ALGO"


@contextlib.contextmanager
def cpu_algorithm(name):
    """Fix repose::rank_hinge's CPU algorithm ("dense", "sorted") or leave it automatic (None)."""
    old = os.environ.get(ALGO_ENV)
    if name is None:
        os.environ.pop(ALGO_ENV, None)
    else:
        os.environ[ALGO_ENV] = name
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ALGO_ENV, None)
        else:
            os.environ[ALGO_ENV] = old


def fused_step(algo):
    """Public API, backend "cpu"; `algo` fixes the temporal term's algorithm (the spatial
    term's 17-joint series always take the dense lanes kernel, as "auto" does)."""

    def step(pred, gt):
        loss = repose_ext.spatial_depth_rank_loss(pred, gt, backend="cpu")
        with cpu_algorithm(algo):
            loss = loss + repose_ext.temporal_depth_rank_loss(pred, gt, backend="cpu")
            loss.backward()
        return loss

    return step


def authors_step(pred, gt):
    loss = reference.authors_spatial_rank_loss(pred, gt) + reference.authors_temporal_rank_loss(pred, gt)
    loss.backward()
    return loss


PROVIDERS = {"dense": fused_step("dense"), "sorted": fused_step("sorted"), "auto": fused_step(None), "authors": authors_step}


def authors_gb(b, t, j):
    """Rough peak of the authors' form: about 9 float32 tensors of every ordered pair."""
    return 9 * 4 * (b * j * t * t + b * t * j * j) / 2**30


def make_inputs(b, t, j, seed=0):
    gen = torch.Generator().manual_seed(seed)
    pred = torch.randn(b, t, j, 3, generator=gen).requires_grad_(True)
    gt = torch.randn(b, t, j, 3, generator=gen)
    return pred, gt


def run_once(provider, pred, gt):
    pred.grad = None
    t0 = time.perf_counter()
    loss = PROVIDERS[provider](pred, gt)
    return time.perf_counter() - t0, loss.detach(), pred.grad.detach().clone()


def check(outputs):
    """The providers' losses and gradients agree (fp32: the fused paths to 1e-5, authors' to 1e-4)."""
    base_loss, base_grad = outputs["dense"]
    for name, (loss, grad) in outputs.items():
        # Random inputs have no exact prediction ties, where the authors' maximum would differ.
        tol = dict(rtol=1e-4, atol=1e-6) if name == "authors" else dict(rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(loss, base_loss, **tol, msg=lambda m: f"{name} vs dense loss: {m}")
        torch.testing.assert_close(grad, base_grad, **tol, msg=lambda m: f"{name} vs dense grad: {m}")


def measure(shape, providers, budget_s):
    """Median forward+backward seconds per provider, timed round-robin after a checked warm-up."""
    pred, gt = make_inputs(*shape)
    first, outputs = {}, {}
    for p in providers:
        dt, loss, grad = run_once(p, pred, gt)
        first[p] = dt
        outputs[p] = (loss, grad)
    check(outputs)
    reps = {p: max(1, min(30, int(budget_s / max(first[p], 1e-6)))) for p in providers}
    times = {p: [] for p in providers}
    while any(len(times[p]) < reps[p] for p in providers):
        for p in providers:
            if len(times[p]) < reps[p]:
                times[p].append(run_once(p, pred, gt)[0])
    return {p: (statistics.median(times[p]), len(times[p])) for p in providers}


def crossover(lengths, budget_s):
    """Per-op seconds of dense vs sorted on (17, N) series, unweighted and weighted."""
    rows = []
    gen = torch.Generator().manual_seed(1)
    for n in lengths:
        p = torch.randn(J, n, generator=gen)
        g = torch.randn(J, n, generator=gen)
        w = torch.rand(J, n, generator=gen)
        row = {"n": n}
        for weighted in (False, True):
            args = (p, g, w if weighted else None, 0.0, -1, True, False)
            ops = {"dense": _cpu.rank_hinge_dense, "sorted": _cpu.rank_hinge_sorted}
            times = {k: [] for k in ops}
            for k, op in ops.items():
                op(*args)
            start = time.perf_counter()
            while time.perf_counter() - start < budget_s or min(len(v) for v in times.values()) < 3:
                for k, op in ops.items():
                    t0 = time.perf_counter()
                    op(*args)
                    times[k].append(time.perf_counter() - t0)
            key = "weighted" if weighted else "plain"
            row[key] = {k: statistics.median(v) for k, v in times.items()}
        rows.append(row)
        print(
            f"N={n:6d}  dense/sorted: plain {row['plain']['dense'] / row['plain']['sorted']:.2f}, "
            f"weighted {row['weighted']['dense'] / row['weighted']['sorted']:.2f}",
            flush=True,
        )
    return rows


def machine():
    return f"{results.machine()}, {repose_ext_isa()}"


def repose_ext_isa():
    flags = ""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    best = "avx512" if " avx512bw" in flags else ("avx2" if " avx2" in flags else "base")
    return f"kernels: {os.environ.get('REPOSE_CPU_ISA', best)}"


def fmt_ms(v):
    return "-" if v is None else (f"{v * 1e3:.3g}" if v * 1e3 < 100 else f"{v * 1e3:.0f}")


def write_outputs(out, rows, cross, header):
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    lines = [header, "", "| (B, T, J) | dense ms | sorted ms | auto ms | authors ms | dense / sorted | authors / auto |",
             "|---|---|---|---|---|---|---|"]
    for shape, res in rows:
        get = lambda p: res[p][0] if p in res else None  # noqa: E731
        d, s, a, au = get("dense"), get("sorted"), get("auto"), get("authors")
        lines.append(
            f"| {shape} | {fmt_ms(d)} | {fmt_ms(s)} | {fmt_ms(a)} | {fmt_ms(au) if au else 'does not fit'} | "
            f"{d / s:.2f} | {f'{au / a:.0f}' if au else '-'} |"
        )
    if cross:
        lines += ["", "Per-op crossover on (17, N) series (forward with gradient, no window): dense time / sorted time.",
                  "", "| N | plain | weighted |", "|---|---|---|"]
        for r in cross:
            lines.append(f"| {r['n']} | {r['plain']['dense'] / r['plain']['sorted']:.2f} | "
                         f"{r['weighted']['dense'] / r['weighted']['sorted']:.2f} |")
    with open(out + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    results.write_csv(out + ".csv", [results.row(__file__, "spatial+temporal fwd+bwd", shape, p, sec * 1e3, note=f"n={n}")
                             for shape, res in rows for p, (sec, n) in res.items()])
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)")
        return
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    styles = {"dense": "o-", "sorted": "s-", "authors": "^-"}
    for p, style in styles.items():
        pts = [(int(shape.split(",")[1]), res[p][0]) for shape, res in rows if shape.startswith("1,") and p in res]
        if pts:
            ax.plot(*zip(*pts), style, label={"dense": "dense pair loop", "sorted": "sorted O(T log T)",
                                              "authors": "authors' form"}[p])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("clip length T (B=1, J=17)")
    ax.set_ylabel("forward+backward, spatial+temporal (s)")
    ax.set_title("Rank losses on CPU, long clips")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.text(0.01, 0.01, header.split(";")[0][:110], fontsize=6)
    fig.tight_layout()
    fig.savefig(out + ".png", dpi=120)
    print(f"wrote {out}.md, {out}.csv, {out}.png")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", nargs="+", type=int, default=[243, 1024, 4096, 16384, 65536])
    ap.add_argument("--no-batch-case", action="store_true", help=f"skip (B, T, J) = {BATCH_CASE}")
    ap.add_argument("--budget", type=float, default=1.5, help="seconds of timing per provider and shape")
    ap.add_argument("--max-authors-gb", type=float, default=12.0, help="run the authors' form below this estimate")
    ap.add_argument("--crossover", nargs="*", type=int, default=None,
                    help="also time the ops on (17, N) series for these N (default list if none given)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--out", default=None, help="path stem for .md, .csv and .png results")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    shapes = [(1, t, J) for t in args.lengths] + ([] if args.no_batch_case else [BATCH_CASE])
    header = f"Machine: {machine()}; commit {commit()}"
    print(header)
    rows = []
    for shape in shapes:
        providers = ["dense", "sorted", "auto"]
        if authors_gb(*shape) <= args.max_authors_gb:
            providers.append("authors")
        res = measure(shape, providers, args.budget)
        spec = ",".join(map(str, shape))
        rows.append((spec, res))
        print(f"{spec:>10}: " + "  ".join(f"{p} {fmt_ms(res[p][0])} ms (n={res[p][1]})" for p in providers)
              + f"  dense/sorted {res['dense'][0] / res['sorted'][0]:.2f}", flush=True)
    cross = None
    if args.crossover is not None:
        cross = crossover(args.crossover or [256, 512, 1024, 1536, 2048, 3072, 4096, 8192], min(args.budget, 1.0))
    if args.out:
        write_outputs(args.out, rows, cross, header)


if __name__ == "__main__":
    main()
