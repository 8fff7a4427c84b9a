"""The embedded motion-capture clips seen by virtual cameras, with detector-like 2D inputs.

The package ships 15 real motion-capture clips (DeepMimic, converted to the H36M 17-joint skeleton
at 50 Hz by ``scripts/convert_deepmimic.py``; world frame right-handed, z up, millimetres; credits
in ``repose_ext/assets/NOTICE.md``). This module films them with virtual pinhole cameras and makes
the 2D inputs a detector would give:

* **Cameras.** Human3.6M-like intrinsics (focal 1145 px, 1000 x 1000 px, principal point at the
  image centre, no distortion). For every clip, one camera per (azimuth, height) pair, at a
  horizontal distance drawn from a range (pushed back when needed so that the whole clip stays in
  the image), looking at the centre of the clip's 3D bounding box. Camera axes: x right, y down,
  z forward (pixel y grows downwards, as in Human3.6M).
* **Targets.** The MotionBERT 2.5D representation (the clip contract of :mod:`repose_ext.data`):
  ``x_n = u / w * 2 - 1``, ``y_n = v / w * 2 - h / w``, ``z_n = (Z - Z_root) * f / Z_root / w * 2``
  per frame, with ``factor = Z_root / f`` millimetres per pixel. By default (u, v) scale every
  joint with the root's depth, the package's convention for 3D ground truth
  (:func:`repose_ext.data.camera.camera_to_2_5d`), so the metric conversion is exact; the inputs
  are true pinhole projections. ``perspective_target=True`` uses pinhole (u, v) for the target too.
* **Clips.** :class:`SyntheticViewsDataset` is a :class:`repose_ext.data.clips.ClipDataset`
  (same slicing, ``skeleton`` with flip lists, sample contract) plus an ``occluded`` mask.
* **Occlusion.** Self-occlusion from the 3D geometry: the body is a set of capsules (torso, head,
  upper and lower limbs); a joint is hidden when the camera ray to it passes through a capsule of a
  body part the joint does not belong to. Random occluder boxes in the image hide the joints inside
  them for part of the video. Joints outside the image are flagged occluded too.
* **Detector noise.** Visible joints: Gaussian noise of a few pixels (heavier for wrists, ankles,
  hips and the spine; scaled with the person's size in the image), rare outliers, confidence that
  drops with the error. Occluded joints: a larger perturbation and a low confidence (0.05 - 0.35).

Everything is drawn from numpy generators seeded by ``(seed, clip, camera)``: the same arguments
give bit-identical samples, and adding or removing clips does not change the others.

Split by clip (held-out actions): test = ``TEST_CLIPS`` (dance_b, getup_faceup, punch: 423 of
1,684 frames), train = the 12 other clips. Each held-out action has a related one in training
(dance_a; getup_facedown; kick) but is never seen itself.
"""

import dataclasses
import functools
import importlib.resources
import os
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from .camera import camera_to_2_5d
from .clips import ClipDataset
from .normalization import check_scale_frames, normalize_image_coordinates, normalize_keypoints, normalize_target
from .skeleton import H36M_SKELETON

NUM_JOINTS = 17
ROOT = 0

ALL_CLIPS = (
    "backflip", "cartwheel", "crawl", "dance_a", "dance_b", "getup_facedown", "getup_faceup", "jump",
    "kick", "punch", "roll", "run", "spin", "spinkick", "walk",
)
TEST_CLIPS = ("dance_b", "getup_faceup", "punch")
TRAIN_CLIPS = tuple(c for c in ALL_CLIPS if c not in TEST_CLIPS)

H36M_FOCAL_PX = 1145.0
H36M_RESOLUTION = (1000, 1000)

