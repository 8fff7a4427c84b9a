"""MPI-INF-3DHP from P-STMO's npz files (``data_train_3dhp.npz``, ``data_test_3dhp.npz``).

Schemas (both files: key ``data`` -> a pickled dict):

* train: ``"S<k> Seq<m>"`` (k = 1..8, m = 1..2) -> ``[cam_dict, fps]``; ``cam_dict`` maps camera id strings
  (``'0','1','2','4','5','6','7','8'``) -> ``{"data_2d": (F, 17, 2) pixels, "data_3d": (F, 17, 3) mm}``.
  Images 2048 x 2048.
* test: ``"TS1"`` .. ``"TS6"`` -> ``{"data_2d": (T, 17, 2), "data_3d": (T, 17, 3), "valid": (T,) 0/1}``.
  TS1-TS4 are 2048 x 2048, TS5-TS6 1920 x 1080.

Joints are the 3DHP 17-joint order (root 14 = pelvis; :data:`~repose_ext.data.skeleton.MPI_INF_3DHP_SKELETON`)
unless ``joint_order="h36m"`` asks for the H36M-17 order. ``data_3d`` is ``univ_annot3``: camera-space mm,
rescaled to the universal (H36M-height) skeleton.

3D targets in the clip contract (our choice; the files carry no intrinsics, so no 2.5D projection is possible):
the root-relative 3D pose in mm is placed at the image centre and normalised by the image width exactly like
2D, i.e. ``target = (X - X_root) * 2 / w`` on all three axes (MotionAGFormer's "normalise 3D by the image
width"), with ``factor = 1`` mm per "pixel". Then ``normalized_to_millimetres(target, w, h, factor)`` minus its
root is exactly the root-relative pose in mm (what 3DHP's MPJPE / PCK / AUC score); the root target is 0, its
z is 0 in every frame as in the H36M pickle, and mirroring (negate x) keeps this representation. One
normalised unit is w / 2 mm (1024 mm for 2048-pixel images), the same scale as H36M's normalised 2.5D.

Clips: 81 frames, stride 9 (train) / 81 (test) like MotionAGFormer; the test split covers each sequence's tail
with one extra overlapping clip (``tail="cover"``) so every valid frame is scored. Test samples carry ``valid``;
non-finite 2D/3D values in frames marked invalid are replaced by 0 (an error in valid frames).

The npz files hold pickled objects: they are read with an allow-list (:mod:`repose_ext.data.safe_pickle`).
"""

from __future__ import annotations

import os
from typing import Mapping, Optional, Union

import numpy as np

from .clips import ClipDataset, RngLike
from .errors import DataFormatError
from .safe_pickle import load_npz
from .normalization import normalize_image_coordinates
from .skeleton import H36M_SKELETON, H36M_TO_MPI_INF_3DHP, MPI_INF_3DHP_ROOT, MPI_INF_3DHP_SKELETON

__all__ = [
    "MPI_INF_3DHP_STRIDES",
    "MPI_INF_3DHP_TEST_RESOLUTION",
    "MPI_INF_3DHP_TRAIN_RESOLUTION",
    "load_mpi_inf_3dhp",
    "read_mpi_inf_3dhp",
]

MPI_INF_3DHP_TRAIN_RESOLUTION = (2048, 2048)
MPI_INF_3DHP_TEST_RESOLUTION = {
    "TS1": (2048, 2048),
    "TS2": (2048, 2048),
    "TS3": (2048, 2048),
    "TS4": (2048, 2048),
    "TS5": (1920, 1080),
    "TS6": (1920, 1080),
}
MPI_INF_3DHP_STRIDES = {"train": 9, "test": 81}
_DEFAULT_TAIL = {"train": "drop", "test": "cover"}
JOINT_ORDERS = ("mpi_inf_3dhp", "h36m")

PathOrData = Union[str, os.PathLike, Mapping]


