"""Evaluation of lifters, in one place: the MotionBERT Human3.6M protocol and the evaluator of training runs.

**The protocol** (:class:`H36MProtocol`, :func:`evaluate_h36m`; MotionBERT ``train.py evaluate``, identical in
RePOSE). Steps, applied to clips that follow the sample contract of :mod:`repose_ext.data`:

1. Denormalise each predicted and ground-truth clip from normalised image coordinates with the clip's camera
   resolution (w, h): ``px = (n + [1, h/w, 0]) * w / 2``, then multiply by the per-frame 2.5D factor (mm per px).
2. Make both root-relative per frame (joint 0) and compute per-frame MPJPE and P-MPJPE (mm).
3. Skip clips whose source, without its camera suffix ``_ca_XX``, is in the S9 block list
   (:data:`S9_BLOCK_LIST`: three S9 videos with known ground-truth problems).
4. A frame covered by several clips gets the mean of their errors; frames no clip covers are not scored.
5. Average frames per action, then take the unweighted mean over the actions (15 for H36M).

Faithfulness detail: MotionBERT accumulates with ``e_all[frame_list] += err``; when a clip lists the same frame
more than once (short videos resampled to 243 frames), numpy keeps only the last occurrence and counts the clip
once for that frame. :class:`H36MProtocol` reproduces this.

**The evaluator** (:class:`PoseEvaluator`, :func:`evaluate`, used by the trainer): a lifter on held-out clips,
with flip test-time averaging and every metric of a run, per action. Two protocols (chosen by the dataset, see :data:`repose_ext.training.datasets.PROTOCOLS`):

* ``"h36m"`` (H36M pickle, VideoPose3D files, the embedded mocap data): MPJPE and P-MPJPE by MotionBERT's protocol
  (:class:`H36MProtocol`: millimetres via the 2.5D factor, root-relative, per-frame averaging
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

import dataclasses
import math
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from .data.clips import flip_pose
from .data.normalization import normalized_to_millimetres
from .metrics import (
    AUC_THRESHOLDS_MM,
    PCK_JOINTS_3DHP,
    PCK_JOINTS_H36M,
    PCK_THRESHOLD_MM,
    mpjpe,
    p_mpjpe,
    spatial_depth_order_accuracy,
    temporal_depth_order_accuracy,
)
from ._shapes import shape_str as _shape

#: Sources (camera suffix removed) that MotionBERT's protocol skips.
S9_BLOCK_LIST = ("s_09_act_05_subact_02", "s_09_act_10_subact_02", "s_09_act_13_subact_01")

_CAMERA_SUFFIX = re.compile(r"_ca_\d+$")



def strip_camera_suffix(source: str) -> str:
    """``"s_09_act_05_subact_02_ca_01"`` -> ``"s_09_act_05_subact_02"`` (unchanged if there is no suffix)."""
    return _CAMERA_SUFFIX.sub("", source)


def denormalize_to_mm(poses: torch.Tensor, res: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Normalised image coordinates -> pixels (x, y) and pixel-scaled depth (z) -> millimetres.

    ``x_px = (x_n + 1) * w / 2``, ``y_px = (y_n + h / w) * w / 2``, ``z_px = z_n * w / 2``, then all three times
    the per-frame 2.5D factor.

    Args:
        poses: normalised poses.
        res: camera resolution (w, h) of each clip.
        factor: 2.5D factor (mm per px) of each frame.

    Returns:
        Poses in mm (float64).

    Shape:
        poses: (B, T, J, 3); res: (B, 2); factor: (B, T). Returns (B, T, J, 3).
    """
    poses = torch.as_tensor(poses).double()
    res = torch.as_tensor(res).double().to(poses.device)
    factor = torch.as_tensor(factor).double().to(poses.device)
    if poses.dim() != 4 or poses.shape[-1] != 3:
        raise ValueError(f"poses must have shape (B, T, J, 3); got {_shape(poses)}")
    b, t = poses.shape[:2]
    if tuple(res.shape) != (b, 2):
        raise ValueError(f"res must have shape (B, 2) = ({b}, 2); got {_shape(res)}")
    if tuple(factor.shape) != (b, t):
        raise ValueError(f"factor must have shape (B, T) = ({b}, {t}); got {_shape(factor)}")
    # the one conversion of repose_ext.data.normalization, with (B, 1, 1) sizes and a joint axis on the factor
    return normalized_to_millimetres(poses, res[:, 0].view(b, 1, 1), res[:, 1].view(b, 1, 1), factor.view(b, t, 1))


