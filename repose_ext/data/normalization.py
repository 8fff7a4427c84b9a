"""MotionBERT's normalised image coordinates and their exact inverse to millimetres.

For a camera of resolution (w, h) a point in pixels (x, y) and a "2.5D" depth z (pixel units, relative to the
root) are normalised as (MotionBERT ``DataReaderH36M``)::

    x_n = x / w * 2 - 1,    y_n = y / w * 2 - h / w,    z_n = z / w * 2

so the image centre maps to (0, 0) and both axes share the scale 2 / w. The inverse is
``px = (n + [1, h / w, 0]) * w / 2`` and millimetres are ``px * factor`` where ``factor`` (mm per px) is the
per-frame "2.5D factor". All functions accept NumPy arrays or torch tensors and never modify their inputs.
"""

from __future__ import annotations

__all__ = [
    "PELVIS_JOINTS",
    "check_scale_frames",
    "denormalize_image_coordinates",
    "normalize_image_coordinates",
    "normalize_keypoints",
    "normalize_target",
    "normalized_to_millimetres",
]

#: H36M-17 joints whose confidence-weighted mean centres a frame in :func:`normalize_keypoints` (pelvis, hips).
PELVIS_JOINTS = (0, 1, 4)


def _check_last_dim(name, pose):
    if pose.shape[-1] not in (2, 3):
        raise ValueError(f"{name} must have shape (..., 2) or (..., 3) (x, y[, z]); got {tuple(pose.shape)}")


def normalize_image_coordinates(pose_px, w, h):
    """Pixels (and 2.5D pixel depth) to MotionBERT normalised coordinates.

    Args:
        pose_px: Points in pixels, x and y (and optionally the 2.5D depth z, in pixels).
        w: Image width in pixels: a number, or an array broadcastable to ``pose_px[..., 0]``.
        h: Image height in pixels, like ``w``.

    Returns:
        A new array of the same type and shape: ``x / w * 2 - 1``, ``y / w * 2 - h / w``, ``z / w * 2``.

    Shape:
        pose_px: (..., 2) or (..., 3). Returns the same shape.
    """
    _check_last_dim("pose_px", pose_px)
    out = pose_px * 1.0  # a new array/tensor, floating point
    out[..., 0] = pose_px[..., 0] / w * 2 - 1
    out[..., 1] = pose_px[..., 1] / w * 2 - h / w
    if pose_px.shape[-1] == 3:
        out[..., 2] = pose_px[..., 2] / w * 2
    return out


def denormalize_image_coordinates(pose_n, w, h):
    """Normalised coordinates back to pixels: the exact inverse of :func:`normalize_image_coordinates`.

    Args:
        pose_n: Normalised points (x_n, y_n[, z_n]).
        w: Image width in pixels: a number, or an array broadcastable to ``pose_n[..., 0]``.
        h: Image height in pixels, like ``w``.

    Returns:
        A new array of the same type and shape: ``(x_n + 1) * w / 2``, ``(y_n + h / w) * w / 2``, ``z_n * w / 2``.

    Shape:
        pose_n: (..., 2) or (..., 3). Returns the same shape.
    """
    _check_last_dim("pose_n", pose_n)
    out = pose_n * 1.0
    out[..., 0] = (pose_n[..., 0] + 1) * w / 2
    out[..., 1] = (pose_n[..., 1] + h / w) * w / 2
    if pose_n.shape[-1] == 3:
        out[..., 2] = pose_n[..., 2] * w / 2
    return out


def normalized_to_millimetres(pose_n, w, h, factor):
    """Normalised 2.5D coordinates to millimetres: pixels times the per-frame 2.5D factor (mm per px).

    The result is what MotionBERT scores (after making it root-relative): for the H36M pickle it equals the
    file's ``joints_2.5d_image``; for the VideoPose3D and MPI-INF-3DHP loaders of this package it is the
    camera-space 3D pose in millimetres up to a per-frame translation (see those modules).

    Args:
        pose_n: Normalised (x_n, y_n, z_n).
        w: Image width in pixels: a number, or an array broadcastable to ``pose_n[..., 0]``.
        h: Image height in pixels, like ``w``.
        factor: mm per px: a number, or an array broadcastable to ``pose_n[..., 0]`` (per frame: add a joint
            axis, e.g. ``factor[..., None]`` for factor (B, T) and pose (B, T, J, 3)).

    Returns:
        The pose in millimetres, same shape.

    Shape:
        pose_n: (..., 3). Returns (..., 3).
    """
    if pose_n.shape[-1] != 3:
        raise ValueError(f"pose_n must have shape (..., 3) (x_n, y_n, z_n); got {tuple(pose_n.shape)}")
    px = denormalize_image_coordinates(pose_n, w, h)
    return px * factor[..., None] if hasattr(factor, "shape") and len(factor.shape) > 0 else px * factor


