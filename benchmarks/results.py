"""One CSV schema for every benchmark script: what was measured, on what, when.

Every script that writes results (``--csv PATH``, or the .csv beside its --out) writes rows with exactly
:data:`FIELDS`: the git commit, torch version, device (CPU model, or GPU name), torch threads, UTC timestamp,
the script, what was timed (``op``), the shape, the backend or variant, the median in milliseconds, the extra
peak memory in MB (empty when not measured) and a free-form note (other statistics, status).
"""

from __future__ import annotations

import csv
import datetime
import os
import platform
import subprocess
from typing import Dict, Iterable, Optional

import torch

FIELDS = ["commit", "torch", "device", "threads", "timestamp", "script", "op", "shape", "backend", "median_ms",
          "extra_mb", "note"]


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what the platform module says."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return name


def machine() -> str:
    """One line for table headers: CPU model, cores, the GPU if there is one, torch version and threads."""
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cpu_model()}, {os.cpu_count()} cores{gpu}, torch {torch.__version__}, {torch.get_num_threads()} threads"


def commit() -> str:
    """Short hash of HEAD, or "unknown" outside a git checkout."""
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], text=True,
                                       stderr=subprocess.DEVNULL).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def row(script: str, op: str, shape, backend: str, median_ms: float, extra_mb: Optional[float] = None,
        note: str = "", device: str = "cpu") -> Dict[str, str]:
    """One result row; ``shape`` is a tuple or a string, ``device`` "cpu" or a CUDA device."""
    name = cpu_model() if device == "cpu" else torch.cuda.get_device_name(device)
    return {
        "commit": commit(), "torch": torch.__version__, "device": name, "threads": str(torch.get_num_threads()),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "script": os.path.basename(script), "op": op,
        "shape": shape if isinstance(shape, str) else ",".join(map(str, shape)), "backend": backend,
        "median_ms": "" if median_ms is None else f"{median_ms:.4f}",
        "extra_mb": "" if extra_mb is None else f"{extra_mb:.1f}", "note": note,
    }


def write_csv(path: str, rows: Iterable[Dict[str, str]]) -> None:
    """Write ``rows`` (from :func:`row`) to ``path`` through a temporary file (a cut-short run leaves the old file)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