# Body parts for self-occlusion: (name, joints that belong to the part, capsules). A capsule is
# (endpoint a, endpoint b, radius in mm); an endpoint is a joint index or {joint: weight} (a point
# between joints). A joint is never hidden by a capsule of a part it belongs to; the pelvis (an
# inner point between the hips) also belongs to both thighs and the thorax (between the shoulders)
# to both upper arms. The torso is a pelvis capsule, a spine capsule (its depth) and two side
# capsules from each hip to a point a quarter of the way from the shoulder to the thorax. The head is a
# sphere of radius 100 mm centred 0.175 m above the neck (0.35 * thorax + 0.65 * head top with the
# converter's offsets); the nose tip is 0.113 m from that centre, just outside the sphere, and belongs
# to no part, so the head hides it from cameras more than about 120 degrees from the face direction.
_HEAD_CENTRE = {8: 0.35, 10: 0.65}
_BODY_PARTS = (
    ("torso", (0, 1, 4, 7, 8, 11, 14), (
        (1, 4, 90.0), (0, 8, 110.0), (1, {14: 0.75, 8: 0.25}, 65.0), (4, {11: 0.75, 8: 0.25}, 65.0), (11, 14, 60.0),
    )),
    ("head", (8, 10), ((8, _HEAD_CENTRE, 50.0), (_HEAD_CENTRE, _HEAD_CENTRE, 100.0))),
    ("right_thigh", (0, 1, 2), ((1, 2, 75.0),)),
    ("right_shin", (2, 3), ((2, 3, 55.0),)),
    ("left_thigh", (0, 4, 5), ((4, 5, 75.0),)),
    ("left_shin", (5, 6), ((5, 6, 55.0),)),
    ("left_upper_arm", (8, 11, 12), ((11, 12, 50.0),)),
    ("left_forearm", (12, 13), ((12, 13, 40.0),)),
    ("right_upper_arm", (8, 14, 15), ((14, 15, 50.0),)),
    ("right_forearm", (15, 16), ((15, 16, 40.0),)),
)

# Per-joint multipliers of the detector noise (H36M-17 order): wrists and ankles are the hardest
# keypoints for 2D detectors, hips and the spine (not a visible landmark) are poorly localised.
_JOINT_NOISE_SCALE = (1.2, 1.4, 1.1, 1.4, 1.4, 1.1, 1.4, 1.6, 1.0, 0.7, 1.0, 0.9, 1.2, 1.7, 0.9, 1.2, 1.7)


@dataclasses.dataclass(frozen=True)
class PinholeCamera:
    """A distortion-free pinhole camera.

    Camera axes: x right, y down, z forward; world points map to camera space by
    ``X_cam = rotation @ (X_world - position)`` and to pixels by ``u = f X / Z + cx``,
    ``v = f Y / Z + cy``.

    Attributes:
        rotation: (3, 3) world-to-camera rotation.
        position: (3,) camera centre in world coordinates, mm.
        focal: focal length in pixels (fx = fy).
        principal: principal point (cx, cy) in pixels.
        width: image width in pixels.
        height: image height in pixels.
        name: identifier used in sample ``source`` strings.
    """

    rotation: np.ndarray
    position: np.ndarray
    focal: float = H36M_FOCAL_PX
    principal: Tuple[float, float] = (500.0, 500.0)
    width: int = H36M_RESOLUTION[0]
    height: int = H36M_RESOLUTION[1]
    name: str = "cam"

    def world_to_camera(self, points):
        """Camera-space coordinates of world points.

        Args:
            points: world coordinates, mm.

        Returns:
            Camera coordinates, mm (x right, y down, z forward).

        Shape:
            points: (..., 3) -> (..., 3).
        """
        points = np.asarray(points, dtype=np.float64)
        if points.shape[-1] != 3:
            raise ValueError(f"points must have shape (..., 3); got {points.shape}")
        return (points - self.position) @ self.rotation.T

    def project(self, points_cam):
        """Pixel coordinates of camera-space points.

        Args:
            points_cam: camera coordinates, mm; z must be positive.

        Returns:
            Pixel coordinates (u, v).

        Shape:
            points_cam: (..., 3) -> (..., 2).
        """
        points_cam = np.asarray(points_cam, dtype=np.float64)
        if points_cam.shape[-1] != 3:
            raise ValueError(f"points_cam must have shape (..., 3); got {points_cam.shape}")
        depth = points_cam[..., 2]
        if np.any(depth <= 0):
            raise ValueError(f"points_cam must lie in front of the camera (z > 0); got min z {depth.min():.1f} mm")
        uv = self.focal * points_cam[..., :2] / depth[..., None]
        return uv + np.asarray(self.principal, dtype=np.float64)


