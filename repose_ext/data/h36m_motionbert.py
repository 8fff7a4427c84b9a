"""Human3.6M from MotionBERT's pickle ``h36m_sh_conf_cam_source_final.pkl`` (produced by LCN).

Schema: a dict with ``"train"`` and ``"test"``, each a dict of per-frame arrays, frames contiguous per video::

    joint_2d          (N, 17, 2)          2D detections (fine-tuned Stacked Hourglass), pixels
    confidence        (N, 17) or (N, 17, 1)  detector confidence
    joint3d_image     (N, 17, 3)          GT 2.5D: x, y projected pixels; z = root-relative depth in pixel units
    2.5d_factor       (N,)                mm per px of that frame
    camera_name       (N,)                '54138969', '55011271', '58860488' or '60457274'
    source            (N,)                video id 's_XX_act_XX_subact_XX_ca_XX'
    action            (N,)                action label (used as given, converted to str)

(``joints_2.5d_image`` = ``joint3d_image * 2.5d_factor`` may also be present; it is not read: the same mm
values are ``normalized_to_millimetres(target, w, h, factor)``.)

Normalisation (MotionBERT ``DataReaderH36M``), per camera resolution (1000 x 1002 for 54138969 and 60457274,
1000 x 1000 otherwise): ``x / w * 2 - 1``, ``y / w * 2 - h / w`` for 2D and 3D, ``z / w * 2`` for the depth.
The input's third channel is the confidence. Clips: 243 frames, stride 81 (train) / 243 (test), MotionBERT's
tail rule. The joint order is H36M-17.

Pickles can run code when loaded: only load files from a source you trust.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional, Union

import numpy as np

from .clips import ClipDataset, RngLike
from .errors import DataFormatError
from .safe_pickle import load_pickle
from .h36m_cameras import H36M_CAMERA_RESOLUTION
from .normalization import normalize_image_coordinates
from .skeleton import H36M_SKELETON

__all__ = [
    "H36M_MOTIONBERT_FILENAME",
    "H36M_MOTIONBERT_KEYS",
    "H36M_MOTIONBERT_STRIDES",
    "load_h36m_motionbert",
    "read_h36m_motionbert",
]

H36M_MOTIONBERT_FILENAME = "h36m_sh_conf_cam_source_final.pkl"
H36M_MOTIONBERT_KEYS = ("joint_2d", "confidence", "joint3d_image", "2.5d_factor", "camera_name", "source", "action")
H36M_MOTIONBERT_STRIDES = {"train": 81, "test": 243}

PathOrData = Union[str, os.PathLike, Mapping]


def read_h36m_motionbert(path_or_data: PathOrData) -> Mapping:
    """Load the MotionBERT H36M pickle (or take an already loaded copy) and check its top level.

    Load it once and pass the result to :func:`load_h36m_motionbert` for both splits to avoid reading the
    (large) file twice.

    Args:
        path_or_data: Path of ``h36m_sh_conf_cam_source_final.pkl``, or the dict it holds.

    Returns:
        The dict ``{"train": {...}, "test": {...}}`` (per-split contents are checked when a split is loaded).
    """
    if isinstance(path_or_data, Mapping):
        data, name = path_or_data, "data"
    else:
        name = os.fspath(path_or_data)
        data = load_pickle(name)  # with an allow-list: NumPy arrays and plain containers, no code runs
    if not isinstance(data, Mapping):
        raise DataFormatError(f"{name} must hold a dict with keys 'train' and 'test'; got {type(data).__name__}")
    missing = [k for k in ("train", "test") if k not in data]
    if missing:
        raise DataFormatError(f"{name} is missing key {missing[0]!r}; expected a dict with keys 'train' and 'test'")
    return data


def _get(split_data: Mapping, split: str, key: str):
    if key not in split_data:
        raise DataFormatError(
            f"H36M pickle [{split!r}] is missing key {key!r}; expected keys {list(H36M_MOTIONBERT_KEYS)}"
        )
    return split_data[key]


def _shaped(split: str, key: str, value, shape, dtype=None) -> np.ndarray:
    arr = np.asarray(value) if dtype is None else np.asarray(value, dtype=dtype)
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        expected = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise DataFormatError(f"H36M pickle [{split!r}][{key!r}] must have shape {expected}; got {arr.shape}")
    return arr


def load_h36m_motionbert(
    path_or_data: PathOrData,
    split: str,
    *,
    n_frames: int = 243,
    stride: Optional[int] = None,
    sample_stride: int = 1,
    use_gt_2d: bool = False,
    tail: str = "drop",
    rng: RngLike = 0,
) -> ClipDataset:
    """Clips of one split of MotionBERT's H36M pickle, in the clip contract.

    Args:
        path_or_data: Path of ``h36m_sh_conf_cam_source_final.pkl`` or its loaded dict
            (:func:`read_h36m_motionbert`).
        split: ``"train"`` or ``"test"``.
        n_frames: Clip length (MotionBERT: 243).
        stride: Frames between clip starts; default 81 for train, 243 for test (MotionBERT).
        sample_stride: Keep every k-th frame before slicing (MotionBERT ``sample_stride``, default 1).
        use_gt_2d: Use the GT 2D (``joint3d_image[..., :2]``, confidence 1) as input instead of the detections.
        tail: ``"drop"`` (MotionBERT) or ``"cover"``; see :func:`~repose_ext.data.clips.split_clips`.
        rng: Seed / generator / None for the resampling of videos shorter than ``n_frames``.

    Returns:
        A :class:`~repose_ext.data.clips.ClipDataset` with ``skeleton`` H36M-17; each sample has ``input``
        (T, 17, 3) = (x_n, y_n, confidence), ``target`` (T, 17, 3) = normalised ``joint3d_image``, ``factor``
        (T,) = ``2.5d_factor``, ``res`` (2,), ``source`` (the pickle's video id), ``action`` and ``frames``
        (frame indices in the video, before subsampling).
    """
    if split not in H36M_MOTIONBERT_STRIDES:
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    if isinstance(sample_stride, bool) or not isinstance(sample_stride, int) or sample_stride < 1:
        raise ValueError(f"sample_stride must be a positive int; got {sample_stride!r}")
    data = read_h36m_motionbert(path_or_data)
    d = data[split]
    if not isinstance(d, Mapping):
        raise DataFormatError(f"H36M pickle [{split!r}] must be a dict of per-frame arrays; got {type(d).__name__}")
    # Check every key before converting anything.
    raw = {key: _get(d, split, key) for key in H36M_MOTIONBERT_KEYS}

    joint_2d = _shaped(split, "joint_2d", raw["joint_2d"], (None, 17, 2), np.float32)
    n = joint_2d.shape[0]
    confidence = np.asarray(raw["confidence"], dtype=np.float32)
    if confidence.shape == (n, 17, 1):
        confidence = confidence[..., 0]
    if confidence.shape != (n, 17):
        raise DataFormatError(
            f"H36M pickle [{split!r}]['confidence'] must have shape (N, 17) or (N, 17, 1) with N = {n} frames "
            f"(as 'joint_2d'); got {confidence.shape}"
        )
    joint3d = _shaped(split, "joint3d_image", raw["joint3d_image"], (n, 17, 3), np.float32)
    factor = _shaped(split, "2.5d_factor", raw["2.5d_factor"], (n,), np.float32)
    cameras = _shaped(split, "camera_name", raw["camera_name"], (n,))
    sources = _shaped(split, "source", raw["source"], (n,))
    actions = _shaped(split, "action", raw["action"], (n,))

    # Resolution per frame from the camera name (a handful of distinct values).
    names, inverse = np.unique(cameras, return_inverse=True)
    res_table = np.zeros((len(names), 2), dtype=np.float32)
    for k, name in enumerate(names):
        cam = name.decode() if isinstance(name, bytes) else str(name)
        if cam not in H36M_CAMERA_RESOLUTION:
            raise DataFormatError(
                f"H36M pickle [{split!r}]['camera_name'] holds {cam!r}; "
                f"expected one of {sorted(H36M_CAMERA_RESOLUTION)}"
            )
        res_table[k] = H36M_CAMERA_RESOLUTION[cam]
    res = res_table[inverse.reshape(-1)]

    # Frame index within each video, computed on the full-rate frames so that subsampled clips report it too.
    change = np.flatnonzero(np.asarray(sources[1:] != sources[:-1], dtype=bool)) + 1 if n else np.zeros(0, int)
    run_starts = np.concatenate([[0], change]).astype(np.int64) if n else np.zeros(0, np.int64)
    run_lengths = np.diff(np.concatenate([run_starts, [n]])) if n else np.zeros(0, np.int64)
    frame_index = np.arange(n, dtype=np.int64) - np.repeat(run_starts, run_lengths)

    keep = slice(None, None, sample_stride)
    w, h = res[keep, 0, None], res[keep, 1, None]  # (N', 1): broadcast over joints
    if use_gt_2d:
        xy = joint3d[keep, :, :2]
        conf = np.ones(xy.shape[:2], dtype=np.float32)
    else:
        xy, conf = joint_2d[keep], confidence[keep]
    inputs = np.empty(xy.shape[:2] + (3,), dtype=np.float32)
    inputs[..., :2] = normalize_image_coordinates(xy, w, h)
    inputs[..., 2] = conf
    targets = normalize_image_coordinates(joint3d[keep], w, h).astype(np.float32, copy=False)

    return ClipDataset(
        inputs,
        targets,
        factor[keep],
        res[keep],
        sources[keep],
        actions[keep],
        n_frames=n_frames,
        stride=H36M_MOTIONBERT_STRIDES[split] if stride is None else stride,
        skeleton=H36M_SKELETON,
        tail=tail,
        frame_index=frame_index[keep],
        rng=rng,
    )
