"""Tiny synthetic files with exactly the schemas of the real data files (keys, dtypes, nesting), for tests.

Not part of the package. Values are random but physically plausible (people in front of the cameras); the
``make_*`` functions return the in-memory structures (tests can damage them before writing) and the
``write_*`` functions store them in the real container formats (pickle / npz of pickled dicts).
"""

from __future__ import annotations

import pickle
from typing import Dict, Iterable, Mapping, Sequence, Tuple

import numpy as np

H36M_CAMERA_IDS = ("54138969", "55011271", "58860488", "60457274")
H36M_KEPT_32 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
H36M_SYMMETRY = [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]


def write_pickle(data, path) -> None:
    """Store ``data`` with pickle (the MotionBERT pickle container)."""
    with open(path, "wb") as f:
        pickle.dump(data, f)


def write_npz(path, **entries) -> None:
    """Store dicts in an npz the way VideoPose3D / P-STMO do (``np.savez_compressed(path, key=dict)``)."""
    np.savez_compressed(path, **entries)


def make_h36m_motionbert_split(
    videos: Sequence[Tuple[str, str, int, str]], seed: int = 0, confidence_3d: bool = False
) -> Dict[str, np.ndarray]:
    """One split of ``h36m_sh_conf_cam_source_final.pkl``.

    Args:
        videos: (source, camera_name, n_frames, action) per video, in file order.
        seed: RNG seed.
        confidence_3d: Store ``confidence`` as (N, 17, 1) instead of (N, 17).

    Returns:
        Dict of per-frame arrays: joint_2d float32 (N,17,2) px, confidence float32, joint3d_image float32
        (N,17,3) (root z = 0), joints_2.5d_image float32 (N,17,3) = joint3d_image * factor, 2.5d_factor float32
        (N,), camera_name / source / action str arrays (N,).
    """
    rng = np.random.default_rng(seed)
    n = sum(v[2] for v in videos)
    joint3d = np.empty((n, 17, 3), dtype=np.float32)
    joint3d[..., :2] = rng.uniform(100, 900, size=(n, 17, 2))
    joint3d[..., 2] = rng.uniform(-60, 60, size=(n, 17))
    joint3d[:, 0, 2] = 0.0
    factor = rng.uniform(3.5, 5.5, size=n).astype(np.float32)
    joint_2d = (joint3d[..., :2] + rng.normal(0, 5, size=(n, 17, 2))).astype(np.float32)
    confidence = rng.uniform(0.2, 1.0, size=(n, 17) + ((1,) if confidence_3d else ())).astype(np.float32)
    camera_name = np.concatenate([np.full(v[2], v[1]) for v in videos]) if videos else np.zeros(0, str)
    source = np.concatenate([np.full(v[2], v[0]) for v in videos]) if videos else np.zeros(0, str)
    action = np.concatenate([np.full(v[2], v[3]) for v in videos]) if videos else np.zeros(0, str)
    return {
        "joint_2d": joint_2d,
        "confidence": confidence,
        "joint3d_image": joint3d,
        "joints_2.5d_image": (joint3d * factor[:, None, None]).astype(np.float32),
        "2.5d_factor": factor,
        "camera_name": camera_name,
        "source": source,
        "action": action,
    }


def make_h36m_motionbert(train_videos, test_videos, seed: int = 0, confidence_3d: bool = False) -> dict:
    """The whole MotionBERT pickle: ``{"train": split, "test": split}`` (see :func:`make_h36m_motionbert_split`)."""
    return {
        "train": make_h36m_motionbert_split(train_videos, seed, confidence_3d),
        "test": make_h36m_motionbert_split(test_videos, seed + 1, confidence_3d),
    }


def make_videopose3d_3d(lengths: Mapping[str, Mapping[str, int]], seed: int = 0) -> Dict[str, Dict[str, np.ndarray]]:
    """``positions_3d`` of ``data_3d_h36m.npz``: subject -> action -> float32 (T, 32, 3), world metres.

    The 17 kept joints are a random body around a pelvis near (0, 0, 0.9 m) (inside the H36M capture volume);
    the 15 removed joints hold 1000 m so that using one of them would show.
    """
    rng = np.random.default_rng(seed)
    out: Dict[str, Dict[str, np.ndarray]] = {}
    for subject, actions in lengths.items():
        out[subject] = {}
        for action, t in actions.items():
            pos = np.full((t, 32, 3), 1000.0, dtype=np.float32)
            pelvis = np.array([0.0, 0.0, 0.9]) + rng.uniform(-0.8, 0.8, size=(t, 3)) * [1, 1, 0.2]
            offsets = rng.uniform(-0.7, 0.7, size=(t, 17, 3))
            offsets[:, 0] = 0.0
            pos[:, list(H36M_KEPT_32)] = pelvis[:, None, :] + offsets
            out[subject][action] = pos
    return out


def make_videopose3d_2d(
    positions_3d: Mapping[str, Mapping[str, np.ndarray]], extra_frames: Iterable[int] = (0, 1, 2, 3), seed: int = 0
) -> Dict[str, Dict[str, list]]:
    """``positions_2d`` for the same subjects/actions: list of 4 float32 (T + extra_frames[c], 17, 2) pixels."""
    rng = np.random.default_rng(seed)
    extra = list(extra_frames)
    return {
        subject: {
            action: [rng.uniform(0, 1000, size=(pos.shape[0] + extra[c], 17, 2)).astype(np.float32) for c in range(4)]
            for action, pos in actions.items()
        }
        for subject, actions in positions_3d.items()
    }


def videopose3d_metadata() -> dict:
    """The ``metadata`` entry of VideoPose3D's generic 2D files."""
    return {"layout_name": "h36m", "num_joints": 17, "keypoints_symmetry": [list(s) for s in H36M_SYMMETRY]}


def _mpi_pose(rng, f: int, w: int, h: int):
    kp = rng.uniform([0, 0], [w, h], size=(f, 17, 2)).astype(np.float32)
    pos = rng.uniform(-900, 900, size=(f, 17, 3)).astype(np.float32)
    pos[..., 2] += 4000.0  # camera-space mm, in front of the camera
    return kp, pos


def make_mpi_inf_3dhp_train(lengths: Mapping[str, Mapping[str, int]], seed: int = 0) -> dict:
    """``data`` of ``data_train_3dhp.npz``: "S<k> Seq<m>" -> [cam_dict, fps], cam id -> {data_2d, data_3d}."""
    rng = np.random.default_rng(seed)
    out = {}
    for seq, cams in lengths.items():
        cam_dict = {}
        for cam, f in cams.items():
            kp, pos = _mpi_pose(rng, f, 2048, 2048)
            cam_dict[cam] = {"data_2d": kp, "data_3d": pos}
        out[seq] = [cam_dict, 25]
    return out


def make_mpi_inf_3dhp_test(lengths: Mapping[str, int], seed: int = 0) -> dict:
    """``data`` of ``data_test_3dhp.npz``: "TS<k>" -> {data_2d, data_3d, valid (T,) float 0/1}."""
    rng = np.random.default_rng(seed)
    out = {}
    for seq, t in lengths.items():
        w, h = (1920, 1080) if seq in ("TS5", "TS6") else (2048, 2048)
        kp, pos = _mpi_pose(rng, t, w, h)
        valid = (rng.uniform(size=t) < 0.7).astype(np.float64)
        out[seq] = {"data_2d": kp, "data_3d": pos, "valid": valid}
    return out
