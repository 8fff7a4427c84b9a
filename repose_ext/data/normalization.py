"""MotionBERT's normalised image coordinates and their exact inverse to millimetres.

For a camera of resolution (w, h) a point in pixels (x, y) and a "2.5D" depth z (pixel units, relative to the
root) are normalised as (spec §4a, MotionBERT ``DataReaderH36M``)::

    x_n = x / w * 2 - 1,    y_n = y / w * 2 - h / w,    z_n = z / w * 2

so the image centre maps to (0, 0) and both axes share the scale 2 / w. The inverse is
``px = (n + [1, h / w, 0]) * w / 2`` and millimetres are ``px * factor`` where ``factor`` (mm per px) is the
per-frame "2.5D factor". All functions accept NumPy arrays or torch tensors and never modify their inputs.
"""

from __future__ import annotations

__all__ = ["denormalize_image_coordinates", "normalize_image_coordinates", "normalized_to_millimetres"]


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