def read_mpi_inf_3dhp(path_or_data: PathOrData) -> Mapping:
    """Load a P-STMO 3DHP npz (or take the loaded ``data`` dict) and return its ``data`` dict.

    Args:
        path_or_data: Path of ``data_train_3dhp.npz`` / ``data_test_3dhp.npz``, a dict ``{"data": {...}}``
            or the inner dict itself.

    Returns:
        The dict keyed by sequence (``"S1 Seq1"``...) or test sequence (``"TS1"``...).
    """
    if isinstance(path_or_data, Mapping):
        name = "data"
        data = path_or_data["data"] if "data" in path_or_data else path_or_data
    else:
        name = os.fspath(path_or_data)
        top = load_npz(name)  # pickled dicts, read with an allow-list (no code runs from the file)
        if "data" not in top:
            raise DataFormatError(f"{name} is missing key 'data'; expected a P-STMO 3DHP npz with key 'data'")
        data = top["data"]
    if isinstance(data, np.ndarray) and data.dtype == object and data.shape == ():
        data = data.item()
    if not isinstance(data, Mapping):
        raise DataFormatError(f"{name}['data'] must be a dict of sequences; got {type(data).__name__}")
    return data


def _pose_arrays(entry, where: str):
    if not isinstance(entry, Mapping):
        raise DataFormatError(f"{where} must be a dict with keys 'data_2d' and 'data_3d'; got {type(entry).__name__}")
    for key in ("data_2d", "data_3d"):
        if key not in entry:
            raise DataFormatError(f"{where} is missing key {key!r}; expected keys 'data_2d' and 'data_3d'")
    kp = np.asarray(entry["data_2d"], dtype=np.float64)
    pos = np.asarray(entry["data_3d"], dtype=np.float64)
    if kp.ndim != 3 or kp.shape[1:] != (17, 2):
        raise DataFormatError(f"{where}['data_2d'] must have shape (F, 17, 2) (pixels); got {kp.shape}")
    if pos.shape != (kp.shape[0], 17, 3):
        raise DataFormatError(
            f"{where}['data_3d'] must have shape (F, 17, 3) (mm) with the F = {kp.shape[0]} frames of "
            f"'data_2d'; got {pos.shape}"
        )
    return kp, pos


def _sequence_key(name: str):
    digits = "".join(ch if ch.isdigit() else " " for ch in name).split()
    return [int(d) for d in digits], name


