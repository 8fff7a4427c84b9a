"""Fixed-length clips of pose videos: MotionBERT's clip slicing, the clip Dataset, and left/right flipping.

Every dataset loader of :mod:`repose_ext.data` builds a :class:`ClipDataset` from per-frame arrays; a sample is
the dict of the clip contract (``input``, ``target``, ``factor``, ``res``, ``source``, ``action``, ``frames``,
and optionally ``valid`` / ``occluded``), documented on :meth:`ClipDataset.__getitem__`.

Clip slicing follows MotionBERT's ``split_clips``: a *video* is a maximal run of consecutive frames
with the same source id; each video yields windows of ``n_frames`` starting every ``stride`` frames; frames left
over after the last full window are dropped, and a video too short for any full window is resampled to
``n_frames`` (:func:`resample_indices`).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from .errors import DataFormatError
from .skeleton import H36M_SKELETON, Skeleton

__all__ = [
    "TAIL_MODES",
    "ClipDataset",
    "flip_clip",
    "flip_pose",
    "random_flip",
    "resample_indices",
    "split_clips",
]

TAIL_MODES = ("drop", "cover")

RngLike = Union[None, int, np.random.Generator]


def _make_rng(rng: RngLike) -> Optional[np.random.Generator]:
    if rng is None or isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator; got {type(rng).__name__}")


def resample_indices(length: int, n_frames: int, rng: RngLike = 0) -> np.ndarray:
    """Indices that stretch (or shrink) a video of ``length`` frames to ``n_frames`` frames (MotionBERT ``resample``).

    With a random generator, the even grid ``linspace(0, length, n_frames, endpoint=False)`` is rounded per
    point to its floor or ceiling at random (when ``length < n_frames``) or jittered uniformly inside its
    grid cell (when ``length >= n_frames``), then sorted and clipped to ``[0, length - 1]``. With
    ``rng=None`` the grid is simply floored (MotionBERT's ``randomness=False``).

    Args:
        length: Number of frames of the video (>= 1).
        n_frames: Number of indices to return (>= 1).
        rng: None (deterministic), an int seed or a ``numpy.random.Generator``.

    Returns:
        Non-decreasing int64 frame indices in ``[0, length - 1]``.

    Shape:
        Returns (n_frames,).
    """
    if length < 1:
        raise ValueError(f"length must be >= 1; got {length}")
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1; got {n_frames}")
    gen = _make_rng(rng)
    even = np.linspace(0, length, num=n_frames, endpoint=False)
    if gen is None:
        return np.floor(even).astype(np.int64)
    if length < n_frames:
        pick_low = gen.integers(0, 2, size=n_frames).astype(bool)
        result = np.sort(np.where(pick_low, np.floor(even), np.ceil(even)))
    else:
        interval = length / n_frames
        result = even + gen.random(n_frames) * interval
    return np.clip(result, 0, length - 1).astype(np.int64)


def _video_runs(sources: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) frame of each run of equal consecutive source ids; checks runs are unique."""
    n = len(sources)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    change = np.flatnonzero(np.asarray(sources[1:] != sources[:-1], dtype=bool)) + 1
    starts = np.concatenate([[0], change]).astype(np.int64)
    ends = np.concatenate([change, [n]]).astype(np.int64)
    names = [str(sources[s]) for s in starts]
    if len(set(names)) != len(names):
        seen = set()
        for name in names:
            if name in seen:
                raise DataFormatError(
                    f"sources must hold each video's frames contiguously; video {name!r} appears in "
                    f"{names.count(name)} separate runs of frames"
                )
            seen.add(name)
    return starts, ends


def split_clips(
    sources: Sequence, n_frames: int, stride: int, *, tail: str = "drop", rng: RngLike = 0
) -> np.ndarray:
    """Slice per-frame video ids into fixed-length clips of frame indices (MotionBERT ``split_clips``).

    For each video (a run of consecutive equal ids, in order of appearance) of length L:

    * L >= n_frames: windows ``[s, s + n_frames)`` for ``s = 0, stride, 2 * stride, ...`` while they fit.
      Leftover frames at the end are dropped (``tail="drop"``, MotionBERT), or covered by one more window
      that ends on the last frame (``tail="cover"``, so that every frame is in at least one clip).
    * L < n_frames: one clip of :func:`resample_indices` (frames repeated to reach n_frames).

    Difference from MotionBERT's code: its loop stops before examining the *last* video of the list, so a
    last video shorter than n_frames is dropped there; here it is resampled like any other short video.

    Args:
        sources: Per-frame video id (any values comparable with ``!=``; strings in practice). Each video's
            frames must be contiguous.
        n_frames: Clip length (>= 1).
        stride: Frames between the starts of consecutive windows of a video (>= 1).
        tail: ``"drop"`` or ``"cover"`` (see above).
        rng: Randomness of the resampling of short videos: None (deterministic floor), int seed or Generator.

    Returns:
        int64 indices into ``sources``; each row is one clip, within one video.

    Shape:
        sources: (N,). Returns (n_clips, n_frames).
    """
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 1:
        raise ValueError(f"n_frames must be a positive int; got {n_frames!r}")
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be a positive int; got {stride!r}")
    if tail not in TAIL_MODES:
        raise ValueError(f"tail must be one of {TAIL_MODES}; got {tail!r}")
    sources = np.asarray(sources)
    if sources.ndim != 1:
        raise ValueError(f"sources must have shape (N,); got {sources.shape}")
    gen = _make_rng(rng)
    offsets = np.arange(n_frames, dtype=np.int64)
    clips = []
    for start, end in zip(*_video_runs(sources)):
        length = int(end - start)
        if length >= n_frames:
            starts = np.arange(start, end - n_frames + 1, stride, dtype=np.int64)
            if tail == "cover" and starts[-1] + n_frames < end:
                starts = np.append(starts, end - n_frames)
            clips.append(starts[:, None] + offsets)
        else:
            clips.append((start + resample_indices(length, n_frames, gen))[None, :])
    if not clips:
        return np.zeros((0, n_frames), dtype=np.int64)
    return np.concatenate(clips, axis=0)


def _flip_permutation(num_joints: int, left: Sequence[int], right: Sequence[int]) -> list:
    left, right = list(left), list(right)
    if len(left) != len(right):
        raise ValueError(f"left and right must have the same length; got {len(left)} and {len(right)}")
    if len(set(left + right)) != len(left) + len(right):
        raise ValueError(f"left and right must be disjoint lists without repeats; got {left} and {right}")
    for j in left + right:
        if not 0 <= j < num_joints:
            raise ValueError(f"left/right joint indices must be in [0, {num_joints}); got {j}")
    perm = list(range(num_joints))
    for a, b in zip(left, right):
        perm[a], perm[b] = b, a
    return perm


def flip_pose(pose, left: Sequence[int], right: Sequence[int]):
    """Mirror poses about the vertical image axis: negate x (channel 0) and swap the left/right joints.

    Valid for image-centred coordinates (MotionBERT's normalised coordinates, where x = 0 is the image
    centre). Other channels (y, z, confidence) are kept. Flipping twice gives the input back.

    Args:
        pose: Torch tensor or NumPy array of poses.
        left: Joints on the left side (e.g. ``skeleton.left``).
        right: Their mirror joints on the right side (e.g. ``skeleton.right``).

    Returns:
        A new tensor/array (the input is not modified); autograd flows through for tensors.

    Shape:
        pose: (..., J, C) with C >= 1. Returns (..., J, C).
    """
    if pose.ndim < 2:
        raise ValueError(f"pose must have shape (..., J, C); got {tuple(pose.shape)}")
    perm = _flip_permutation(pose.shape[-2], left, right)
    sign = [-1.0] + [1.0] * (pose.shape[-1] - 1)
    if isinstance(pose, torch.Tensor):
        perm_t = torch.tensor(perm, dtype=torch.long, device=pose.device)
        return pose.index_select(pose.ndim - 2, perm_t) * pose.new_tensor(sign)
    return pose[..., perm, :] * np.asarray(sign, dtype=pose.dtype if pose.dtype.kind == "f" else np.float64)


def flip_clip(input, target, left: Sequence[int], right: Sequence[int]):
    """Flip a (2D input, 3D target) pair together (MotionBERT's training augmentation).

    Args:
        input: (x, y, confidence) poses; the confidence channel moves with its joint.
        target: (x, y, z) poses.
        left: Left joints of the skeleton.
        right: Right joints of the skeleton.

    Returns:
        ``(flip_pose(input), flip_pose(target))``.

    Shape:
        input: (..., J, 3), target: (..., J, 3). Returns the same shapes.
    """
    return flip_pose(input, left, right), flip_pose(target, left, right)


def random_flip(
    input: torch.Tensor,
    target: torch.Tensor,
    left: Sequence[int],
    right: Sequence[int],
    p: float = 0.5,
    generator: Optional[torch.Generator] = None,
):
    """Flip each sample of a batch with probability ``p`` (input and target together).

    Args:
        input: Batch of input clips.
        target: Batch of target clips.
        left: Left joints of the skeleton.
        right: Right joints of the skeleton.
        p: Probability of flipping a sample.
        generator: CPU ``torch.Generator`` for the coin flips (None: the global generator).

    Returns:
        ``(input, target, flipped)`` with new tensors and the boolean mask of flipped samples (B,).

    Shape:
        input: (B, T, J, C), target: (B, T, J, 3). Returns the same shapes and (B,).
    """
    if input.ndim != 4 or target.ndim != 4 or input.shape[:3] != target.shape[:3]:
        raise ValueError(
            f"input and target must have shapes (B, T, J, C) with equal B, T, J; "
            f"got {tuple(input.shape)} and {tuple(target.shape)}"
        )
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1]; got {p}")
    flipped = torch.rand(input.shape[0], generator=generator) < p
    mask = flipped.to(input.device)[:, None, None, None]
    flipped_input, flipped_target = flip_clip(input, target, left, right)
    return torch.where(mask, flipped_input, input), torch.where(mask, flipped_target, target), flipped