def look_at_camera(position, target, *, focal=H36M_FOCAL_PX, resolution=H36M_RESOLUTION, name="cam"):
    """A camera at ``position`` looking at ``target``, image upright with respect to world z up.

    Args:
        position: (3,) camera centre, world mm.
        target: (3,) point on the optical axis, world mm.
        focal: focal length in pixels.
        resolution: (width, height) in pixels; the principal point is the image centre.
        name: camera identifier.

    Returns:
        A :class:`PinholeCamera`.
    """
    position = np.asarray(position, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if position.shape != (3,) or target.shape != (3,):
        raise ValueError(f"position and target must have shape (3,); got {position.shape} and {target.shape}")
    forward = target - position
    norm = np.linalg.norm(forward)
    if norm < 1e-9:
        raise ValueError("position and target must differ")
    forward = forward / norm
    right = np.cross(forward, [0.0, 0.0, 1.0])
    if np.linalg.norm(right) < 1e-6:
        raise ValueError("the camera must not look straight up or down (forward parallel to world z)")
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    width, height = resolution
    return PinholeCamera(
        rotation=np.stack([right, down, forward]),
        position=position,
        focal=float(focal),
        principal=(width / 2.0, height / 2.0),
        width=int(width),
        height=int(height),
        name=name,
    )


def camera_rig_for_clip(
    joints_world,
    rng,
    *,
    azimuths_deg=(0, 45, 90, 135, 180, 225, 270, 315),
    heights_mm=(800.0, 1600.0, 2600.0),
    distance_range_mm=(3500.0, 6500.0),
    azimuth_jitter_deg=10.0,
    focal=H36M_FOCAL_PX,
    resolution=H36M_RESOLUTION,
    fill=0.9,
):
    """Static cameras around one clip, one per (azimuth, height) pair.

    Each camera looks at the centre of the clip's 3D bounding box from a horizontal distance drawn
    uniformly from ``distance_range_mm``, increased where needed so that the clip's extent (its
    largest horizontal distance from the centre, and half its height) projects within ``fill`` of
    the half image. Azimuth 0 is the +x axis, where the characters start facing.

    Args:
        joints_world: (N, 17, 3) world joints of the clip, mm, z up.
        rng: ``numpy.random.Generator`` for distances and azimuth jitter.
        azimuths_deg: camera azimuths in degrees, each jittered uniformly by +-azimuth_jitter_deg.
        heights_mm: camera heights above the floor, mm.
        distance_range_mm: (min, max) horizontal distance to the clip centre, mm.
        azimuth_jitter_deg: jitter of the azimuths in degrees.
        focal: focal length in pixels.
        resolution: (width, height) in pixels.
        fill: fraction of the half image the clip may use, in (0, 1].

    Returns:
        List of :class:`PinholeCamera`, azimuth-major.
    """
    joints_world = np.asarray(joints_world, dtype=np.float64)
    if joints_world.ndim != 3 or joints_world.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"joints_world must have shape (N, 17, 3); got {joints_world.shape}")
    low, high = distance_range_mm
    if not 0 < low <= high:
        raise ValueError(f"distance_range_mm must be (min, max) with 0 < min <= max; got {distance_range_mm}")
    lo, hi = joints_world.reshape(-1, 3).min(0), joints_world.reshape(-1, 3).max(0)
    centre = (lo + hi) / 2.0
    radius = np.linalg.norm(joints_world[..., :2] - centre[:2], axis=-1).max()
    half_height = (hi[2] - lo[2]) / 2.0
    width, height = resolution
    cameras = []
    for azimuth in azimuths_deg:
        for cam_height in heights_mm:
            angle = np.deg2rad(azimuth + rng.uniform(-azimuth_jitter_deg, azimuth_jitter_deg))
            distance = rng.uniform(low, high)
            # Nearest possible depth is distance - radius: bound the projected half extents there.
            needed = radius + focal * max(radius / (fill * width / 2.0), half_height / (fill * height / 2.0))
            distance = max(distance, needed)
            position = centre + np.array([distance * np.cos(angle), distance * np.sin(angle), 0.0])
            position[2] = cam_height
            name = f"az{int(round(azimuth)):03d}_h{int(round(cam_height)):04d}"
            cameras.append(look_at_camera(position, centre, focal=focal, resolution=resolution, name=name))
    return cameras


def camera_to_normalized_2p5d(points_cam, camera, root=ROOT, perspective=False):
    """The normalised 2.5D target of camera-space joints and its per-frame mm-per-pixel factor.

    The depth is ``(Z - Z_root) * f / Z_root`` pixels and ``factor = Z_root / f`` (spec section 4a).
    x, y are, by default, the package's convention (:func:`repose_ext.data.camera.camera_to_2_5d`,
    as for VideoPose3D data): every joint projected with the root's depth, so that
    :func:`repose_ext.data.normalization.normalized_to_millimetres` minus the root is exactly the
    root-relative camera-space pose in mm. With ``perspective=True`` they are the pinhole
    projections of each joint instead (as in MotionBERT's Human3.6M pickle). All three channels are
    normalised by :func:`repose_ext.data.normalization.normalize_image_coordinates`.

    Args:
        points_cam: camera-space joints, mm.
        camera: the :class:`PinholeCamera` that sees them.
        root: index of the root joint.
        perspective: x, y from the per-joint pinhole projection instead of the root-depth scaling.

    Returns:
        (normalised 2.5D joints, factor in mm per pixel).

    Shape:
        points_cam: (T, J, 3) -> ((T, J, 3), (T,)).
    """
    points_cam = np.asarray(points_cam, dtype=np.float64)
    if points_cam.ndim != 3 or points_cam.shape[-1] != 3:
        raise ValueError(f"points_cam must have shape (T, J, 3); got {points_cam.shape}")
    pose_px, factor = camera_to_2_5d(points_cam, camera.focal, camera.principal, root=root)
    if perspective:
        pose_px[..., :2] = camera.project(points_cam)
    return normalize_image_coordinates(pose_px, camera.width, camera.height), factor


