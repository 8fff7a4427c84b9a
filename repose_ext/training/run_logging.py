"""What a run writes besides checkpoints: the per-epoch CSV log, TensorBoard scalars and the training-curve plots.

TensorBoard and matplotlib are in ``requirements.txt``; when one of them is not importable the run goes on
without that output and says so once.
"""

from __future__ import annotations

import csv
import io
import math
import os
import warnings
from typing import Any, Dict, List, Mapping, Optional

from .._atomic import atomic_write


def write_text_atomic(path: str, text: str) -> None:
    """Write a run's text file (log.csv, summary.json, ...) crash-safely (:func:`repose_ext._atomic.atomic_write`)."""
    atomic_write(path, lambda f: f.write(text), binary=False)


class CsvLog:
    """One CSV row per epoch; columns are fixed by the first row written (later keys must be a subset).

    The rows are kept in memory and the whole (small) file is rewritten atomically after each epoch, so a kill
    never leaves a half-written or empty log. On resume the rows stored in the checkpoint are the truth (rows of
    later epochs, written after that checkpoint, are dropped); a checkpoint without rows falls back to the file,
    read leniently (an empty or damaged file starts a new log).

    Args:
        path: the CSV file.
        resume_epoch: when resuming, the checkpoint's epoch; None starts a new file.
        rows: the log rows stored in the checkpoint to resume from (None: read the file).
    """

    def __init__(self, path: str, resume_epoch: Optional[int] = None, rows: Optional[List[Dict[str, Any]]] = None):
        self.path = path
        self.rows: List[Dict[str, Any]] = []
        self.fields: Optional[List[str]] = None
        if resume_epoch is None:
            if os.path.exists(path):
                os.remove(path)
            return
        if rows is None:
            rows = self._read_leniently()
        self.rows = [dict(r) for r in rows if _epoch(r) is not None and _epoch(r) <= resume_epoch]
        if self.rows:
            self.fields = list(self.rows[0])
        self._write_all()

    def _read_leniently(self) -> List[Dict[str, Any]]:
        try:
            with open(self.path, newline="", encoding="utf-8") as f:
                return list(csv.DictReader(f))
        except (OSError, csv.Error, UnicodeDecodeError):
            return []

    def _write_all(self) -> None:
        out = io.StringIO(newline="")
        if self.fields is not None:
            writer = csv.DictWriter(out, fieldnames=self.fields)
            writer.writeheader()
            writer.writerows({k: _cell(r.get(k)) for k in self.fields} for r in self.rows)
        write_text_atomic(self.path, out.getvalue())

    def append(self, row: Mapping[str, Any]) -> None:
        """Add a row (missing keys are written empty) and rewrite the file."""
        if self.fields is None:
            self.fields = list(row)
        unknown = [k for k in row if k not in self.fields]
        if unknown:
            raise ValueError(f"row has columns {unknown} not in the log's header {self.fields}")
        self.rows.append({k: _cell(row.get(k)) for k in self.fields})
        self._write_all()


def _epoch(row: Mapping[str, Any]) -> Optional[int]:
    try:
        return int(row.get("epoch"))
    except (TypeError, ValueError):
        return None


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def read_csv(path: str) -> List[Dict[str, str]]:
    """The rows of a CSV log as dicts of strings."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


class TensorBoardLog:
    """Thin wrapper around ``torch.utils.tensorboard.SummaryWriter`` that does nothing when it is unavailable.

    Args:
        folder: event-file folder.
        purge_step: on resume, events at or after this global step are discarded (they were not checkpointed).
    """

    def __init__(self, folder: str, purge_step: Optional[int] = None):
        self.writer = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # tensorboard not installed
            warnings.warn(f"TensorBoard logging skipped: {exc}. Install it with `pip install tensorboard`.",
                          stacklevel=2)
            return
        self.writer = SummaryWriter(folder, purge_step=purge_step)

    def scalars(self, values: Mapping[str, float], step: int, prefix: str = "") -> None:
        """Write finite scalar values at ``step`` under ``prefix/``."""
        if self.writer is None:
            return
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(f"{prefix}{key}", value, step)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _series(rows: List[Dict[str, str]], key: str):
    xs, ys = [], []
    for r in rows:
        v = r.get(key, "")
        if v not in ("", None):
            xs.append(int(r["epoch"]))
            ys.append(float(v))
    return xs, ys


def plot_curves(csv_path: str, png_path: str) -> Optional[str]:
    """Plot the training loss terms and the evaluation metrics of a run's CSV log.

    Args:
        csv_path: the run's ``log.csv``.
        png_path: where to write the figure.

    Returns:
        ``png_path``, or None when matplotlib is missing (a warning says so) or the log is empty.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        warnings.warn(f"plots skipped: {exc}. Install matplotlib with `pip install matplotlib`.", stacklevel=2)
        return None
    rows = read_csv(csv_path)
    if not rows:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    ax = axes[0]
    for key in ("train_loss", "train_mpjpe", "train_n_mpjpe", "train_velocity", "train_spatial_rank",
                "train_temporal_rank"):
        xs, ys = _series(rows, key)
        if xs and all(y > 0 for y in ys):
            ax.plot(xs, ys, marker=".", label=key.replace("train_", ""))
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_title("training loss terms (unweighted; loss = weighted sum)")
    ax.legend(fontsize=8)
    ax = axes[1]
    for key in ("eval_mpjpe", "eval_p_mpjpe", "eval_mpjpe_occluded", "eval_mpjpe_visible"):
        xs, ys = _series(rows, key)
        if xs:
            ax.plot(xs, ys, marker="o", label=key.replace("eval_", ""))
    ax.set_xlabel("epoch")
    ax.set_ylabel("mm")
    ax.set_title("evaluation errors")
    ax.legend(fontsize=8)
    ax = axes[2]
    for key in ("eval_doa_spatial", "eval_doa_temporal", "eval_pck", "eval_auc"):
        xs, ys = _series(rows, key)
        if xs:
            scale = 0.01 if key in ("eval_pck", "eval_auc") else 1.0
            ax.plot(xs, [y * scale for y in ys], marker="o", label=key.replace("eval_", "") +
                    (" / 100" if scale != 1.0 else ""))
    ax.set_xlabel("epoch")
    ax.set_title("depth-order accuracy (fraction)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path
