"""benchmarks/compare_builds.py: two builds timed in alternating processes, one row per build in the CSV schema."""

import csv
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_compare_builds_times_both_builds_and_writes_the_schema(tmp_path):
    out_csv = tmp_path / "cmp.csv"
    cmd = [sys.executable, os.path.join(ROOT, "benchmarks", "compare_builds.py"), ROOT, ROOT, "--rounds", "1",
           "--shapes", "2,8,17", "--budget", "0.05", "--providers", "fused-cpu", "--csv", str(out_csv)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    table = [line for line in out.stdout.splitlines() if line.startswith("| 2,8,17 | fused-cpu |")]
    assert len(table) == 1
    ratio = float(table[0].rstrip(" |").split("|")[-1])
    assert ratio > 0
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    import results

    with open(out_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0].keys()) == results.FIELDS
    assert [r["backend"] for r in rows] == ["fused-cpu [A]", "fused-cpu [B]"]
    assert all(float(r["median_ms"]) > 0 and r["shape"] == "2,8,17" and r["threads"] == "1" for r in rows)


def test_compare_builds_names_a_folder_that_is_not_a_checkout(tmp_path):
    cmd = [sys.executable, os.path.join(ROOT, "benchmarks", "compare_builds.py"), str(tmp_path), ROOT]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert str(tmp_path) in out.stderr and "Traceback" not in out.stderr