def _endpoint_weights(endpoint):
    weights = np.zeros(NUM_JOINTS)
    if isinstance(endpoint, dict):
        for joint, weight in endpoint.items():
            weights[joint] = weight
    else:
        weights[endpoint] = 1.0
    return weights


@functools.lru_cache(maxsize=None)
def _capsule_tables():
    """Capsule endpoint weights (K, 17) x 2, radii (K,), and the (17, K) mask of a joint's own capsules."""
    starts, ends, radii, own = [], [], [], []
    for _, members, capsules in _BODY_PARTS:
        for a, b, radius in capsules:
            starts.append(_endpoint_weights(a))
            ends.append(_endpoint_weights(b))
            radii.append(radius)
            own.append([j in members for j in range(NUM_JOINTS)])
    return np.stack(starts), np.stack(ends), np.array(radii), np.array(own).T


def _ray_segment_distance(eye, ray_end, seg_a, seg_b):
    """Smallest distance between the segments [eye, ray_end[t, j]] and [seg_a[t, k], seg_b[t, k]].

    Closest points of two segments (Ericson, Real-Time Collision Detection, 5.1.9), written with
    per-pair dot products only, so the (T, J, K) work is two batched matrix products.

    Shape:
        eye: (3,); ray_end: (T, J, 3); seg_a, seg_b: (T, K, 3) -> (T, J, K).
    """
    d1 = ray_end - eye  # (T, J, 3)
    d2 = seg_b - seg_a  # (T, K, 3)
    r = eye - seg_a  # (T, K, 3)
    a = np.einsum("tjc,tjc->tj", d1, d1)[:, :, None]  # (T, J, 1)
    e = np.einsum("tkc,tkc->tk", d2, d2)[:, None, :]  # (T, 1, K)
    f = np.einsum("tkc,tkc->tk", d2, r)[:, None, :]
    rr = np.einsum("tkc,tkc->tk", r, r)[:, None, :]
    c = d1 @ r.transpose(0, 2, 1)  # (T, J, K)
    b = d1 @ d2.transpose(0, 2, 1)
    eps = 1e-9
    a_safe, e_safe = np.maximum(a, eps), np.maximum(e, eps)
    denom = a * e - b * b  # >= 0; 0 for parallel segments
    s = np.where(denom > eps * a * e_safe, np.clip((b * f - c * e) / np.maximum(denom, eps), 0.0, 1.0), 0.0)
    t = np.where(e > eps, (b * s + f) / e_safe, 0.0)
    s = np.where(t < 0, np.clip(-c / a_safe, 0.0, 1.0), np.where(t > 1, np.clip((b - c) / a_safe, 0.0, 1.0), s))
    t = np.clip(t, 0.0, 1.0)
    point = e <= eps  # a sphere: the closest point of the ray to its centre
    s = np.where(point, np.clip(-c / a_safe, 0.0, 1.0), s)
    t = np.where(point, 0.0, t)
    # |r + s d1 - t d2|^2 expanded in the dot products.
    squared = rr + s * s * a + t * t * e + 2 * s * c - 2 * t * f - 2 * s * t * b
    return np.sqrt(np.maximum(squared, 0.0))


