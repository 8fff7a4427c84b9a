"""Evaluation of a lifter on held-out clips: flip test-time averaging and every metric of a run, per action.

Two protocols (chosen by the dataset, see :data:`repose_ext.training.datasets.PROTOCOLS`):

* ``"h36m"`` (H36M pickle, VideoPose3D files, the embedded mocap data): MPJPE and P-MPJPE by MotionBERT's protocol
  (:class:`repose_ext.evaluation.H36MProtocol`: millimetres via the 2.5D factor, root-relative, per-frame averaging
  over overlapping clips, S9 block list, per-action means). The extra columns use the same millimetre poses and the
  same per-frame averaging: MPJPE over occluded joints and over visible joints (when the data flags occlusion),
  and depth-order accuracy. The "Average" row is the unweighted mean over actions for every column.
* ``"mpi_inf_3dhp"``: valid frames only, root-relative (root = the skeleton's root), MPJPE (17 joints), P-MPJPE,
  PCK@150 mm and AUC (0:5:150 mm) on the 14 joints of the official evaluation; one row per test sequence and an
  "All" row pooled over every valid frame (the 3DHP convention).

Depth-order accuracy (the quantity the RePOSE losses optimise; :func:`repose_ext.metrics.spatial_depth_order_accuracy`):
*spatial* = fraction of joint pairs within a frame, *temporal* = fraction of frame pairs (all pairs of a clip) for
each joint, whose predicted depth order matches the ground truth. It is computed on root-relative depths in mm
(so it does not depend on the per-frame normalisation); pairs whose GT depths differ by at most
``depth_order_tolerance_mm`` are not scored; counts are pooled over clips (a frame in two overlapping clips
counts twice). Temporal accuracy depends on the clip length T: compare runs with equal T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch

from ..data.clips import flip_pose
from ..evaluation import S9_BLOCK_LIST, H36MProtocol, denormalize_to_mm, strip_camera_suffix
from ..metrics import (
    AUC_THRESHOLDS_MM,
    PCK_JOINTS_3DHP,
    PCK_JOINTS_H36M,
    PCK_THRESHOLD_MM,
    p_mpjpe,
    spatial_depth_order_accuracy,
    temporal_depth_order_accuracy,
)

#: Column key -> (header, format) of the printed table, in order.
COLUMNS = {
    "mpjpe": ("MPJPE", "{:8.2f}"),
    "p_mpjpe": ("P-MPJPE", "{:8.2f}"),
    "mpjpe_occluded": ("MPJPE-occ", "{:9.2f}"),
    "mpjpe_visible": ("MPJPE-vis", "{:9.2f}"),
    "pck": ("PCK", "{:6.2f}"),
    "auc": ("AUC", "{:6.2f}"),
    "doa_spatial": ("DOA-spatial", "{:11.4f}"),
    "doa_temporal": ("DOA-temporal", "{:12.4f}"),
    "frames": ("frames", "{:7d}"),
}


@torch.no_grad()
def predict(model: torch.nn.Module, inputs: torch.Tensor, left: Sequence[int], right: Sequence[int],
            flip: bool = True) -> torch.Tensor:
    """Lift a batch, optionally averaged with the un-flipped prediction of the flipped input (MotionBERT TTA).

    Args:
        model: the lifter (in eval mode).
        inputs: 2D clips (x, y, confidence) in normalised image coordinates.
        left, right: the skeleton's flip lists.
        flip: average with ``flip(model(flip(inputs)))``.

    Returns:
        Predicted clips, float32.

    Shape:
        inputs: (B, T, J, 3). Returns (B, T, J, 3).
    """
    out = model(inputs).float()
    if flip:
        out_flipped = model(flip_pose(inputs, left, right)).float()
        out = (out + flip_pose(out_flipped, left, right)) * 0.5
    return out


@dataclass
class EvalResult:
    """Metrics of one evaluation. Distances in mm, PCK/AUC in percent, depth-order accuracies in [0, 1].

    Attributes:
        protocol: "h36m" or "mpi_inf_3dhp".
        summary: metric -> value of the last table row ("Average" / "All"); NaN where not applicable.
        per_action: action (H36M) or sequence (3DHP) -> metric -> value.
        columns: the metric keys shown in the table.
        num_clips: clips evaluated (block-listed clips excluded).
    """

    protocol: str
    summary: Dict[str, float]
    per_action: Dict[str, Dict[str, float]]
    columns: List[str]
    num_clips: int
    notes: List[str] = field(default_factory=list)

    def table(self) -> str:
        """The per-action table as text, with the summary row last and notes below."""
        label = "Action" if self.protocol == "h36m" else "Sequence"
        last = "Average" if self.protocol == "h36m" else "All"
        width = max([len(label), len(last)] + [len(a) for a in self.per_action])
        heads = [COLUMNS[c][0] for c in self.columns]
        widths = [len(COLUMNS[c][1].format(0)) for c in self.columns]
        widths = [max(w, len(h)) for w, h in zip(widths, heads)]
        header = f"{label:<{width}}  " + "  ".join(f"{h:>{w}}" for h, w in zip(heads, widths))
        rule = "-" * len(header)

        def row(name: str, values: Mapping[str, float]) -> str:
            cells = []
            for c, w in zip(self.columns, widths):
                v = values.get(c, float("nan"))
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    cells.append(f"{'-':>{w}}")
                else:
                    cells.append(f"{COLUMNS[c][1].format(int(v) if c == 'frames' else v):>{w}}")
            return f"{name:<{width}}  " + "  ".join(cells)

        lines = [header, rule] + [row(a, r) for a, r in self.per_action.items()] + [rule, row(last, self.summary)]
        lines += [f"  {note}" for note in self.notes]
        return "\n".join(lines)

    def as_dict(self) -> Dict[str, Any]:
        """Plain Python data (for checkpoints loaded with ``weights_only=True``, and JSON); NaN becomes None."""
        def number(v):
            if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
                return int(v)
            v = float(v)
            return None if math.isnan(v) else v

        def clean(d):
            return {str(k): number(v) for k, v in d.items()}

        return {"protocol": self.protocol, "summary": clean(self.summary),
                "per_action": {str(a): clean(r) for a, r in self.per_action.items()},
                "num_clips": int(self.num_clips)}


class _FrameStore:
    """Per-frame sums over the clips covering each frame of one video (MotionBERT's buffered ``+=``)."""

    def __init__(self, action: str, num_joints: int):
        self.action = action
        self.joint_err = np.zeros((0, num_joints))
        self.pa_err = np.zeros(0)
        self.count = np.zeros(0)
        self.occluded = np.zeros((0, num_joints), dtype=bool)
        self.valid = np.zeros(0, dtype=bool)

    def _grow(self, size: int) -> None:
        if size > self.count.shape[0]:
            extra = max(size, 2 * self.count.shape[0]) - self.count.shape[0]  # amortised: videos arrive clip by clip
            self.joint_err = np.concatenate([self.joint_err, np.zeros((extra, self.joint_err.shape[1]))])
            self.pa_err = np.concatenate([self.pa_err, np.zeros(extra)])
            self.count = np.concatenate([self.count, np.zeros(extra)])
            self.occluded = np.concatenate([self.occluded, np.zeros((extra, self.occluded.shape[1]), dtype=bool)])
            self.valid = np.concatenate([self.valid, np.zeros(extra, dtype=bool)])

    def add(self, frames, joint_err, pa_err, occluded, valid) -> None:
        self._grow(int(frames.max()) + 1)
        self.joint_err[frames] += joint_err
        self.pa_err[frames] += pa_err
        self.count[frames] += 1
        if occluded is not None:
            self.occluded[frames] |= occluded
        self.valid[frames] |= valid

    def frames(self):
        """(joint errors (F, J), P-MPJPE (F,), occluded (F, J)) of the covered, valid frames."""
        keep = (self.count > 0) & self.valid
        c = self.count[keep]
        return self.joint_err[keep] / c[:, None], self.pa_err[keep] / c, self.occluded[keep]


class PoseEvaluator:
    """Accumulates predicted clips and computes :class:`EvalResult`.

    Args:
        skeleton: joint layout of the data (root, and the PCK joint subset for 3DHP).
        protocol: "h36m" or "mpi_inf_3dhp".
        depth_order_tolerance_mm: GT depth differences at or below this are not scored by the depth-order accuracy.
        block_list: sources skipped by the "h36m" protocol (default MotionBERT's S9 list).
    """

    def __init__(self, skeleton, protocol: str = "h36m", depth_order_tolerance_mm: float = 0.0,
                 block_list: Sequence[str] = S9_BLOCK_LIST):
        if protocol not in ("h36m", "mpi_inf_3dhp"):
            raise ValueError(f"protocol must be 'h36m' or 'mpi_inf_3dhp'; got {protocol!r}")
        self.skeleton = skeleton
        self.protocol = protocol
        self.root = int(skeleton.root)
        self.tolerance = float(depth_order_tolerance_mm)
        self.block_list = frozenset(block_list) if protocol == "h36m" else frozenset()
        self.h36m = H36MProtocol(block_list=self.block_list, root_joint=self.root) if protocol == "h36m" else None
        self.pck_joints = PCK_JOINTS_3DHP if skeleton.name == "mpi_inf_3dhp" else PCK_JOINTS_H36M
        self._stores: Dict[str, _FrameStore] = {}
        self._order: Dict[str, np.ndarray] = {}  # action -> [spatial correct, spatial scored, temporal c, t s]
        self._num_clips = 0
        self._has_occlusion = False

    @torch.no_grad()
    def update(self, pred: torch.Tensor, batch: Mapping[str, Any]) -> None:
        """Add a batch of predictions (normalised coordinates, after flip averaging).

        Args:
            pred: predicted clips.
            batch: the collated clips (``target``, ``factor``, ``res``, ``source``, ``action``, ``frames``, and
                optionally ``occluded`` (B, T, J) and ``valid`` (B, T)).

        Shape:
            pred: (B, T, J, 3).
        """
        pred = pred.detach().float().cpu()
        if self.h36m is not None:
            self.h36m.update(pred, batch)
        pred_mm = denormalize_to_mm(pred, batch["res"], batch["factor"])
        gt_mm = denormalize_to_mm(batch["target"], batch["res"], batch["factor"])
        r = self.root
        pred_mm = pred_mm - pred_mm[:, :, r:r + 1]
        gt_mm = gt_mm - gt_mm[:, :, r:r + 1]
        joint_err = torch.linalg.vector_norm(pred_mm - gt_mm, dim=-1).numpy()  # (B, T, J)
        if self.h36m is None:
            pa_err = p_mpjpe(pred_mm, gt_mm, reduction="none").numpy()  # (B, T)
        else:  # the H36M protocol computes P-MPJPE itself (one SVD per frame is the costly part)
            pa_err = np.zeros(pred_mm.shape[:2])
        s_correct, s_scored = spatial_depth_order_accuracy(pred_mm, gt_mm, self.tolerance, reduction="none",
                                                           return_counts=True)  # (B, T)
        frames = np.asarray(batch["frames"].cpu(), dtype=np.int64)
        occluded = batch.get("occluded")
        if occluded is not None:
            self._has_occlusion = True
            occluded = np.asarray(occluded.cpu(), dtype=bool)
        valid = batch.get("valid")
        valid = np.ones(frames.shape, dtype=bool) if valid is None else np.asarray(valid.cpu(), dtype=bool)

        for i, (source, action) in enumerate(zip(batch["source"], batch["action"])):
            if strip_camera_suffix(source) in self.block_list:
                continue
            self._num_clips += 1
            store = self._stores.get(source)
            if store is None:
                store = self._stores[source] = _FrameStore(action, pred.shape[2])
            store.add(frames[i], joint_err[i], pa_err[i], None if occluded is None else occluded[i], valid[i])
            keep = torch.from_numpy(valid[i])
            counts = self._order.setdefault(action, np.zeros(4, dtype=np.int64))
            counts[0] += int(s_correct[i][keep].sum())
            counts[1] += int(s_scored[i][keep].sum())
            if int(keep.sum()) >= 2:
                t_correct, t_scored = temporal_depth_order_accuracy(
                    pred_mm[i][keep], gt_mm[i][keep], self.tolerance, reduction="mean", return_counts=True)
                counts[2] += int(t_correct)
                counts[3] += int(t_scored)

    def _group_metrics(self, stores: List[_FrameStore], counts: np.ndarray) -> Dict[str, float]:
        parts = [s.frames() for s in stores]
        err = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, 0))
        pa = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0)
        occ = np.concatenate([p[2] for p in parts]) if parts else np.zeros((0, 0), dtype=bool)
        nan = float("nan")

        def mean(x):
            return float(x.mean()) if x.size else nan

        row = {
            "mpjpe": mean(err.mean(axis=1)) if err.size else nan,
            "p_mpjpe": mean(pa) if self.h36m is None else nan,  # h36m: filled from H36MProtocol
            "mpjpe_occluded": mean(err[occ]) if self._has_occlusion else nan,
            "mpjpe_visible": mean(err[~occ]) if self._has_occlusion else nan,
            "doa_spatial": counts[0] / counts[1] if counts[1] else nan,
            "doa_temporal": counts[2] / counts[3] if counts[3] else nan,
            "frames": int(err.shape[0]),
        }
        if self.protocol == "mpi_inf_3dhp" and err.size:
            # Same definitions as repose_ext.metrics.pck / auc (strict <), on the per-frame averaged joint errors.
            e = err[:, list(self.pck_joints)]
            row["pck"] = float((e < PCK_THRESHOLD_MM).mean() * 100.0)
            row["auc"] = float(np.mean([(e < t).mean() for t in AUC_THRESHOLDS_MM]) * 100.0)
        return row

    def compute(self) -> EvalResult:
        """The metrics of everything added so far.

        Raises:
            ValueError: nothing was scored.
        """
        if not self._stores:
            raise ValueError("nothing to evaluate: update() was not called with clips outside the block list")
        by_action: Dict[str, List[_FrameStore]] = {}
        for store in self._stores.values():
            by_action.setdefault(store.action, []).append(store)
        per_action = {a: self._group_metrics(by_action[a], self._order.get(a, np.zeros(4, np.int64)))
                      for a in sorted(by_action)}
        notes = []
        if self.protocol == "h36m":
            official = self.h36m.compute()
            for action, row in per_action.items():
                if action in official.per_action:  # MotionBERT's numbers for the two headline metrics
                    row["mpjpe"] = official.per_action[action]["mpjpe"]
                    row["p_mpjpe"] = official.per_action[action]["p_mpjpe"]
            keys = [k for k in COLUMNS if k not in ("pck", "auc", "frames")]
            summary = {k: float(np.nanmean([r[k] for r in per_action.values()]))
                       if any(not math.isnan(r[k]) for r in per_action.values()) else float("nan") for k in keys}
            summary["mpjpe"], summary["p_mpjpe"] = official.mpjpe, official.p_mpjpe
            summary["frames"] = int(sum(r["frames"] for r in per_action.values()))
            columns = ["mpjpe", "p_mpjpe"]
            if self._has_occlusion:
                columns += ["mpjpe_occluded", "mpjpe_visible"]
            columns += ["doa_spatial", "doa_temporal", "frames"]
            notes.append("MPJPE/P-MPJPE: MotionBERT protocol (mm, per-frame averaging, mean over actions); "
                         "other columns: mean over actions.")
        else:
            total = np.sum([c for c in self._order.values()], axis=0) if self._order else np.zeros(4, np.int64)
            summary = self._group_metrics(list(self._stores.values()), total)
            columns = ["mpjpe", "p_mpjpe", "pck", "auc", "doa_spatial", "doa_temporal", "frames"]
            notes.append("valid frames only; PCK@150mm and AUC on 14 joints; 'All' pools every valid frame.")
        notes.append("DOA = depth-order accuracy on root-relative mm depths (spatial: joint pairs per frame; "
                     "temporal: all frame pairs of a clip per joint).")
        return EvalResult(protocol=self.protocol, summary=summary, per_action=per_action, columns=columns,
                          num_clips=self._num_clips, notes=notes)


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader, skeleton, protocol: str, *, flip: bool = True, rootrel: bool = True,
             device: torch.device = torch.device("cpu"), autocast_dtype: Optional[torch.dtype] = None,
             depth_order_tolerance_mm: float = 0.0, max_clips: Optional[int] = None, progress: bool = False,
             description: str = "eval") -> EvalResult:
    """Predict every clip of ``loader`` and compute the metrics.

    Args:
        model: the lifter (unwrapped, not DDP); switched to eval mode and back.
        loader: DataLoader of evaluation clips (not shuffled).
        skeleton: the data's skeleton (flip lists, root).
        protocol: "h36m" or "mpi_inf_3dhp".
        flip: flip test-time averaging.
        rootrel: the model was trained on root-relative targets: its root prediction is set to 0 (MotionBERT).
        device: where the model runs.
        autocast_dtype: run the model under CUDA autocast with this dtype (None: no autocast).
        depth_order_tolerance_mm: see :class:`PoseEvaluator`.
        max_clips: evaluate only the first clips of the loader (quick checks).
        progress: show a tqdm bar.
        description: label of the progress bar.

    Returns:
        :class:`EvalResult`.
    """
    from tqdm.auto import tqdm

    was_training = model.training
    model.eval()
    evaluator = PoseEvaluator(skeleton, protocol, depth_order_tolerance_mm)
    seen = 0
    try:
        for batch in tqdm(loader, desc=description, leave=False, disable=not progress, dynamic_ncols=True):
            if max_clips is not None and seen >= max_clips:
                break
            if max_clips is not None and seen + len(batch["source"]) > max_clips:
                n = max_clips - seen
                batch = {k: v[:n] for k, v in batch.items()}
            inputs = batch["input"].to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                pred = predict(model, inputs, skeleton.left, skeleton.right, flip)
            if rootrel:
                pred[:, :, skeleton.root] = 0
            evaluator.update(pred, batch)
            seen += len(batch["source"])
    finally:
        model.train(was_training)
    return evaluator.compute()
