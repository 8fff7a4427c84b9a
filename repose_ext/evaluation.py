"""The MotionBERT Human3.6M evaluation protocol (MotionBERT ``train.py evaluate``, identical in RePOSE).

Steps, applied to clips that follow the sample contract of :mod:`repose_ext.data`:

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
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from .data.normalization import normalized_to_millimetres
from .metrics import mpjpe, p_mpjpe
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


class _SourceAccumulator:
    def __init__(self, action: str):
        self.action = action
        self.e1 = np.zeros(0)
        self.e2 = np.zeros(0)
        self.count = np.zeros(0)

    def _grow(self, size: int) -> None:
        if size > self.e1.shape[0]:
            extra = size - self.e1.shape[0]
            self.e1 = np.concatenate([self.e1, np.zeros(extra)])
            self.e2 = np.concatenate([self.e2, np.zeros(extra)])
            self.count = np.concatenate([self.count, np.zeros(extra)])

    def add(self, frames: np.ndarray, e1: np.ndarray, e2: np.ndarray) -> None:
        self._grow(int(frames.max()) + 1)
        # Buffered fancy-index assignment, as MotionBERT: a frame repeated within a clip counts once.
        self.e1[frames] += e1
        self.e2[frames] += e2
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
        self._sources: Dict[str, _SourceAccumulator] = {}
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
                acc = self._sources[sources[i]] = _SourceAccumulator(actions[i])
            elif acc.action != actions[i]:
                raise ValueError(
                    f"source {sources[i]!r} was given action {acc.action!r} before and {actions[i]!r} now"
                )
            acc.add(frames[i], e1[i], e2[i])
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