def self_occlusion(joints, eye, margin_mm=40.0, dtype=np.float64):
    """Joints hidden by the body itself, seen from ``eye``.

    The body is the capsule model of ``_BODY_PARTS``. Joint j is hidden when the segment from the
    eye to j, shortened by ``margin_mm`` at j's end (a joint lies inside its own limb), passes
    within the radius of a capsule of a part j does not belong to.

    Args:
        joints: H36M-17 joints, mm, in any frame (world or camera).
        eye: (3,) the camera centre in the same frame (zeros for camera space).
        margin_mm: length cut from the joint's end of the ray.
        dtype: precision of the geometry; float32 is about 3.7x faster (the augmented training samples use it)
            and may differ from float64 only for joints within a fraction of a millimetre of a capsule.

    Returns:
        Boolean mask, True where the joint is hidden.

    Shape:
        joints: (T, 17, 3) -> (T, 17).
    """
    joints = np.asarray(joints, dtype=dtype)
    if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"joints must have shape (T, 17, 3); got {joints.shape}")
    eye = np.asarray(eye, dtype=dtype)
    if eye.shape != (3,):
        raise ValueError(f"eye must have shape (3,); got {eye.shape}")
    starts, ends, radii, own = _capsule_tables()
    starts, ends = starts.astype(dtype, copy=False), ends.astype(dtype, copy=False)
    cap_a = np.einsum("kj,tjc->tkc", starts, joints)  # (T, K, 3)
    cap_b = np.einsum("kj,tjc->tkc", ends, joints)
    ray = joints - eye
    length = np.linalg.norm(ray, axis=-1, keepdims=True)
    ray_end = eye + ray * np.clip(1.0 - margin_mm / np.maximum(length, 1e-9), 0.0, 1.0)
    distance = _ray_segment_distance(eye, ray_end, cap_a, cap_b)  # (T, 17, K)
    return np.any((distance < radii) & ~own, axis=-1)


def points_in_boxes(points_px, boxes):
    """Which points fall inside any of the per-frame boxes.

    Args:
        points_px: pixel coordinates.
        boxes: per-frame boxes (x0, y0, x1, y1) in pixels; NaN rows are absent boxes.

    Returns:
        Boolean mask, True where a point lies inside a box.

    Shape:
        points_px: (T, J, 2); boxes: (T, B, 4) -> (T, J).
    """
    points_px = np.asarray(points_px, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64)
    if points_px.ndim != 3 or points_px.shape[-1] != 2:
        raise ValueError(f"points_px must have shape (T, J, 2); got {points_px.shape}")
    if boxes.ndim != 3 or boxes.shape[-1] != 4 or boxes.shape[0] != points_px.shape[0]:
        raise ValueError(f"boxes must have shape ({points_px.shape[0]}, B, 4); got {boxes.shape}")
    x, y = points_px[..., 0, None], points_px[..., 1, None]  # (T, J, 1)
    x0, y0, x1, y1 = (boxes[:, None, :, i] for i in range(4))  # (T, 1, B)
    with np.errstate(invalid="ignore"):
        inside = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    return inside.any(-1)


@dataclasses.dataclass(frozen=True)
class OccluderBoxes:
    """Random occluder boxes in the image (objects or people passing in front of the subject).

    Each video gets ``Binomial(max_boxes, box_probability)`` boxes. A box's sides are
    ``size_range`` times the subject's median height in pixels; it starts near the subject (centre
    offset up to ``offset`` subject heights), is present for a random interval of
    ``duration_range`` of the video, and either stays still or (with ``moving_probability``) drifts
    at up to ``max_speed`` subject heights per second.
    """

    max_boxes: int = 2
    box_probability: float = 0.4
    size_range: Tuple[float, float] = (0.2, 0.5)
    offset: float = 0.4
    duration_range: Tuple[float, float] = (0.3, 1.0)
    moving_probability: float = 0.5
    max_speed: float = 0.5

    def sample(self, points_px, fps, rng):
        """Boxes for one video.

        Args:
            points_px: (T, 17, 2) projected ground-truth joints.
            fps: frame rate, Hz.
            rng: ``numpy.random.Generator``.

        Returns:
            (T, max_boxes, 4) boxes (x0, y0, x1, y1), NaN where absent.
        """
        frames = points_px.shape[0]
        boxes = np.full((frames, self.max_boxes, 4), np.nan)
        count = rng.binomial(self.max_boxes, self.box_probability)
        person = float(np.median(np.ptp(points_px[..., 1], axis=1)))
        for i in range(count):
            size = rng.uniform(*self.size_range, size=2) * person
            anchor = points_px[rng.integers(frames)].mean(0)
            centre = anchor + rng.uniform(-self.offset, self.offset, size=2) * person
            velocity = np.zeros(2)
            if rng.random() < self.moving_probability:
                velocity = rng.uniform(-self.max_speed, self.max_speed, size=2) * person / fps
            length = max(1, int(round(rng.uniform(*self.duration_range) * frames)))
            start = int(rng.integers(0, frames - length + 1))
            t = np.arange(length)[:, None]
            centres = centre + (t - length / 2.0) * velocity
            boxes[start:start + length, i] = np.concatenate([centres - size / 2, centres + size / 2], axis=-1)
        return boxes