def normalize_keypoints(keypoints, scores, centre_joints=PELVIS_JOINTS, min_joints=4, scale_frames=1):
    """Pixel keypoints to the lifters' camera-free input: centred on the pelvis, divided by the pose's 2D size.

    The one input normalisation of the generalising lifters, used at training (:mod:`repose_ext.data.augment`)
    and at inference (:mod:`repose_ext.lift`). Per frame, with confidences ``c`` (clipped to [0, 1], non-finite
    -> 0):

    * centre ``o`` = the ``c``-weighted mean of ``centre_joints`` (all joints when those have no weight);
    * size ``s`` = the ``c``-weighted root-mean-square distance of the joints from ``o`` (pixels);
    * ``x_n = (x - o) / s``; joints with ``c = 0`` (missing) get ``x_n = 0``;
    * a frame with fewer than ``min_joints`` confident joints (a missed detection) takes ``s`` from the nearest
      frame of its clip that has enough (the time axis is the one before the joints), or ``s = 1`` when no frame
      has; such a frame's joints with ``c > 0`` are still centred and scaled, the others are 0;
    * with ``scale_frames`` > 1 (odd), each frame is divided instead by the median ``s`` of the frames with
      enough joints within ``scale_frames // 2`` frames of it (fewer at the ends of the time axis), so the
      scale changes slowly over time: a limb that turns towards the camera looks shorter than in the frames
      around it, as it does in the image, where with ``scale_frames = 1`` each frame has unit size.

    No focal length or image size is needed: a pose looks the same to the lifter whatever camera filmed it.
    The 3D target of a lifter trained on this input is in the same units: camera-space millimetres, root-relative,
    times ``f / (Z_root * s)``.

    Args:
        keypoints: pixel coordinates (x, y), NumPy array.
        scores: confidences in [0, 1].
        centre_joints: joints that define the centre.
        min_joints: confident joints a frame needs to define its own size.
        scale_frames: odd number of frames whose median 2D size divides each frame (1: each frame its own).

    Returns:
        ``(inputs, size)``: inputs (..., J, 3) float32 (x_n, y_n, confidence) and size (...,) float64 pixels.

    Shape:
        keypoints: (..., T, J, 2) or (J, 2); scores: (..., T, J) or (J,).
    """
    import numpy as np

    check_scale_frames(scale_frames)
    kp = np.asarray(keypoints, dtype=np.float64)
    c = np.asarray(scores, dtype=np.float64)
    if kp.ndim < 2 or kp.shape[-1] != 2:
        raise ValueError(f"keypoints must have shape (..., J, 2); got {kp.shape}")
    if c.shape != kp.shape[:-1]:
        raise ValueError(f"scores must have shape {kp.shape[:-1]} (one per keypoint); got {c.shape}")
    finite = np.isfinite(kp).all(-1)
    c = np.where(finite & np.isfinite(c), np.clip(c, 0.0, 1.0), 0.0)
    kp = np.where(finite[..., None], kp, 0.0)
    cw = c[..., list(centre_joints)]
    cw_sum = cw.sum(-1, keepdims=True)
    all_sum = c.sum(-1, keepdims=True)
    centre_own = (cw[..., None] * kp[..., list(centre_joints), :]).sum(-2) / np.maximum(cw_sum, 1e-12)
    centre_all = (c[..., None] * kp).sum(-2) / np.maximum(all_sum, 1e-12)
    centre = np.where(cw_sum > 1e-6, centre_own, centre_all)  # (..., 2)
    offset = kp - centre[..., None, :]
    var = (c * (offset ** 2).sum(-1)).sum(-1) / np.maximum(all_sum[..., 0], 1e-12)
    size = np.sqrt(var)
    ok = ((c > 0).sum(-1) >= min_joints) & (size > 1e-6)
    if size.ndim >= 1 and size.shape[-1] > 0:
        if scale_frames > 1:
            size = np.where(ok, _window_median(np.where(ok, size, np.nan), scale_frames), size)
        size = _nearest_valid(size, ok)
    size = np.where(np.isfinite(size) & (size > 1e-6), size, 1.0)
    xy = np.where((c > 0)[..., None], offset / size[..., None, None], 0.0)
    return np.concatenate([xy, c[..., None]], axis=-1).astype(np.float32), size