@dataclasses.dataclass
class H36MResult:
    """Result of the H36M protocol. Errors in mm.

    Attributes:
        mpjpe: mean over actions of the per-action MPJPE (Protocol 1).
        p_mpjpe: same for P-MPJPE (Protocol 2).
        per_action: action -> {"mpjpe", "p_mpjpe", "frames"} (frames = number of scored frames).
        num_frames: scored frames in total.
        num_clips: clips evaluated.
        num_skipped_clips: clips skipped by the block list.
    """

    mpjpe: float
    p_mpjpe: float
    per_action: Dict[str, Dict[str, float]]
    num_frames: int
    num_clips: int
    num_skipped_clips: int

    def table(self) -> str:
        """Per-action table as plain text, with the mean over actions in the last row."""
        width = max([len("Action"), len("Average")] + [len(a) for a in self.per_action])
        lines = [f"{'Action':<{width}}  {'MPJPE':>8}  {'P-MPJPE':>8}  {'frames':>8}"]
        lines.append("-" * len(lines[0]))
        for action, row in self.per_action.items():
            lines.append(f"{action:<{width}}  {row['mpjpe']:8.2f}  {row['p_mpjpe']:8.2f}  {int(row['frames']):8d}")
        lines.append("-" * len(lines[0]))
        lines.append(f"{'Average':<{width}}  {self.mpjpe:8.2f}  {self.p_mpjpe:8.2f}  {self.num_frames:8d}")
        return "\n".join(lines)

    def as_dict(self) -> Dict[str, Any]:
        """Plain-data copy (for JSON / checkpoints)."""
        return dataclasses.asdict(self)


class _FrameStore:
    """Per-frame sums (float fields) and ors (bool fields) of one video over the clips that cover each frame,
    with a count of the clips. Buffered fancy-index updates, as MotionBERT: a frame repeated within one clip
    counts once.

    Args:
        action: the video's action.
        fields: name -> (shape of one frame's value, dtype); each becomes an attribute of (frames,) + shape.
    """

    def __init__(self, action: str, **fields):
        self.action = action
        self._names = list(fields)
        for name, (shape, dtype) in fields.items():
            setattr(self, name, np.zeros((0,) + tuple(shape), dtype=dtype))
        self.count = np.zeros(0)

    def _grow(self, size: int) -> None:
        if size > self.count.shape[0]:
            extra = max(size, 2 * self.count.shape[0]) - self.count.shape[0]  # amortised: videos arrive clip by clip
            for name in self._names + ["count"]:
                a = getattr(self, name)
                setattr(self, name, np.concatenate([a, np.zeros((extra,) + a.shape[1:], dtype=a.dtype)]))

    def add(self, frames: np.ndarray, **values) -> None:
        """Add one clip's values at its frame indices (a value of None leaves that field alone)."""
        self._grow(int(frames.max()) + 1)
        for name, v in values.items():
            if v is None:
                continue
            a = getattr(self, name)
            if a.dtype == bool:
                a[frames] |= v
            else:
                a[frames] += v
        self.count[frames] += 1