@dataclasses.dataclass(frozen=True)
class DetectorNoise:
    """Detector-like perturbation of 2D keypoints.

    Noise sizes are in pixels for a subject ``reference_distance_mm`` from the camera and scale
    with the subject's size in the image (``reference_distance_mm / Z_root``, clipped to
    [0.5, 2]). Visible joints: Gaussian with standard deviation ``sigma_px`` times the joint's
    multiplier (``_JOINT_NOISE_SCALE``), confidence ``0.98 - 0.12 * error / sigma`` plus a small
    jitter, clipped to [0.5, 1]; with probability ``outlier_probability`` a visible joint instead
    jumps by ``outlier_px`` in a random direction with confidence in ``outlier_confidence``.
    Occluded joints: Gaussian with ``occluded_sigma_px`` and confidence in ``occluded_confidence``.
    """

    sigma_px: float = 2.5
    outlier_probability: float = 0.01
    outlier_px: Tuple[float, float] = (20.0, 60.0)
    outlier_confidence: Tuple[float, float] = (0.2, 0.6)
    occluded_sigma_px: float = 12.0
    occluded_confidence: Tuple[float, float] = (0.05, 0.35)
    reference_distance_mm: float = 5000.0

    def apply(self, points_px, occluded, root_depth, rng):
        """Noisy keypoints and confidences for one video.

        Args:
            points_px: (T, 17, 2) projected ground-truth joints.
            occluded: (T, 17) bool occlusion mask.
            root_depth: (T,) camera depth of the root, mm.
            rng: ``numpy.random.Generator``.

        Returns:
            ((T, 17, 2) noisy pixels, (T, 17) confidence in [0, 1]).
        """
        frames = points_px.shape[0]
        scale = np.clip(self.reference_distance_mm / root_depth, 0.5, 2.0)[:, None]  # (T, 1)
        sigma = self.sigma_px * scale * np.asarray(_JOINT_NOISE_SCALE)  # (T, 17)
        gauss = rng.standard_normal((frames, NUM_JOINTS, 2))
        visible_offset = gauss * sigma[..., None]
        error = np.linalg.norm(gauss, axis=-1)  # in units of sigma
        confidence = np.clip(0.98 - 0.12 * error + rng.normal(0.0, 0.03, (frames, NUM_JOINTS)), 0.5, 1.0)

        outlier = (rng.random((frames, NUM_JOINTS)) < self.outlier_probability) & ~occluded
        angle = rng.uniform(0.0, 2 * np.pi, (frames, NUM_JOINTS))
        jump = rng.uniform(*self.outlier_px, (frames, NUM_JOINTS)) * scale
        outlier_offset = np.stack([np.cos(angle), np.sin(angle)], -1) * jump[..., None]
        outlier_confidence = rng.uniform(*self.outlier_confidence, (frames, NUM_JOINTS))

        occluded_offset = rng.standard_normal((frames, NUM_JOINTS, 2)) * (self.occluded_sigma_px * scale)[..., None]
        occluded_confidence = rng.uniform(*self.occluded_confidence, (frames, NUM_JOINTS))

        offset = np.where(
            occluded[..., None], occluded_offset, np.where(outlier[..., None], outlier_offset, visible_offset)
        )
        confidence = np.where(occluded, occluded_confidence, np.where(outlier, outlier_confidence, confidence))
        return points_px + offset, np.clip(confidence, 0.0, 1.0)


def default_mocap_path():
    """Path of the packaged ``deepmimic_h36m17.npz`` (package data, not read from anywhere else)."""
    resource = importlib.resources.files("repose_ext") / "assets" / "deepmimic_h36m17.npz"
    return str(resource)


def load_mocap(path=None):
    """The embedded clips as world joints.

    Args:
        path: npz written by ``scripts/convert_deepmimic.py``; default: the packaged file.

    Returns:
        (dict clip name -> (N, 17, 3) float64 world joints in mm (z up), frame rate in Hz).
    """
    path = default_mocap_path() if path is None else path
    if not os.path.isfile(path):
        raise FileNotFoundError(f"path must be a mocap npz written by scripts/convert_deepmimic.py; got {path}")
    with np.load(path) as data:
        clips = {str(n): data[f"joints_{n}"].astype(np.float64) for n in data["clip_names"]}
        fps = float(data["fps"])
    return clips, fps