def check_scale_frames(scale_frames) -> int:
    """``scale_frames`` of :func:`normalize_keypoints` if it is an odd positive int, else a ValueError."""
    if isinstance(scale_frames, bool) or not isinstance(scale_frames, int) or scale_frames < 1 \
            or scale_frames % 2 == 0:
        raise ValueError(f"scale_frames must be an odd positive int; got {scale_frames!r}")
    return scale_frames


def _window_median(values, frames):
    """Along the last axis, the median of the finite values within ``frames // 2`` of each position (NaN where
    there are none)."""
    import warnings

    import numpy as np

    half = frames // 2
    pad = [(0, 0)] * (values.ndim - 1) + [(half, half)]
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(values, pad, constant_values=np.nan), frames, axis=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows: NaN, handled by the caller
        return np.nanmedian(windows, axis=-1)


def _nearest_valid(values, ok):
    """Along the last axis, replace values where ``ok`` is False by the nearest (earlier on ties) valid value;
    NaN where a row has no valid value."""
    import numpy as np

    t = values.shape[-1]
    idx = np.broadcast_to(np.arange(t), values.shape)
    prev = np.maximum.accumulate(np.where(ok, idx, -1), axis=-1)
    nxt = np.flip(np.minimum.accumulate(np.flip(np.where(ok, idx, t), -1), axis=-1), -1)
    use_prev = (prev >= 0) & ((nxt >= t) | (idx - prev <= nxt - idx))
    src = np.where(use_prev, prev, np.where(nxt < t, nxt, 0))
    filled = np.take_along_axis(values, src, axis=-1)
    return np.where(ok, values, np.where((prev >= 0) | (nxt < t), filled, np.nan))


def normalize_target(joints_cam, size, focal, root=0):
    """The 3D target that matches :func:`normalize_keypoints`, and its millimetres per unit.

    The pose is first turned, per frame, by the smallest rotation that brings the pelvis onto the optical axis
    (a virtual camera looking at the subject; the identity for a centred subject): the input is centred on the
    pelvis and carries no image position, so the lifter could not know how far off-axis the subject was. Then
    ``target = (X - X_root) * f / (Z_root * s)`` for x, y and z in that frame: the root-relative pose at the scale
    of the 2D input (weak perspective at the root's distance). ``target * factor`` with
    ``factor = s * |X_root| / f`` is the root-relative pose in millimetres, exactly (in the turned frame).

    Args:
        joints_cam: camera-space joints in mm (z forward, positive).
        size: the 2D size ``s`` of each frame (pixels), from :func:`normalize_keypoints`.
        focal: focal length in pixels: a number or one per leading index (broadcast against ``size``).
        root: root joint.

    Returns:
        ``(target, factor)``: (..., J, 3) float32 and (...,) float32 mm per unit.

    Shape:
        joints_cam: (..., J, 3); size: (...,).
    """
    import numpy as np

    joints = np.asarray(joints_cam, dtype=np.float64)
    ray = joints[..., root, :]
    dist = np.linalg.norm(ray, axis=-1)
    u = ray / np.maximum(dist, 1e-9)[..., None]
    # Rodrigues for the rotation taking u to e_z: axis u x e_z = (u_y, -u_x, 0), cos = u_z.
    ax, ay, cos = u[..., 1], -u[..., 0], u[..., 2]
    k = np.zeros(u.shape[:-1] + (3, 3))
    k[..., 0, 2], k[..., 1, 2], k[..., 2, 0], k[..., 2, 1] = ay, -ax, -ay, ax
    rot = np.eye(3) + k + (k @ k) / np.maximum(1.0 + cos, 1e-9)[..., None, None]
    joints = np.einsum("...ij,...kj->...ki", rot, joints)
    z_root = joints[..., root, 2]
    factor = np.asarray(size, dtype=np.float64) * z_root / np.asarray(focal, dtype=np.float64)
    target = (joints - joints[..., root:root + 1, :]) / factor[..., None, None]
    return target.astype(np.float32), factor.astype(np.float32)