def _check_array(name: str, value, shape: Tuple[Optional[int], ...], what: str) -> np.ndarray:
    arr = np.asarray(value)
    ok = arr.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, arr.shape))
    if not ok:
        expected = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise DataFormatError(f"{name} must have shape {expected} ({what}); got {arr.shape}")
    return arr


class ClipDataset(Dataset):
    """Fixed-length clips over per-frame pose arrays, returning samples of the clip contract.

    The arrays hold all frames of all videos, each video's frames contiguous and in time order; clips are
    made with :func:`split_clips` and read lazily (no copy of the frames per clip).

    Args:
        inputs: 2D input per frame: normalised x, y and a confidence (1.0 when the source has none).
        targets: 3D target per frame: normalised x, y and 2.5D z (see :mod:`repose_ext.data.normalization`).
        factors: mm per px (2.5D factor) per frame, positive.
        res: Image (width, height) in pixels per frame; constant within each video.
        sources: Video id per frame (str).
        actions: Action label per frame (str); a clip's action is that of its first frame.
        n_frames: Clip length T.
        stride: Frames between consecutive clip starts within a video.
        skeleton: Joint layout of the arrays (flip lists, root); exposed as ``self.skeleton``.
        tail: ``"drop"`` (MotionBERT) or ``"cover"``; see :func:`split_clips`.
        valid: Optional bool per frame (frames to score, e.g. MPI-INF-3DHP test).
        occluded: Optional bool per frame and joint.
        frame_index: Optional index of each frame in its source video (default: its position in the run of
            its video in these arrays); returned per clip as ``"frames"``.
        rng: Seed / generator / None for the resampling of short videos (see :func:`resample_indices`).

    Shape:
        inputs: (N, J, 3), targets: (N, J, 3), factors: (N,), res: (N, 2), sources: (N,), actions: (N,),
        valid: (N,), occluded: (N, J), frame_index: (N,).

    Attributes:
        clips: int64 array (n_clips, T) of frame indices into the arrays.
        clip_sources: Source id of each clip. clip_actions: Action of each clip.
        skeleton: The :class:`~repose_ext.data.skeleton.Skeleton` of the joints.
    """

    def __init__(
        self,
        inputs,
        targets,
        factors,
        res,
        sources,
        actions,
        *,
        n_frames: int,
        stride: int,
        skeleton: Skeleton = H36M_SKELETON,
        tail: str = "drop",
        valid=None,
        occluded=None,
        frame_index=None,
        rng: RngLike = 0,
    ):
        num_joints = skeleton.num_joints
        inputs = _check_array("inputs", inputs, (None, num_joints, 3), "x_n, y_n, confidence per joint")
        n = inputs.shape[0]
        targets = _check_array("targets", targets, (n, num_joints, 3), "x_n, y_n, z_n per joint")
        factors = _check_array("factors", factors, (n,), "mm per px per frame")
        res = _check_array("res", res, (n, 2), "image width, height per frame")
        sources = _check_array("sources", sources, (n,), "video id per frame")
        actions = _check_array("actions", actions, (n,), "action per frame")
        if n and not (np.all(np.isfinite(factors)) and np.all(factors > 0)):
            raise DataFormatError("factors must be finite and positive (mm per px)")
        starts, ends = _video_runs(sources)
        if n:
            same_video = np.ones(n - 1, dtype=bool)
            same_video[starts[1:] - 1] = False
            changed = np.any(res[1:] != res[:-1], axis=-1) & same_video
            if np.any(changed):
                at = int(np.flatnonzero(changed)[0]) + 1
                raise DataFormatError(
                    f"res must be constant within a video; video {str(sources[at])!r} changes from "
                    f"{tuple(res[at - 1])} to {tuple(res[at])} at frame {at}"
                )
        if valid is not None:
            valid = _check_array("valid", valid, (n,), "bool per frame").astype(bool)
        if occluded is not None:
            occluded = _check_array("occluded", occluded, (n, num_joints), "bool per frame and joint").astype(bool)
        if frame_index is None:
            frame_index = np.arange(n, dtype=np.int64) - np.repeat(starts, ends - starts)
        else:
            frame_index = _check_array("frame_index", frame_index, (n,), "frame index in its video").astype(np.int64)

        self.skeleton = skeleton
        self.n_frames = int(n_frames)
        self.stride = int(stride)
        self.tail = tail
        self.clips = split_clips(sources, n_frames, stride, tail=tail, rng=rng)
        first = self.clips[:, 0]
        self._frame_index = torch.from_numpy(frame_index)
        self.clip_sources = [str(sources[i]) for i in first]
        self.clip_actions = [str(actions[i]) for i in first]
        self._clips = torch.from_numpy(self.clips)
        self._inputs = torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
        self._targets = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))
        self._factors = torch.from_numpy(np.ascontiguousarray(factors, dtype=np.float32))
        self._clip_res = torch.from_numpy(np.ascontiguousarray(res[first], dtype=np.float32))
        self._valid = None if valid is None else torch.from_numpy(valid)
        self._occluded = None if occluded is None else torch.from_numpy(occluded)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> Dict[str, object]:
        """One clip.

        Returns:
            A dict with ``"input"`` float32 (T, J, 3) (x_n, y_n, confidence), ``"target"`` float32 (T, J, 3)
            (x_n, y_n, z_n), ``"factor"`` float32 (T,) (mm per px), ``"res"`` float32 (2,) (width, height),
            ``"source"`` str, ``"action"`` str, ``"frames"`` int64 (T,) (indices into the source video; may
            repeat for a resampled short video), and, when given to the constructor, ``"valid"`` bool (T,)
            and ``"occluded"`` bool (T, J).
        """
        if not -len(self) <= index < len(self):
            raise IndexError(f"clip index must be in [0, {len(self)}); got {index}")
        idx = self._clips[index]
        # index_select: advanced indexing (tensor[idx]) measured ~1000x slower on CPU for these shapes.
        sample = {
            "input": self._inputs.index_select(0, idx),
            "target": self._targets.index_select(0, idx),
            "factor": self._factors.index_select(0, idx),
            "res": self._clip_res[index].clone(),
            "source": self.clip_sources[index],
            "action": self.clip_actions[index],
            "frames": self._frame_index.index_select(0, idx),
        }
        if self._valid is not None:
            sample["valid"] = self._valid.index_select(0, idx)
        if self._occluded is not None:
            sample["occluded"] = self._occluded.index_select(0, idx)
        return sample

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(clips={len(self)}, n_frames={self.n_frames}, stride={self.stride}, "
            f"tail={self.tail!r}, frames={self._inputs.shape[0]}, skeleton={self.skeleton.name!r})"
        )