class H36MProtocol:
    """Accumulates clips batch by batch and computes the MotionBERT H36M numbers (memory: 3 floats per frame).

    Args:
        block_list: sources (camera suffix removed) to skip; default the S9 block list.
        root_joint: joint subtracted to make poses root-relative.

    Example::

        protocol = H36MProtocol()
        for batch in test_loader:
            protocol.update(model(batch["input"]), batch)
        result = protocol.compute()
        print(result.table())
    """

    def __init__(self, block_list: Iterable[str] = S9_BLOCK_LIST, root_joint: int = 0):
        self.block_list = frozenset(block_list)
        self.root_joint = int(root_joint)
        self.reset()

    def reset(self) -> None:
        """Forget all accumulated clips."""
        self._sources: Dict[str, _FrameStore] = {}
        self._num_clips = 0
        self._num_skipped = 0

    @torch.no_grad()
    def update(self, pred: torch.Tensor, batch: Optional[Mapping[str, Any]] = None, **fields: Any) -> None:
        """Add a batch of predicted clips.

        Args:
            pred: predictions in normalised coordinates (the model's output, after flip averaging if used).
            batch: a collated batch of the clip contract with ``"target"``, ``"factor"``, ``"res"``,
                ``"source"``, ``"action"`` and ``"frames"``; or pass these as keyword arguments.

        Shape:
            pred, target: (B, T, J, 3); factor: (B, T); res: (B, 2); frames: (B, T) int; source, action: B strings.
        """
        data = dict(batch or {})
        data.update(fields)
        missing = [k for k in ("target", "factor", "res", "source", "action", "frames") if k not in data]
        if missing:
            raise KeyError(f"H36MProtocol.update needs clip fields {missing} (in batch or as keyword arguments)")
        pred = torch.as_tensor(pred).detach().cpu()
        target = torch.as_tensor(data["target"]).detach().cpu()
        if pred.dim() != 4 or pred.shape[-1] != 3:
            raise ValueError(f"pred must have shape (B, T, J, 3); got {_shape(pred)}")
        if target.shape != pred.shape:
            raise ValueError(f"target must have the shape of pred {_shape(pred)}; got {_shape(target)}")
        b, t = pred.shape[:2]
        frames = np.asarray(torch.as_tensor(data["frames"]).cpu(), dtype=np.int64)
        if frames.shape != (b, t):
            raise ValueError(f"frames must have shape (B, T) = ({b}, {t}); got {frames.shape}")
        if frames.size and frames.min() < 0:
            raise ValueError("frames must be non-negative indices into the source video")
        sources = _strings(data["source"], "source", b)
        actions = _strings(data["action"], "action", b)

        pred_mm = denormalize_to_mm(pred, data["res"], data["factor"])
        gt_mm = denormalize_to_mm(target, data["res"], data["factor"])
        root = self.root_joint
        pred_mm = pred_mm - pred_mm[:, :, root:root + 1]
        gt_mm = gt_mm - gt_mm[:, :, root:root + 1]
        e1 = mpjpe(pred_mm, gt_mm, reduction="none").numpy()  # (B, T)
        e2 = p_mpjpe(pred_mm, gt_mm, reduction="none").numpy()
        for i in range(b):
            if strip_camera_suffix(sources[i]) in self.block_list:
                self._num_skipped += 1
                continue
            acc = self._sources.get(sources[i])
            if acc is None:
                acc = self._sources[sources[i]] = _FrameStore(actions[i], e1=((), float), e2=((), float))
            elif acc.action != actions[i]:
                raise ValueError(
                    f"source {sources[i]!r} was given action {acc.action!r} before and {actions[i]!r} now"
                )
            acc.add(frames[i], e1=e1[i], e2=e2[i])
            self._num_clips += 1

    def compute(self) -> H36MResult:
        """Per-frame averaging, per-action means and the mean over actions (sorted by name).

        Raises:
            ValueError: no frame was scored.
        """
        per_action_e1: Dict[str, List[np.ndarray]] = {}
        per_action_e2: Dict[str, List[np.ndarray]] = {}
        for acc in self._sources.values():
            covered = acc.count > 0
            per_action_e1.setdefault(acc.action, []).append(acc.e1[covered] / acc.count[covered])
            per_action_e2.setdefault(acc.action, []).append(acc.e2[covered] / acc.count[covered])
        per_action = {}
        for action in sorted(per_action_e1):
            e1 = np.concatenate(per_action_e1[action])
            e2 = np.concatenate(per_action_e2[action])
            if e1.size:
                per_action[action] = {"mpjpe": float(e1.mean()), "p_mpjpe": float(e2.mean()), "frames": int(e1.size)}
        if not per_action:
            raise ValueError("no frame was scored: call update() with clips outside the block list first")
        return H36MResult(
            mpjpe=float(np.mean([r["mpjpe"] for r in per_action.values()])),
            p_mpjpe=float(np.mean([r["p_mpjpe"] for r in per_action.values()])),
            per_action=per_action,
            num_frames=int(sum(r["frames"] for r in per_action.values())),
            num_clips=self._num_clips,
            num_skipped_clips=self._num_skipped,
        )