class SyntheticViewsDataset(ClipDataset):
    """Clips of the embedded mocap seen by virtual cameras, as a :class:`~repose_ext.data.clips.ClipDataset`.

    Every (clip, camera) pair is one video, simulated whole at construction (noise and occluders
    are consistent across overlapping windows, like a detector run on the video), then sliced by
    :func:`~repose_ext.data.clips.split_clips`: windows of ``n_frames`` every ``stride`` frames;
    with ``tail="cover"`` one more window ends on the last frame so every frame is scored; a video
    shorter than ``n_frames`` gives one clip resampled to ``n_frames`` (frames repeated).

    Args:
        split: "train" (``TRAIN_CLIPS``), "test" (``TEST_CLIPS``) or "all".
        n_frames: frames per clip T.
        stride: frames between clip starts; default ``n_frames`` (no overlap).
        clips: explicit clip names, overriding ``split``.
        tail: "cover" (default) or "drop", see :func:`~repose_ext.data.clips.split_clips`.
        azimuths_deg: camera azimuths (see :func:`camera_rig_for_clip`).
        heights_mm: camera heights, mm.
        distance_range_mm: (min, max) horizontal camera distance, mm.
        azimuth_jitter_deg: per-camera azimuth jitter, degrees.
        focal: focal length, px.
        resolution: (width, height), px.
        noise: :class:`DetectorNoise`, or None for exact 2D with confidence 1 (occlusion still flagged).
        occluders: :class:`OccluderBoxes`, or None for no boxes.
        use_self_occlusion: flag joints hidden by the body.
        perspective_target: target x, y from the per-joint pinhole projection (see
            :func:`camera_to_normalized_2p5d`); default False (root-depth scaling, exact mm).
        seed: non-negative int; equal arguments give identical samples.
        with_camera_3d: samples also hold "camera_3d", the (T, 17, 3) camera-space joints in mm.
        path: mocap npz; default the packaged file.
        input_norm: "image" (MotionBERT's normalised image coordinates and 2.5D target, above) or "pose" (the
            camera-free input of :func:`repose_ext.data.normalization.normalize_keypoints` and its target
            :func:`~repose_ext.data.normalization.normalize_target`; ``res`` is then (2, 2) so that millimetres
            are ``target * factor``).
        scale_frames: with ``input_norm="pose"``, the ``scale_frames`` of
            :func:`~repose_ext.data.normalization.normalize_keypoints`.

    Samples follow the clip contract (see :mod:`repose_ext.data`): "input" (T, 17, 3) float32
    (x_n, y_n, confidence), "target" (T, 17, 3) float32 normalised 2.5D, "factor" (T,) float32 mm per
    px, "res" (2,) float32 (w, h), "source" ``<clip>_<camera>``, "action" the clip name, "frames"
    (T,) int64 indices into the clip, "occluded" (T, 17) bool; and "camera_3d" if asked.

    Attributes:
        clip_names: the clips loaded. fps: frame rate (50 Hz).
        cameras: dict source -> :class:`PinholeCamera`.
        self_occluded, box_occluded, outside: (N, 17) bool per frame of all videos, the three causes
            of ``occluded`` (see :meth:`occlusion_stats`).
    """

    def __init__(
        self,
        split: str = "train",
        n_frames: int = 27,
        stride: Optional[int] = None,
        *,
        clips: Optional[Sequence[str]] = None,
        tail: str = "cover",
        azimuths_deg: Sequence[float] = (0, 45, 90, 135, 180, 225, 270, 315),
        heights_mm: Sequence[float] = (800.0, 1600.0, 2600.0),
        distance_range_mm: Tuple[float, float] = (3500.0, 6500.0),
        azimuth_jitter_deg: float = 10.0,
        focal: float = H36M_FOCAL_PX,
        resolution: Tuple[int, int] = H36M_RESOLUTION,
        noise: Optional[DetectorNoise] = DetectorNoise(),
        occluders: Optional[OccluderBoxes] = OccluderBoxes(),
        use_self_occlusion: bool = True,
        perspective_target: bool = False,
        seed: int = 0,
        with_camera_3d: bool = False,
        path: Optional[str] = None,
        input_norm: str = "image",
        scale_frames: int = 1,
    ):
        if input_norm not in ("image", "pose"):
            raise ValueError(f"input_norm must be 'image' or 'pose'; got {input_norm!r}")
        check_scale_frames(scale_frames)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int; got {seed!r}")
        stride = n_frames if stride is None else stride
        mocap, self.fps = load_mocap(path)
        all_names = sorted(mocap)
        self.split = "custom" if clips is not None else split
        if clips is None:
            splits = {"train": TRAIN_CLIPS, "test": TEST_CLIPS, "all": tuple(all_names)}
            if split not in splits:
                raise ValueError(f"split must be one of 'train', 'test', 'all'; got {split!r}")
            clips = splits[split]
        unknown = [c for c in clips if c not in mocap]
        if unknown or not clips:
            raise ValueError(f"clips must be a non-empty list of names from {all_names}; got {list(clips)}")
        self.clip_names = tuple(clips)
        self.seed = seed
        self.cameras = {}
        videos = []
        for clip in self.clip_names:
            clip_id = all_names.index(clip)  # seeds depend on the clip, not on the split or clip list
            cameras = camera_rig_for_clip(
                mocap[clip],
                np.random.default_rng([seed, clip_id, 0]),
                azimuths_deg=azimuths_deg,
                heights_mm=heights_mm,
                distance_range_mm=distance_range_mm,
                azimuth_jitter_deg=azimuth_jitter_deg,
                focal=focal,
                resolution=resolution,
            )
            for cam_id, camera in enumerate(cameras):
                rng = np.random.default_rng([seed, clip_id, cam_id + 1])
                source = f"{clip}_{camera.name}"
                self.cameras[source] = camera
                videos.append(
                    _simulate_video(
                        mocap[clip], camera, noise, occluders, use_self_occlusion, perspective_target, self.fps, rng,
                        input_norm, scale_frames,
                    )
                )
                videos[-1].update(source=np.full(len(mocap[clip]), source), action=np.full(len(mocap[clip]), clip))

        def stack(key):
            return np.concatenate([v[key] for v in videos])

        self.self_occluded, self.box_occluded, self.outside = stack("self"), stack("box"), stack("outside")
        self._camera_3d = torch.from_numpy(stack("camera_3d")) if with_camera_3d else None
        super().__init__(
            stack("input"),
            stack("target"),
            stack("factor"),
            np.tile(np.array(resolution if input_norm == "image" else (2, 2), dtype=np.float32),
                    (len(self.self_occluded), 1)),
            stack("source"),
            stack("action"),
            n_frames=n_frames,
            stride=stride,
            skeleton=H36M_SKELETON,
            tail=tail,
            occluded=self.self_occluded | self.box_occluded | self.outside,
            rng=None,
        )

    def __getitem__(self, index: int) -> Dict[str, object]:
        sample = super().__getitem__(index)
        if self._camera_3d is not None:
            sample["camera_3d"] = self._camera_3d[self._clips[index]]
        return sample

    def occlusion_stats(self) -> Dict[str, float]:
        """Fractions of all joint-frames (every frame of every video once) flagged occluded.

        Returns:
            Dict with "occluded" (any cause), "self" (hidden by the body), "box" (inside an
            occluder box), "outside" (out of the image), and "joint_frames" (their number).
        """
        occluded = self.self_occluded | self.box_occluded | self.outside
        return {
            "occluded": float(occluded.mean()),
            "self": float(self.self_occluded.mean()),
            "box": float(self.box_occluded.mean()),
            "outside": float(self.outside.mean()),
            "joint_frames": int(occluded.size),
        }


