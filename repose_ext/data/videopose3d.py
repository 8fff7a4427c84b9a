"""Human3.6M from VideoPose3D's files: ``data_3d_h36m.npz`` + ``data_2d_h36m_cpn_ft_h36m_dbb.npz`` (or ``_gt.npz``).

Schemas (VideoPose3D ``data/prepare_data_*.py``):

* 3D file: key ``positions_3d`` -> pickled dict ``subject -> action -> float32 (T, 32, 3)``, world coordinates
  in metres, 50 fps. Subjects S1 S5 S6 S7 S8 S9 S11.
* 2D file: key ``positions_2d`` -> pickled dict ``subject -> action -> list of 4 arrays (T2, 17, 2)`` in pixels,
  list index = camera index (54138969, 55011271, 58860488, 60457274); optional key ``metadata`` (dict with
  ``num_joints`` 17 and ``keypoints_symmetry``, checked against the H36M left/right lists when present).
  CPN detections have no confidence (the input's confidence channel is 1.0). 2D sequences may be longer than
  the mocap and are truncated to the 3D length (shorter ones are an error).

Pipeline: 32 -> 17 joints (:data:`~repose_ext.data.skeleton.H36M_32_TO_17`); world -> camera with the bundled
camera table (:mod:`~repose_ext.data.h36m_cameras`): ``X_cam = rot(q^-1, X_world - t)``, q = (w, x, y, z),
t = translation in mm / 1000; train subjects S1 S5 S6 S7 S8, test S9 S11.

Targets in the clip contract (our choice, see :mod:`~repose_ext.data.camera`): the camera-space joints
(mm) become the 2.5D pose ``x_px = c_x + f X / Z_r``, ``y_px = c_y + f Y / Z_r``, ``z_px = f (Z - Z_r) / Z_r``
with f the mean focal length and Z_r the root depth of that frame, and ``factor = Z_r / f``; they are then
normalised by the camera resolution like the 2D. The root target is its exact pinhole projection (no lens
distortion) and ``normalized_to_millimetres(target) - root`` is exactly the root-relative camera-space pose in
mm, so MotionBERT's evaluation code yields VideoPose3D's Protocol 1 / 2 errors on the scored frames.

Clips: 243 frames, stride 81 (train) / 243 (test) like MotionBERT; by default the test split covers each video's
tail with one extra overlapping clip (``tail="cover"``) so that every frame is scored, as in VideoPose3D's
evaluation; train uses MotionBERT's ``"drop"``.

The npz files hold pickled objects (``allow_pickle=True``): only load files from a source you trust.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .camera import camera_to_2_5d, h36m_camera, world_to_camera
from .clips import ClipDataset, RngLike
from .errors import DataFormatError
from .safe_pickle import load_npz
from .h36m_cameras import H36M_CAMERA_IDS
from .normalization import normalize_image_coordinates
from .skeleton import H36M_32_TO_17, H36M_LEFT, H36M_RIGHT, H36M_SKELETON

__all__ = ["VIDEOPOSE3D_STRIDES", "VIDEOPOSE3D_SUBJECTS", "load_videopose3d", "read_videopose3d"]

VIDEOPOSE3D_SUBJECTS = {"train": ("S1", "S5", "S6", "S7", "S8"), "test": ("S9", "S11")}
VIDEOPOSE3D_STRIDES = {"train": 81, "test": 243}
_DEFAULT_TAIL = {"train": "drop", "test": "cover"}

PathOrData = Union[str, os.PathLike, Mapping]


def _load_npz_dict(path_or_data: PathOrData, key: str, what: str) -> Tuple[Mapping, Mapping, str]:
    """(the dict under ``key``, all top-level entries, a name for messages)."""
    if isinstance(path_or_data, Mapping):
        top, name = path_or_data, what
    else:
        name = os.fspath(path_or_data)
        top = load_npz(name)  # pickled dicts, read with an allow-list (no code runs from the file)
    if key not in top:
        raise DataFormatError(f"{name} is missing key {key!r}; expected a VideoPose3D {what} file with keys {key!r}")
    value = top[key]
    if isinstance(value, np.ndarray) and value.dtype == object and value.shape == ():
        value = value.item()
    if not isinstance(value, Mapping):
        raise DataFormatError(f"{name}[{key!r}] must be a dict subject -> action -> array; got {type(value).__name__}")
    return value, top, name


def read_videopose3d(path_3d: PathOrData, path_2d: PathOrData) -> Tuple[Mapping, Mapping]:
    """Load VideoPose3D's 3D and 2D files (or take loaded copies) and check their top level.

    Args:
        path_3d: Path of ``data_3d_h36m.npz``, or a dict ``{"positions_3d": {...}}``.
        path_2d: Path of ``data_2d_h36m_*.npz``, or a dict ``{"positions_2d": {...}[, "metadata": {...}]}``.

    Returns:
        ``(positions_3d, positions_2d)``: the two ``subject -> action -> ...`` dicts.
    """
    positions_3d, _, _ = _load_npz_dict(path_3d, "positions_3d", "3D")
    positions_2d, top_2d, name_2d = _load_npz_dict(path_2d, "positions_2d", "2D")
    if "metadata" in top_2d:
        meta = top_2d["metadata"]
        if isinstance(meta, np.ndarray) and meta.dtype == object and meta.shape == ():
            meta = meta.item()
        if not isinstance(meta, Mapping):
            raise DataFormatError(f"{name_2d}['metadata'] must be a dict; got {type(meta).__name__}")
        if "num_joints" in meta and int(meta["num_joints"]) != 17:
            raise DataFormatError(f"{name_2d}['metadata']['num_joints'] must be 17 (H36M-17); got {meta['num_joints']}")
        if "keypoints_symmetry" in meta:
            sym = [list(map(int, side)) for side in meta["keypoints_symmetry"]]
            if sym != [list(H36M_LEFT), list(H36M_RIGHT)]:
                raise DataFormatError(
                    f"{name_2d}['metadata']['keypoints_symmetry'] must be {[list(H36M_LEFT), list(H36M_RIGHT)]} "
                    f"(the H36M-17 layout); got {sym}"
                )
    return positions_3d, positions_2d


def load_videopose3d(
    path_3d: PathOrData,
    path_2d: PathOrData,
    split: str,
    *,
    subjects: Optional[Sequence[str]] = None,
    n_frames: int = 243,
    stride: Optional[int] = None,
    tail: Optional[str] = None,
    rng: RngLike = 0,
) -> ClipDataset:
    """Clips of VideoPose3D's Human3.6M data, in the clip contract (every action, every camera).

    Args:
        path_3d: ``data_3d_h36m.npz`` (or its loaded dict, see :func:`read_videopose3d`).
        path_2d: ``data_2d_h36m_cpn_ft_h36m_dbb.npz`` or ``data_2d_h36m_gt.npz`` (or its loaded dict).
        split: ``"train"`` (S1 S5 S6 S7 S8) or ``"test"`` (S9 S11).
        subjects: Override the split's subjects.
        n_frames: Clip length.
        stride: Frames between clip starts; default 81 (train) / 243 (test).
        tail: ``"drop"`` or ``"cover"`` (:func:`~repose_ext.data.clips.split_clips`); default ``"drop"`` for
            train and ``"cover"`` for test.
        rng: Seed / generator / None for the resampling of videos shorter than ``n_frames``.

    Returns:
        A :class:`~repose_ext.data.clips.ClipDataset` (skeleton H36M-17). Each sample: ``input`` (T, 17, 3) =
        normalised 2D and confidence 1, ``target`` (T, 17, 3) = normalised 2.5D pose (module docstring),
        ``factor`` (T,) = Z_root / f in mm per px, ``res`` (2,), ``source`` ``"<subject>/<action>/<camera id>"``
        (e.g. ``"S9/Directions 1/54138969"``), ``action`` = the action without its sub-action suffix
        (``"Directions"``), ``frames`` (T,).
    """
    if split not in VIDEOPOSE3D_SUBJECTS:
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    positions_3d, positions_2d = read_videopose3d(path_3d, path_2d)
    subjects = VIDEOPOSE3D_SUBJECTS[split] if subjects is None else tuple(subjects)

    inputs, targets, factors, res, sources, actions = [], [], [], [], [], []
    for subject in subjects:
        if subject not in positions_3d:
            raise DataFormatError(f"positions_3d is missing subject {subject!r}; it has {sorted(positions_3d)}")
        if subject not in positions_2d:
            raise DataFormatError(f"positions_2d is missing subject {subject!r}; it has {sorted(positions_2d)}")
        for action in sorted(positions_3d[subject]):
            where = f"positions_3d[{subject!r}][{action!r}]"
            pos = np.asarray(positions_3d[subject][action], dtype=np.float64)
            if pos.ndim != 3 or pos.shape[1:] != (32, 3):
                raise DataFormatError(f"{where} must have shape (T, 32, 3) (world metres); got {pos.shape}")
            n = pos.shape[0]
            if action not in positions_2d[subject]:
                raise DataFormatError(
                    f"positions_2d[{subject!r}] is missing action {action!r} (present in positions_3d)"
                )
            per_camera = positions_2d[subject][action]
            if len(per_camera) != len(H36M_CAMERA_IDS):
                raise DataFormatError(
                    f"positions_2d[{subject!r}][{action!r}] must be a list of {len(H36M_CAMERA_IDS)} arrays "
                    f"(one per camera); got {len(per_camera)}"
                )
            world = pos[:, list(H36M_32_TO_17)]
            for c, kp in enumerate(per_camera):
                kp = np.asarray(kp, dtype=np.float32)
                where_2d = f"positions_2d[{subject!r}][{action!r}][{c}]"
                if kp.ndim != 3 or kp.shape[1:] != (17, 2):
                    raise DataFormatError(f"{where_2d} must have shape (T2, 17, 2) (pixels); got {kp.shape}")
                if kp.shape[0] < n:
                    raise DataFormatError(
                        f"{where_2d} must have at least the {n} frames of {where}; got {kp.shape[0]}"
                    )
                cam = h36m_camera(subject, c)
                w, h = cam.res
                cam_mm = world_to_camera(world, cam.orientation, cam.translation_m) * 1000.0
                pose_px, factor = camera_to_2_5d(cam_mm, cam.mean_focal_length, cam.center, root=0)
                inp = np.ones((n, 17, 3), dtype=np.float32)
                inp[..., :2] = normalize_image_coordinates(kp[:n], w, h)
                inputs.append(inp)
                targets.append(normalize_image_coordinates(pose_px, w, h).astype(np.float32))
                factors.append(factor.astype(np.float32))
                res.append(np.broadcast_to(np.array([w, h], dtype=np.float32), (n, 2)))
                sources.append(np.full(n, f"{subject}/{action}/{cam.id}", dtype=object))
                actions.append(np.full(n, action.split(" ")[0], dtype=object))

    if not inputs:
        raise DataFormatError(f"no 3D sequences found for subjects {list(subjects)}")
    return ClipDataset(
        np.concatenate(inputs),
        np.concatenate(targets),
        np.concatenate(factors),
        np.concatenate(res),
        np.concatenate(sources),
        np.concatenate(actions),
        n_frames=n_frames,
        stride=VIDEOPOSE3D_STRIDES[split] if stride is None else stride,
        skeleton=H36M_SKELETON,
        tail=_DEFAULT_TAIL[split] if tail is None else tail,
        rng=rng,
    )