def _strings(value: Any, name: str, batch: int) -> List[str]:
    if isinstance(value, str):
        value = [value]
    value = list(value)
    if len(value) != batch or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name} must be a list of {batch} strings (one per clip); got {value!r:.200}")
    return value


def evaluate_h36m(predictions: Union[torch.Tensor, Sequence[torch.Tensor]],
                  clips: Union[Mapping[str, Any], Sequence[Mapping[str, Any]]],
                  block_list: Iterable[str] = S9_BLOCK_LIST, root_joint: int = 0,
                  print_table: bool = False) -> H36MResult:
    """Run the MotionBERT H36M protocol on a whole set of predicted clips.

    Args:
        predictions: predicted clips in normalised coordinates, stacked (N, T, J, 3) or a sequence of (T, J, 3).
        clips: the clips' fields of the sample contract, either collated (a mapping of ``"target"`` (N, T, J, 3),
            ``"factor"`` (N, T), ``"res"`` (N, 2), ``"frames"`` (N, T), ``"source"`` and ``"action"`` (N strings))
            or a sequence of N per-clip dicts as a dataset returns them.
        block_list: sources (camera suffix removed) to skip.
        root_joint: joint subtracted to make poses root-relative.
        print_table: print the per-action table.

    Returns:
        :class:`H36MResult` with MPJPE and P-MPJPE in mm, per action and averaged over actions.
    """
    if not isinstance(predictions, torch.Tensor):
        predictions = torch.stack([torch.as_tensor(p) for p in predictions])
    if not isinstance(clips, Mapping):
        clips = list(clips)
        keys = ("target", "factor", "res", "frames")
        collated = {k: torch.stack([torch.as_tensor(c[k]) for c in clips]) for k in keys}
        collated["source"] = [c["source"] for c in clips]
        collated["action"] = [c["action"] for c in clips]
        clips = collated
    protocol = H36MProtocol(block_list=block_list, root_joint=root_joint)
    protocol.update(predictions, clips)
    result = protocol.compute()
    if print_table:
        print(result.table())
    return result


# ------------------------------------------------------------------------------------------------------------------
# The evaluator of training runs

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


@dataclasses.dataclass
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
    notes: List[str] = dataclasses.field(default_factory=list)

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


def _valid_frames(store: _FrameStore):
    """(joint errors (F, J), P-MPJPE (F,), occluded (F, J)) of the covered, valid frames of a PoseEvaluator store."""
    keep = (store.count > 0) & store.valid
    c = store.count[keep]
    return store.joint_err[keep] / c[:, None], store.pa_err[keep] / c, store.occluded[keep]


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
                j = pred.shape[2]
                store = self._stores[source] = _FrameStore(action, joint_err=((j,), float), pa_err=((), float),
                                                           occluded=((j,), bool), valid=((), bool))
            store.add(frames[i], joint_err=joint_err[i], pa_err=pa_err[i],
                      occluded=None if occluded is None else occluded[i], valid=valid[i])
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
        parts = [_valid_frames(s) for s in stores]
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
