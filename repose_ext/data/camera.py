"""Camera geometry for the loaders: quaternion rotations, world <-> camera, and the 2.5D pose of a camera.

All functions take and return NumPy arrays (float64 arithmetic) and never modify their inputs.

The 2.5D representation (:func:`camera_to_2_5d`) is how this package turns camera-space 3D (VideoPose3D's
files) into the clip contract of MotionBERT, where a pose is stored in pixels with a per-frame
factor (mm per px). With the root joint r at depth Z_r, focal length f and principal point (c_x, c_y)::

    x_px = c_x + f * X / Z_r,   y_px = c_y + f * Y / Z_r,   z_px = f * (Z - Z_r) / Z_r,   factor = Z_r / f

i.e. every joint is projected with the scale of the root's depth (a scaled-orthographic camera centred on the
root): the root lands exactly on its pinhole projection, and ``(px - px_root) * factor`` is exactly the
root-relative camera-space pose ``X - X_r`` in mm, so MotionBERT's metric conversion (denormalise, times
factor, root-relative) gives the standard camera-space MPJPE. It differs from LCN's 2.5D in MotionBERT's H36M
pickle, whose x, y are the perspective projections of every joint, so that the pickle's "mm" are
``X * Z_r / Z - X_r`` rather than ``X - X_r`` (a few mm for joints off the root plane). One focal length is
used for both axes (the mean of f_x and f_y, which differ by 0.1 % for Human3.6M) so the inverse is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple, Union

import numpy as np

from .h36m_cameras import (
    H36M_CAMERA_EXTRINSICS,
    H36M_CAMERA_IDS,
    H36M_CAMERA_INTRINSICS,
    H36M_CAMERA_RESOLUTION,
)

__all__ = [
    "H36MCamera",
    "camera_to_2_5d",
    "camera_to_world",
    "h36m_camera",
    "quaternion_inverse",
    "quaternion_rotate",
    "world_to_camera",
]


def _as_quaternion(q) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    if q.shape[-1:] != (4,):
        raise ValueError(f"quaternion must have shape (..., 4) (w, x, y, z); got {q.shape}")
    return q


def quaternion_inverse(q) -> np.ndarray:
    """Inverse of a unit quaternion (its conjugate).

    Args:
        q: Unit quaternions (w, x, y, z).

    Returns:
        (w, -x, -y, -z).

    Shape:
        q: (..., 4). Returns (..., 4).
    """
    q = _as_quaternion(q)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quaternion_rotate(q, v) -> np.ndarray:
    """Rotate 3D vectors by unit quaternions: ``v' = q v q*``.

    Uses ``v' = v + 2 w (u x v) + 2 u x (u x v)`` with ``q = (w, u)``.

    Args:
        q: Unit quaternions (w, x, y, z), broadcastable against ``v[..., :1]``'s leading dimensions.
        v: Vectors (x, y, z).

    Returns:
        The rotated vectors, float64.

    Shape:
        q: (..., 4), v: (..., 3). Returns the broadcast shape (..., 3).
    """
    q = _as_quaternion(q)
    v = np.asarray(v, dtype=np.float64)
    if v.shape[-1:] != (3,):
        raise ValueError(f"v must have shape (..., 3); got {v.shape}")
    w, u = q[..., :1], q[..., 1:]
    uv = np.cross(u, v)
    return v + 2.0 * (w * uv + np.cross(u, uv))


def world_to_camera(points, orientation, translation) -> np.ndarray:
    """World coordinates to camera coordinates: ``X_cam = rot(q^-1, X_world - t)``.

    Args:
        points: Points in world coordinates.
        orientation: Camera-to-world rotation as a unit quaternion (w, x, y, z).
        translation: Camera centre in world coordinates, in the unit of ``points``.

    Returns:
        Points in the camera frame (x right, y down, z forward), float64, same unit as ``points``.

    Shape:
        points: (..., 3), orientation: (4,), translation: (3,). Returns (..., 3).
    """
    q = quaternion_inverse(orientation)
    t = np.asarray(translation, dtype=np.float64)
    if t.shape != (3,):
        raise ValueError(f"translation must have shape (3,); got {t.shape}")
    if q.shape != (4,):
        raise ValueError(f"orientation must have shape (4,) (w, x, y, z); got {q.shape}")
    return quaternion_rotate(q, np.asarray(points, dtype=np.float64) - t)


def camera_to_world(points, orientation, translation) -> np.ndarray:
    """Camera coordinates to world coordinates: ``X_world = rot(q, X_cam) + t``; inverse of :func:`world_to_camera`.

    Args:
        points: Points in the camera frame.
        orientation: Camera-to-world rotation as a unit quaternion (w, x, y, z).
        translation: Camera centre in world coordinates, in the unit of ``points``.

    Returns:
        Points in world coordinates, float64.

    Shape:
        points: (..., 3), orientation: (4,), translation: (3,). Returns (..., 3).
    """
    q = _as_quaternion(orientation)
    t = np.asarray(translation, dtype=np.float64)
    if t.shape != (3,):
        raise ValueError(f"translation must have shape (3,); got {t.shape}")
    if q.shape != (4,):
        raise ValueError(f"orientation must have shape (4,) (w, x, y, z); got {q.shape}")
    return quaternion_rotate(q, np.asarray(points, dtype=np.float64)) + t


def camera_to_2_5d(points_mm, focal_length: float, center: Tuple[float, float], root: int = 0):
    """Camera-space 3D joints (mm) to the 2.5D pixel pose and factor described in the module docstring.

    Args:
        points_mm: Joints in the camera frame, millimetres; the root must be in front of the camera (Z_r > 0).
        focal_length: One focal length in pixels, used for both axes.
        center: Principal point (c_x, c_y) in pixels.
        root: Index of the root joint.

    Returns:
        ``(pose_px, factor)``: the pose (x_px, y_px, z_px) in pixels (z relative to the root, so the root's
        z is 0) and the factor Z_r / f in mm per px, both float64.

    Shape:
        points_mm: (..., J, 3). Returns pose_px (..., J, 3) and factor (...).
    """
    p = np.asarray(points_mm, dtype=np.float64)
    if p.ndim < 2 or p.shape[-1] != 3:
        raise ValueError(f"points_mm must have shape (..., J, 3); got {p.shape}")
    if not -p.shape[-2] <= root < p.shape[-2]:
        raise ValueError(f"root must index one of the {p.shape[-2]} joints; got {root}")
    z_root = p[..., root, 2]
    if not np.all(z_root > 0):
        bad = int(np.argmin(z_root.reshape(-1)))
        raise ValueError(
            f"points_mm: the root joint must be in front of the camera (Z > 0); got Z = {z_root.reshape(-1)[bad]} "
            f"at flat frame {bad}"
        )
    scale = focal_length / z_root[..., None]  # px per mm, per frame
    pose = np.empty_like(p)
    pose[..., 0] = center[0] + p[..., 0] * scale
    pose[..., 1] = center[1] + p[..., 1] * scale
    pose[..., 2] = (p[..., 2] - z_root[..., None]) * scale
    return pose, z_root / focal_length


@dataclass(frozen=True)
class H36MCamera:
    """One Human3.6M camera of one subject.

    Attributes:
        id: Camera id, e.g. ``"54138969"``.
        index: Position 0..3 of the id in :data:`~repose_ext.data.h36m_cameras.H36M_CAMERA_IDS`.
        res: (width, height) in pixels.
        focal_length: (f_x, f_y) in pixels.
        center: (c_x, c_y) in pixels.
        orientation: Camera-to-world unit quaternion (w, x, y, z) (the table's value, normalised).
        translation_m: Camera centre in world coordinates, metres.
    """

    id: str
    index: int
    res: Tuple[int, int]
    focal_length: Tuple[float, float]
    center: Tuple[float, float]
    orientation: Tuple[float, float, float, float]
    translation_m: Tuple[float, float, float]

    @property
    def mean_focal_length(self) -> float:
        """(f_x + f_y) / 2, the single focal length used by :func:`camera_to_2_5d`."""
        return 0.5 * (self.focal_length[0] + self.focal_length[1])


def h36m_camera(subject: str, camera: Union[int, str]) -> H36MCamera:
    """Look up a Human3.6M camera in the bundled table.

    Args:
        subject: ``"S1"``, ``"S5"``, ``"S6"``, ``"S7"``, ``"S8"``, ``"S9"`` or ``"S11"``.
        camera: Camera index 0..3 or camera id string.

    Returns:
        The camera, with the translation converted from mm to metres and the quaternion normalised to unit norm
        (the table's 6-decimal values are off by up to ~1e-6).
    """
    if subject not in H36M_CAMERA_EXTRINSICS:
        raise KeyError(
            f"subject must be one of {sorted(H36M_CAMERA_EXTRINSICS)} (subjects with published extrinsics); "
            f"got {subject!r}"
        )
    if isinstance(camera, str):
        if camera not in H36M_CAMERA_IDS:
            raise KeyError(f"camera must be one of {list(H36M_CAMERA_IDS)} or an index 0..3; got {camera!r}")
        index = H36M_CAMERA_IDS.index(camera)
    else:
        index = int(camera)
        if not 0 <= index < len(H36M_CAMERA_IDS):
            raise KeyError(f"camera index must be in 0..3; got {camera!r}")
    cam_id = H36M_CAMERA_IDS[index]
    q, t_mm = H36M_CAMERA_EXTRINSICS[subject][index]
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q)
    intr = H36M_CAMERA_INTRINSICS[cam_id]
    return H36MCamera(
        id=cam_id,
        index=index,
        res=H36M_CAMERA_RESOLUTION[cam_id],
        focal_length=tuple(intr["focal_length"]),
        center=tuple(intr["center"]),
        orientation=tuple(float(x) for x in q),
        translation_m=tuple(float(x) / 1000.0 for x in t_mm),
    )