def _simulate_video(joints_world, camera, noise, occluders, use_self_occlusion, perspective_target, fps, rng,
                    input_norm="image", scale_frames=1):
    """Per-frame arrays of one (clip, camera) video; see :class:`SyntheticViewsDataset`."""
    frames = len(joints_world)
    joints_cam = camera.world_to_camera(joints_world)
    target, factor = camera_to_normalized_2p5d(joints_cam, camera, perspective=perspective_target)
    points_px = camera.project(joints_cam)
    none = np.zeros((frames, NUM_JOINTS), dtype=bool)
    hidden_self = self_occlusion(joints_cam, np.zeros(3)) if use_self_occlusion else none
    hidden_box = none if occluders is None else points_in_boxes(points_px, occluders.sample(points_px, fps, rng))
    outside = (
        (points_px[..., 0] < 0) | (points_px[..., 0] >= camera.width)
        | (points_px[..., 1] < 0) | (points_px[..., 1] >= camera.height)
    )
    occluded = hidden_self | hidden_box | outside
    if noise is not None:
        noisy_px, confidence = noise.apply(points_px, occluded, joints_cam[:, ROOT, 2], rng)
    else:
        noisy_px, confidence = points_px, np.ones((frames, NUM_JOINTS))
    if input_norm == "pose":
        inputs, size = normalize_keypoints(noisy_px, confidence, scale_frames=scale_frames)
        target, factor = normalize_target(joints_cam, size, camera.focal)
    else:
        inputs = np.concatenate(
            [normalize_image_coordinates(noisy_px, camera.width, camera.height), confidence[..., None]], axis=-1
        )
    return {
        "input": inputs.astype(np.float32),
        "target": target.astype(np.float32),
        "factor": factor.astype(np.float32),
        "self": hidden_self,
        "box": hidden_box,
        "outside": outside,
        "camera_3d": joints_cam.astype(np.float32),
    }