def load_mpi_inf_3dhp(
    path_or_data: PathOrData,
    split: str,
    *,
    n_frames: int = 81,
    stride: Optional[int] = None,
    tail: Optional[str] = None,
    joint_order: str = "mpi_inf_3dhp",
    rng: RngLike = 0,
) -> ClipDataset:
    """Clips of MPI-INF-3DHP (P-STMO npz format) in the clip contract.

    Args:
        path_or_data: ``data_train_3dhp.npz`` for ``split="train"``, ``data_test_3dhp.npz`` for ``"test"``
            (or their loaded dicts).
        split: ``"train"`` (every sequence, every camera) or ``"test"`` (TS1-TS6).
        n_frames: Clip length (MotionAGFormer: 81).
        stride: Frames between clip starts; default 9 (train) / 81 (test).
        tail: ``"drop"`` or ``"cover"`` (:func:`~repose_ext.data.clips.split_clips`); default ``"drop"`` for
            train, ``"cover"`` for test.
        joint_order: ``"mpi_inf_3dhp"`` (the file's order, root 14) or ``"h36m"`` (reordered to H36M-17 with
            :data:`~repose_ext.data.skeleton.H36M_TO_MPI_INF_3DHP`, root 0).
        rng: Seed / generator / None for the resampling of sequences shorter than ``n_frames``.

    Returns:
        A :class:`~repose_ext.data.clips.ClipDataset` whose ``skeleton`` matches ``joint_order``. Each sample:
        ``input`` (T, 17, 3) = normalised 2D and confidence 1, ``target`` (T, 17, 3) = root-relative mm * 2 / w
        (module docstring), ``factor`` (T,) = 1.0, ``res`` (2,), ``source`` (``"S1 Seq1 cam0"`` / ``"TS1"``),
        ``action`` (the sequence, ``"S1 Seq1"`` / ``"TS1"``), ``frames`` (T,), and for the test split
        ``valid`` (T,) bool (only valid frames are scored).
    """
    if split not in MPI_INF_3DHP_STRIDES:
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    if joint_order not in JOINT_ORDERS:
        raise ValueError(f"joint_order must be one of {JOINT_ORDERS}; got {joint_order!r}")
    data = read_mpi_inf_3dhp(path_or_data)

    videos = []  # (source, action, kp, pos, (w, h), valid or None)
    if split == "train":
        for seq in sorted(data, key=_sequence_key):
            entry = data[seq]
            if not isinstance(entry, (list, tuple)) or len(entry) != 2 or not isinstance(entry[0], Mapping):
                raise DataFormatError(
                    f"data[{seq!r}] must be a list [cam_dict, fps] with cam_dict: camera id -> "
                    f"{{'data_2d', 'data_3d'}} (train file); got {type(entry).__name__}"
                )
            for cam in sorted(entry[0], key=_sequence_key):
                kp, pos = _pose_arrays(entry[0][cam], f"data[{seq!r}][0][{cam!r}]")
                videos.append((f"{seq} cam{cam}", seq, kp, pos, MPI_INF_3DHP_TRAIN_RESOLUTION, None))
    else:
        for seq in sorted(data, key=_sequence_key):
            if seq not in MPI_INF_3DHP_TEST_RESOLUTION:
                raise DataFormatError(
                    f"data has sequence {seq!r}; a test file holds {sorted(MPI_INF_3DHP_TEST_RESOLUTION)} "
                    f"(was a train file passed with split='test'?)"
                )
            entry = data[seq]
            kp, pos = _pose_arrays(entry, f"data[{seq!r}]")
            if "valid" not in entry:
                raise DataFormatError(f"data[{seq!r}] is missing key 'valid'; expected (T,) 0/1 valid-frame flags")
            valid = np.asarray(entry["valid"])
            if valid.shape != (kp.shape[0],):
                raise DataFormatError(
                    f"data[{seq!r}]['valid'] must have shape (T,) with the T = {kp.shape[0]} frames of "
                    f"'data_2d'; got {valid.shape}"
                )
            valid = valid != 0
            finite = np.isfinite(kp).all(axis=(1, 2)) & np.isfinite(pos).all(axis=(1, 2))
            if not np.all(finite[valid]):
                raise DataFormatError(f"data[{seq!r}] has non-finite 2D/3D values in frames marked valid")
            # Invalid frames are context only (never scored); non-finite values there become 0.
            kp, pos = np.where(finite[:, None, None], kp, 0.0), np.where(finite[:, None, None], pos, 0.0)
            videos.append((seq, seq, kp, pos, MPI_INF_3DHP_TEST_RESOLUTION[seq], valid))
    if not videos:
        raise DataFormatError(f"no sequences found in the {split} file")

    inputs, targets, res, sources, actions, valids = [], [], [], [], [], []
    for source, action, kp, pos, (w, h), valid in videos:
        n = kp.shape[0]
        inp = np.ones((n, 17, 3), dtype=np.float32)
        inp[..., :2] = normalize_image_coordinates(kp, w, h)
        rel = pos - pos[:, MPI_INF_3DHP_ROOT : MPI_INF_3DHP_ROOT + 1]
        px = rel + np.array([w / 2.0, h / 2.0, 0.0])  # root at the image centre, 1 mm = 1 "pixel"
        inputs.append(inp)
        targets.append(normalize_image_coordinates(px, w, h).astype(np.float32))
        res.append(np.broadcast_to(np.array([w, h], dtype=np.float32), (n, 2)))
        sources.append(np.full(n, source, dtype=object))
        actions.append(np.full(n, action, dtype=object))
        if valid is not None:
            valids.append(valid)

    inputs, targets = np.concatenate(inputs), np.concatenate(targets)
    skeleton = MPI_INF_3DHP_SKELETON
    if joint_order == "h36m":
        order = list(H36M_TO_MPI_INF_3DHP)
        inputs, targets, skeleton = inputs[:, order], targets[:, order], H36M_SKELETON
    n_total = inputs.shape[0]
    return ClipDataset(
        inputs,
        targets,
        np.ones(n_total, dtype=np.float32),
        np.concatenate(res),
        np.concatenate(sources),
        np.concatenate(actions),
        n_frames=n_frames,
        stride=MPI_INF_3DHP_STRIDES[split] if stride is None else stride,
        skeleton=skeleton,
        tail=_DEFAULT_TAIL[split] if tail is None else tail,
        valid=np.concatenate(valids) if valids else None,
        rng=rng,
    )
