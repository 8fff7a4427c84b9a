"""On-the-fly augmentation of the embedded motion capture: new people, cameras, motion and detector errors.

Every training sample is drawn fresh from the 12 training clips (:mod:`repose_ext.data.synthetic_views`) by a
pipeline of small transforms, each with its own seeded generator, all vectorised over (batch, time, joints) in
NumPy (no loop over samples, frames or joints):

1. :class:`WindowSampler`: a clip (chosen in proportion to its length), a start and a playback speed (0.5-2x, log
   uniform); poses between mocap frames are interpolated on bone directions (normalised linear interpolation), so
   bone lengths never change; a window longer than the clip plays it back and forth. Optionally
   (``p_reverse``, off by default) a window is played backwards.
2. :class:`Splice`: the upper body (spine up) of another sample's motion on this sample's lower body, turned so
   both pelvises face the same way (PoseAug-style recombination).
3. :class:`JointAnglePerturbation`: every bone direction turned by a random small rotation (up to 8 degrees for the
   torso and head, 15 for limbs), constant over the sample, so the joint angles change within plausible limits;
   optionally (``sway_deg``, off by default) a second turn that oscillates over time, which changes the motion.
4. :class:`BodyShape`: a global scale (0.8-1.2) and per-bone length changes (+-12 %, left and right alike); the
   pose is rebuilt by forward kinematics, so one sample is one consistent person over time.
5. :class:`RootTrajectory`: the pelvis's horizontal path scaled (0.5-1.5x) and, half the time, a constant drift of
   up to 1.5 m/s added: subjects walk across the frame. :class:`RotateVertical`: any heading.
   :class:`Mirror`: a left/right mirror image of the motion.
6. :class:`RandomCamera`: a static camera 2.5-12 m from the subject (horizontally), 0.2-3 m high, focal length
   400-2500 px (at least half the image's longer side: no field of view over 90 degrees), image 1000x1000,
   1920x1080, 1080x1920, 1280x720 or 640x480, aimed so that the subject's mean position lands anywhere within 90 %
   of the image (so parts of the body may leave it); it does not follow the subject.
7. :class:`DetectorErrors`: clean 2D (exact projection, confidence 1) for a fraction of samples, else the errors
   of real detectors: jitter proportional to the person's size in the image, left/right swaps of arms or legs for
   a few frames, dropped joints (confidence 0), whole missed frames, outliers, and noisier, less confident joints
   where the body hides them or they leave the image.

The lifter's input is :func:`repose_ext.data.normalization.normalize_keypoints` of the 2D keypoints and its
target :func:`repose_ext.data.normalization.normalize_target` of the camera-space joints; the per-frame millimetre
factor goes with the sample (``factor``, with ``res = (2, 2)`` so that the package's millimetre conversion
``denormalize_to_mm`` is ``target * factor``).

:class:`AugmentedMocapDataset` serves this to the trainer (a batch is generated at once through ``__getitems__``);
:func:`wild_views` is the fixed "wild" evaluation split: held-out actions under cameras, bodies and trajectories
drawn from the same distributions with a fixed seed, clean or with detector errors.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from .clips import ClipDataset
from .normalization import check_scale_frames, normalize_keypoints, normalize_target
from .skeleton import H36M_LEFT, H36M_PARENTS, H36M_RIGHT, H36M_SKELETON
from .synthetic_views import _JOINT_NOISE_SCALE, TEST_CLIPS, TRAIN_CLIPS, load_mocap, self_occlusion

NUM_JOINTS = 17
ROOT = 0
#: Bone b joins joint BONE_PARENT[b] to joint BONE_CHILD[b] (the 16 non-root joints).
BONE_CHILD = np.arange(1, NUM_JOINTS)
BONE_PARENT = np.array(H36M_PARENTS[1:])


def _path_matrix() -> np.ndarray:
    """(17, 16): entry (j, b) is 1 when bone b lies on the path from the root to joint j."""
    path = np.zeros((NUM_JOINTS, NUM_JOINTS - 1))
    for j in range(1, NUM_JOINTS):
        k = j
        while k > 0:
            path[j, k - 1] = 1.0
            k = H36M_PARENTS[k]
    return path


PATH = _path_matrix()
#: Bones that share a length change: left and right alike (index = bone, value = group).
_BONE_GROUP = np.array([0, 1, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 7, 8, 9])
#: Bones above the spine joint (thorax, head, arms): the upper body of :class:`Splice`.
UPPER_BONES = np.arange(7, 16)
#: Torso and head bones (pelvis-hips, spine, thorax, nose, head top, shoulders) get smaller angle changes.
_TORSO_BONES = np.array([0, 3, 6, 7, 8, 9, 10, 13])
FLIP = np.array(H36M_SKELETON.flip_permutation)
#: Left/right joint groups a detector swaps together: legs, arms.
SWAP_GROUPS = ((H36M_LEFT[:3], H36M_RIGHT[:3]), (H36M_LEFT[3:], H36M_RIGHT[3:]))
#: Training clips held out by ``data.options.holdout: validation`` (locomotion, a kick, getting up from the floor):
#: settings are chosen on these, never on the test actions.
VALIDATION_CLIPS = ("getup_facedown", "kick", "walk")
IMAGE_SIZES = ((1000, 1000), (1920, 1080), (1080, 1920), (1280, 720), (640, 480))


def bones_of(joints: np.ndarray) -> np.ndarray:
    """Bone vectors (..., 16, 3) of joints (..., 17, 3)."""
    return joints[..., BONE_CHILD, :] - joints[..., BONE_PARENT, :]


def joints_of(root: np.ndarray, directions: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Forward kinematics: joints (..., 17, 3) from the root (..., 3), unit bone directions (..., 16, 3) and bone
    lengths (broadcast to (..., 16)), as one matrix product with :data:`PATH`."""
    bones = directions * lengths[..., None]
    return root[..., None, :] + np.einsum("jb,...bc->...jc", PATH, bones)


def _rotation(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) about unit ``axis`` (..., 3) by ``angle`` (...) radians (Rodrigues)."""
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(axis.shape[:-1] + (3, 3))
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def _rotate_z(points: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotate (B, ..., 3) points about the vertical axis by (B, ...)-broadcastable angles."""
    c, s = np.cos(angle), np.sin(angle)
    x, y = points[..., 0], points[..., 1]
    return np.stack([c * x - s * y, s * x + c * y, points[..., 2]], -1)


@dataclasses.dataclass
class Motion:
    """A batch of motions in bone space.

    Attributes:
        root: (B, T, 3) pelvis positions, world mm (z up).
        directions: (B, T, 16, 3) unit bone directions.
        lengths: (B, 16) bone lengths, mm (constant over time).
        clip: (B,) index of the source clip (for bookkeeping).
    """

    root: np.ndarray
    directions: np.ndarray
    lengths: np.ndarray
    clip: np.ndarray

    def joints(self) -> np.ndarray:
        """(B, T, 17, 3) world joints."""
        return joints_of(self.root, self.directions, self.lengths[:, None, :])


class MotionBank:
    """Clips in bone space, concatenated for vectorised gathers.

    Args:
        clips: name -> (N, 17, 3) world joints in mm.
        names: which clips to hold.
        fps: frame rate of the clips.
    """

    def __init__(self, clips: Dict[str, np.ndarray], names: Sequence[str], fps: float):
        self.names = tuple(names)
        self.fps = float(fps)
        joints = [np.asarray(clips[n], dtype=np.float64) for n in self.names]
        self.frames = np.array([len(j) for j in joints])
        self.offsets = np.concatenate([[0], np.cumsum(self.frames)[:-1]])
        stacked = np.concatenate(joints)
        bones = bones_of(stacked)
        norms = np.linalg.norm(bones, axis=-1)
        self.directions = bones / np.maximum(norms, 1e-9)[..., None]
        self.root = stacked[:, ROOT]
        self.base_lengths = np.median(norms, axis=0)  # (16,)

    def gather(self, clip: np.ndarray, time: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Root (B, T, 3) and directions (B, T, 16, 3) at fractional frame times (B, T) of clips (B,).

        Times outside [0, N-1] reflect back into the clip (forward, then backward, ...)."""
        n = (self.frames[clip] - 1)[:, None].astype(np.float64)
        period = np.maximum(2 * n, 1e-9)
        phase = np.mod(time, period)
        t = np.where(n > 0, n - np.abs(phase - n), 0.0)
        i0 = np.floor(t).astype(np.int64)
        i1 = np.minimum(i0 + 1, n.astype(np.int64))
        a = (t - i0)[..., None]
        base = self.offsets[clip][:, None]
        root = (1 - a) * self.root[base + i0] + a * self.root[base + i1]
        d = (1 - a[..., None]) * self.directions[base + i0] + a[..., None] * self.directions[base + i1]
        d /= np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-9)
        return root, d


@dataclasses.dataclass(frozen=True)
class WindowSampler:
    """Windows of ``n_frames`` at a random playback speed (log uniform in ``speed_range``), played backwards
    with probability ``p_reverse``."""

    speed_range: Tuple[float, float] = (0.5, 2.0)
    p_reverse: float = 0.0

    def __call__(self, bank: MotionBank, batch: int, n_frames: int, rng: np.random.Generator) -> Motion:
        clip = rng.choice(len(bank.names), size=batch, p=bank.frames / bank.frames.sum())
        lo, hi = np.log(self.speed_range[0]), np.log(self.speed_range[1])
        speed = np.exp(rng.uniform(lo, hi, size=batch))
        span = speed * (n_frames - 1)
        room = np.maximum(bank.frames[clip] - 1 - span, 0.0)
        start = rng.uniform(0.0, 1.0, size=batch) * room
        time = start[:, None] + speed[:, None] * np.arange(n_frames)[None, :]
        backwards = rng.random(batch) < self.p_reverse  # drawn last: p_reverse = 0 leaves every other draw as it was
        time = np.where(backwards[:, None], time[:, ::-1], time)
        root, d = bank.gather(clip, time)
        lengths = np.broadcast_to(bank.base_lengths, (batch, len(bank.base_lengths))).copy()
        return Motion(root=root, directions=d, lengths=lengths, clip=clip)


def _facing(directions: np.ndarray) -> np.ndarray:
    """Heading angle (B, T) of the pelvis: the direction of the left-to-right hip vector, turned by 90 degrees."""
    hips = directions[..., 0, :] - directions[..., 3, :]  # pelvis->right hip minus pelvis->left hip
    return np.arctan2(hips[..., 1], hips[..., 0])


@dataclasses.dataclass(frozen=True)
class Splice:
    """With probability ``p``, the upper body of another sample of the batch on this one's lower body."""

    p: float = 0.3

    def __call__(self, motion: Motion, rng: np.random.Generator) -> Motion:
        b = len(motion.clip)
        if b < 2:
            return motion
        donor = (np.arange(b) + rng.integers(1, b, size=b)) % b
        use = rng.random(b) < self.p
        turn = _facing(motion.directions) - _facing(motion.directions[donor])  # (B, T)
        upper = _rotate_z(motion.directions[donor][:, :, UPPER_BONES], turn[:, :, None])
        d = motion.directions.copy()
        d[:, :, UPPER_BONES] = np.where(use[:, None, None, None], upper, d[:, :, UPPER_BONES])
        return dataclasses.replace(motion, directions=d)


@dataclasses.dataclass(frozen=True)
class JointAnglePerturbation:
    """Every bone direction turned about a random axis by up to ``limb_deg`` (``torso_deg`` for torso and head).

    With ``sway_deg`` > 0 (off by default) each bone also sways about a second random axis, by an angle that
    oscillates over time: amplitude up to ``sway_deg`` for limbs (half that for torso and head), frequency log
    uniform in ``sway_hz``, random phase. That changes the motion, not only the pose: a temporal lifter sees limb
    trajectories the recordings do not have, still smooth and with constant bone lengths. Tried on the validation
    hold-out at 15 degrees: level with no sway (docs/runs/validation), so it is off in every config.
    """

    limb_deg: float = 15.0
    torso_deg: float = 8.0
    sway_deg: float = 0.0
    sway_hz: Tuple[float, float] = (0.25, 1.5)

    def __call__(self, motion: Motion, fps: float, rng: np.random.Generator) -> Motion:
        b, bones = motion.lengths.shape
        axis = rng.standard_normal((b, bones, 3))
        axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
        limit = np.full(bones, self.limb_deg)
        limit[_TORSO_BONES] = self.torso_deg
        angle = np.deg2rad(rng.uniform(0.0, 1.0, (b, bones)) * limit)
        rot = _rotation(axis, angle)  # (B, 16, 3, 3)
        d = np.einsum("bkij,btkj->btki", rot, motion.directions)
        if self.sway_deg > 0:  # drawn after the constant turn: sway_deg = 0 leaves every draw as it was
            t = motion.directions.shape[1]
            axis = rng.standard_normal((b, 1, bones, 3))
            axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
            sway = np.full(bones, float(self.sway_deg))
            sway[_TORSO_BONES] /= 2
            amplitude = np.deg2rad(rng.uniform(0.0, 1.0, (b, bones)) * sway)
            hz = np.exp(rng.uniform(np.log(self.sway_hz[0]), np.log(self.sway_hz[1]), (b, bones)))
            phase = rng.uniform(0.0, 2 * np.pi, (b, bones))
            seconds = np.arange(t)[None, :, None] / fps
            theta = amplitude[:, None] * np.sin(2 * np.pi * hz[:, None] * seconds + phase[:, None])  # (B, T, 16)
            cos, sin = np.cos(theta)[..., None], np.sin(theta)[..., None]
            # Rodrigues on the vectors: d cos + (axis x d) sin + axis (axis . d)(1 - cos)
            d = d * cos + np.cross(axis, d) * sin + axis * np.sum(axis * d, -1, keepdims=True) * (1 - cos)
        return dataclasses.replace(motion, directions=d)


@dataclasses.dataclass(frozen=True)
class BodyShape:
    """Global scale in ``scale_range`` and per-bone length factors in 1 +- ``bone_change`` (left = right)."""

    scale_range: Tuple[float, float] = (0.8, 1.2)
    bone_change: float = 0.12

    def __call__(self, motion: Motion, rng: np.random.Generator) -> Motion:
        b = len(motion.clip)
        scale = rng.uniform(*self.scale_range, size=(b, 1))
        groups = rng.uniform(1 - self.bone_change, 1 + self.bone_change, size=(b, _BONE_GROUP.max() + 1))
        factors = scale * groups[:, _BONE_GROUP]
        leg = factors[:, [1, 2, 4, 5]].mean(-1)  # thighs and shins: the pelvis height follows the legs
        root = motion.root.copy()
        root[..., 2] *= leg[:, None]
        return dataclasses.replace(motion, root=root, lengths=motion.lengths * factors)


@dataclasses.dataclass(frozen=True)
class RootTrajectory:
    """Horizontal pelvis path scaled by ``scale_range``; with probability ``p_drift`` a constant drift of up to
    ``max_speed`` mm/s in a random direction."""

    scale_range: Tuple[float, float] = (0.5, 1.5)
    p_drift: float = 0.5
    max_speed: float = 1500.0

    def __call__(self, motion: Motion, fps: float, rng: np.random.Generator) -> Motion:
        b, t = motion.root.shape[:2]
        scale = rng.uniform(*self.scale_range, size=(b, 1, 1))
        angle = rng.uniform(0, 2 * np.pi, size=b)
        speed = rng.uniform(0, self.max_speed, size=b) * (rng.random(b) < self.p_drift)
        velocity = np.stack([np.cos(angle), np.sin(angle)], -1) * speed[:, None] / fps  # mm per frame
        root = motion.root.copy()
        start = root[:, :1, :2]
        root[..., :2] = start + (root[..., :2] - start) * scale + np.arange(t)[None, :, None] * velocity[:, None]
        return dataclasses.replace(motion, root=root)


@dataclasses.dataclass(frozen=True)
class RotateVertical:
    """A random heading: the whole motion turned about the vertical axis through its first pelvis position."""

    def __call__(self, joints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        angle = rng.uniform(0, 2 * np.pi, size=(len(joints), 1, 1))
        start = joints[:, :1, ROOT:ROOT + 1].copy()
        start[..., 2] = 0
        return _rotate_z(joints - start, angle) + start


@dataclasses.dataclass(frozen=True)
class Mirror:
    """With probability ``p``, the mirror image of the motion: world x negated, left and right joints swapped."""

    p: float = 0.5

    def __call__(self, joints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        flip = rng.random(len(joints)) < self.p
        mirrored = joints[:, :, FLIP] * np.array([-1.0, 1.0, 1.0])
        return np.where(flip[:, None, None, None], mirrored, joints)


@dataclasses.dataclass
class Cameras:
    """A batch of static pinhole cameras (x right, y down, z forward; principal point at the image centre).

    Attributes:
        rotation: (B, 3, 3) world-to-camera rotation. position: (B, 3) centre, world mm.
        focal: (B,) pixels. size: (B, 2) image width, height in pixels.
    """

    rotation: np.ndarray
    position: np.ndarray
    focal: np.ndarray
    size: np.ndarray

    def to_camera(self, joints: np.ndarray) -> np.ndarray:
        """World joints (B, T, J, 3) to camera space."""
        return np.einsum("bij,btkj->btki", self.rotation, joints - self.position[:, None, None, :])

    def project(self, joints_cam: np.ndarray) -> np.ndarray:
        """Camera-space joints (B, T, J, 3) to pixels (B, T, J, 2)."""
        f = self.focal[:, None, None, None]
        return f * joints_cam[..., :2] / joints_cam[..., 2:3] + self.size[:, None, None, :] / 2.0


@dataclasses.dataclass(frozen=True)
class RandomCamera:
    """Static cameras around the subject (see the module docstring).

    Attributes:
        distance_range: horizontal distance from the subject's mean pelvis position, mm.
        height_range: camera height above the floor, mm.
        focal_range: focal length, pixels.
        image_sizes: (width, height) choices.
        aim: the subject's mean position projects within this fraction of the half image from the centre.
        min_depth: every joint stays at least this far in front of the camera (the camera backs off if needed).
        min_fov_focal: the focal length is at least this times the image's longer side (field of view <= 90 deg).
    """

    distance_range: Tuple[float, float] = (2500.0, 12000.0)
    height_range: Tuple[float, float] = (200.0, 3000.0)
    focal_range: Tuple[float, float] = (400.0, 2500.0)
    image_sizes: Tuple[Tuple[int, int], ...] = IMAGE_SIZES
    aim: float = 0.9
    min_depth: float = 500.0
    min_fov_focal: float = 0.5

    def __call__(self, joints: np.ndarray, rng: np.random.Generator) -> Cameras:
        b = len(joints)
        centre = joints[:, :, ROOT].mean(1)  # (B, 3)
        azimuth = rng.uniform(0, 2 * np.pi, size=b)
        distance = rng.uniform(*self.distance_range, size=b)
        position = np.stack([centre[:, 0] + distance * np.cos(azimuth), centre[:, 1] + distance * np.sin(azimuth),
                             rng.uniform(*self.height_range, size=b)], -1)
        size = np.array(self.image_sizes, dtype=np.float64)[rng.integers(len(self.image_sizes), size=b)]
        # Focal lengths below half the image's longer side (fields of view over 90 degrees, fisheye territory
        # for a pinhole model) are raised to it.
        low = np.maximum(self.focal_range[0], self.min_fov_focal * size.max(-1))
        focal = low + rng.uniform(0.0, 1.0, size=b) * np.maximum(self.focal_range[1] - low, 0.0)
        forward = centre - position
        forward /= np.linalg.norm(forward, axis=-1, keepdims=True)
        right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
        right /= np.linalg.norm(right, axis=-1, keepdims=True)
        down = np.cross(forward, right)
        look = np.stack([right, down, forward], 1)  # (B, 3, 3): the centre on the optical axis
        # Turn the optical axis so that the centre's ray goes through a random image point.
        uv = rng.uniform(-self.aim, self.aim, size=(b, 2)) * size / 2.0
        ray = np.concatenate([uv / focal[:, None], np.ones((b, 1))], -1)
        ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
        axis = np.cross(np.array([0.0, 0.0, 1.0]), ray)
        sin = np.linalg.norm(axis, axis=-1)
        axis = np.where(sin[:, None] > 1e-12, axis / np.maximum(sin, 1e-12)[:, None], np.array([1.0, 0.0, 0.0]))
        align = _rotation(axis, np.arctan2(sin, ray[:, 2]))
        cameras = Cameras(rotation=align @ look, position=position, focal=focal, size=size)
        depth = cameras.to_camera(joints)[..., 2].reshape(b, -1).min(-1)
        back = np.maximum(self.min_depth - depth, 0.0)
        cameras.position = position - back[:, None] * cameras.rotation[:, 2]
        return cameras


@dataclasses.dataclass(frozen=True)
class DetectorErrors:
    """Detector-like 2D keypoints (see the module docstring); ``p_clean`` of the samples stay exact.

    Attributes:
        p_clean: fraction of samples with exact 2D and confidence 1.
        jitter_range: per-sample jitter, as a fraction of the person's size in the image (largest side of the
            2D bounding box), times the per-joint multipliers of :mod:`repose_ext.data.synthetic_views`.
        p_swap: per frame and group (legs, arms), the chance that a left/right swap starts; it lasts 1-8 frames.
        p_drop: chance that a joint is missed (confidence 0); ``p_drop_hidden`` for hidden joints.
        p_missed_frame: chance that a frame has no detection at all.
        p_outlier: chance that a joint jumps by 10-40 % of the person's size.
    """

    p_clean: float = 0.2
    jitter_range: Tuple[float, float] = (0.003, 0.015)
    p_swap: float = 0.01
    p_drop: float = 0.02
    p_drop_hidden: float = 0.2
    p_missed_frame: float = 0.02
    p_outlier: float = 0.01

    def __call__(self, points: np.ndarray, hidden: np.ndarray, image_size: np.ndarray,
                 rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        """Noisy keypoints (B, T, J, 2) and confidences (B, T, J) from exact ones and the hidden mask."""
        b, t, j = points.shape[:3]
        person = np.max(points.max(2) - points.min(2), axis=-1)  # (B, T) px
        sigma = rng.uniform(*self.jitter_range, size=(b, 1, 1)) * person[..., None] * np.asarray(_JOINT_NOISE_SCALE)
        size = image_size[:, None, None, :]
        outside = ((points < 0) | (points >= size)).any(-1)
        gauss = rng.standard_normal((b, t, j, 2))
        scale = np.where(hidden, 3.0, 1.0) * sigma
        noisy = points + gauss * scale[..., None]
        err = np.linalg.norm(gauss, axis=-1)
        score = np.clip(0.98 - 0.12 * err + rng.normal(0, 0.03, (b, t, j)), 0.5, 1.0)
        score = np.where(hidden, rng.uniform(0.05, 0.35, (b, t, j)), score)
        outlier = rng.random((b, t, j)) < self.p_outlier
        angle = rng.uniform(0, 2 * np.pi, (b, t, j))
        jump = rng.uniform(0.1, 0.4, (b, t, j)) * person[..., None]
        noisy = np.where(outlier[..., None], noisy + np.stack([np.cos(angle), np.sin(angle)], -1) * jump[..., None],
                         noisy)
        score = np.where(outlier, rng.uniform(0.2, 0.6, (b, t, j)), score)
        # Joints outside the image: the detector puts them on the border, with little confidence.
        noisy = np.clip(noisy, 0.0, size - 1.0)
        score = np.where(outside, rng.uniform(0.0, 0.2, (b, t, j)), score)
        # Left/right swaps of a limb group for a few frames.
        frames = np.arange(t)[None, :, None]
        for g, (left, right) in enumerate(SWAP_GROUPS):
            starts = rng.random((b, t)) < self.p_swap
            ends = np.where(starts, np.arange(t)[None] + rng.integers(1, 9, (b, t)), 0)
            active = (np.maximum.accumulate(ends, axis=1) > frames[..., 0])[..., None]
            perm = np.arange(j)
            perm[list(left)], perm[list(right)] = list(right), list(left)
            noisy = np.where(active[..., None], noisy[:, :, perm], noisy)
            score = np.where(active, score[:, :, perm], score)
        drop = rng.random((b, t, j)) < np.where(hidden, self.p_drop_hidden, self.p_drop)
        drop |= (rng.random((b, t)) < self.p_missed_frame)[..., None]
        score = np.where(drop, 0.0, score)
        clean = (rng.random(b) < self.p_clean)[:, None, None]
        return np.where(clean[..., None], points, noisy), np.where(clean, 1.0, score)


#: Ranges drawn log uniform: their lower end must be above 0.
_LOG_RANGES = ("speed_range", "sway_hz")


def _check_settings(name: str, transform) -> None:
    """Refuse settings no draw can use, by the naming rules of the transforms: ``p`` and ``p_*`` are
    probabilities in [0, 1]; ``*_deg`` are angles >= 0; ``*_range`` and ``*_hz`` are (low, high) with
    0 <= low <= high (0 < low where drawn log uniform). Raises ValueError naming the augmentation and setting."""
    def number(v):
        return isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and np.isfinite(v)

    for field in dataclasses.fields(transform):
        key, value = field.name, getattr(transform, field.name)
        where = f"augmentation {name!r}: {key}"
        if key == "p" or key.startswith("p_"):
            if not (number(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"{where} must be in [0, 1]; got {value!r}")
        elif key.endswith("_deg"):
            if not (number(value) and value >= 0.0):
                raise ValueError(f"{where} must be a number >= 0 (degrees); got {value!r}")
        elif key.endswith("_range") or key.endswith("_hz"):
            log = key in _LOG_RANGES
            ok = (isinstance(value, tuple) and len(value) == 2 and all(number(v) for v in value)
                  and (0.0 < value[0] if log else 0.0 <= value[0]) and value[0] <= value[1])
            if not ok:
                low = "0 < low" if log else "0 <= low"
                raise ValueError(f"{where} must be a pair [low, high] with {low} <= high; got {value!r}")


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """The transforms of :func:`augmented_views`; ``None`` switches one off."""

    window: WindowSampler = WindowSampler()
    splice: Optional[Splice] = Splice()
    angles: Optional[JointAnglePerturbation] = JointAnglePerturbation()
    body: Optional[BodyShape] = BodyShape()
    trajectory: Optional[RootTrajectory] = RootTrajectory()
    rotate: Optional[RotateVertical] = RotateVertical()
    mirror: Optional[Mirror] = Mirror()
    camera: RandomCamera = RandomCamera()
    detector: Optional[DetectorErrors] = DetectorErrors()

    def __post_init__(self):
        for field in dataclasses.fields(self):
            transform = getattr(self, field.name)
            if transform is not None:
                _check_settings(field.name, transform)

    @classmethod
    def from_options(cls, options: Optional[Dict] = None) -> "AugmentConfig":
        """From plain data, e.g. ``{"splice": {"p": 0.5}, "detector": None, "camera": {"focal_range": [500, 900]}}``."""
        options = dict(options or {})
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - set(fields))
        if unknown:
            raise ValueError(f"unknown augmentation(s) {unknown}; expected a subset of {sorted(fields)}")
        kwargs = {}
        for name, value in options.items():
            default = getattr(cls(), name)
            if value is None:
                if name in ("window", "camera"):
                    raise ValueError(f"augmentation {name!r} cannot be switched off")
                kwargs[name] = None
                continue
            if not isinstance(value, dict):
                raise ValueError(f"augmentation {name!r} must be a mapping of its settings or null; got {value!r}")
            base = default if default is not None else fields[name].type
            known = {f.name for f in dataclasses.fields(base)}
            bad = sorted(set(value) - known)
            if bad:
                raise ValueError(f"unknown setting(s) {bad} of augmentation {name!r}; expected a subset of "
                                 f"{sorted(known)}")
            converted = {k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
                         for k, v in value.items()}
            kwargs[name] = dataclasses.replace(default, **converted)
        return cls(**kwargs)


_STREAMS = ("window", "splice", "angles", "body", "trajectory", "rotate", "mirror", "camera", "detector")


def render_views(joints: np.ndarray, cameras: Cameras, detector: Optional[DetectorErrors],
                 rng: Optional[np.random.Generator], geometry_dtype=np.float64,
                 scale_frames: int = 1) -> Dict[str, np.ndarray]:
    """Film world joints with cameras and make the lifter's sample arrays (input normalised by
    :func:`normalize_keypoints` with ``scale_frames``).

    ``geometry_dtype`` is the precision of the self-occlusion test (:func:`self_occlusion`): float32 for
    training samples (60 % of a batch's generation time in float64), float64 for the fixed evaluation splits.

    Returns:
        Dict with "input" (B, T, 17, 3) float32 (normalised x, y, confidence), "target" (B, T, 17, 3) float32,
        "factor" (B, T) float32 mm per unit, "occluded" (B, T, 17) bool (hidden by the body, outside the image or
        not detected), "camera_3d" (B, T, 17, 3) float32 mm, "keypoints" (B, T, 17, 2) float32 px,
        "scores" (B, T, 17) float32, "image_size" (B, 2), "focal" (B,).
    """
    b, t = joints.shape[:2]
    cam = cameras.to_camera(joints)
    points = cameras.project(cam)
    hidden = self_occlusion(cam.reshape(b * t, NUM_JOINTS, 3), np.zeros(3), dtype=geometry_dtype)
    hidden = hidden.reshape(b, t, NUM_JOINTS)
    outside = ((points < 0) | (points >= cameras.size[:, None, None, :])).any(-1)
    if detector is None:
        keypoints, scores = points, np.ones((b, t, NUM_JOINTS))
    else:
        keypoints, scores = detector(points, hidden, cameras.size, rng)
    inputs, size = normalize_keypoints(keypoints, scores, scale_frames=scale_frames)
    target, factor = normalize_target(cam, size, cameras.focal[:, None])
    return {
        "input": inputs,
        "target": target,
        "factor": factor,
        "occluded": hidden | outside | (scores <= 0),
        "camera_3d": cam.astype(np.float32),
        "keypoints": keypoints.astype(np.float32),
        "scores": scores.astype(np.float32),
        "image_size": cameras.size,
        "focal": cameras.focal,
    }


def augmented_views(bank: MotionBank, batch: int, n_frames: int, config: AugmentConfig,
                    seed: Sequence[int], scale_frames: int = 1) -> Dict[str, np.ndarray]:
    """One batch of augmented training samples (see the module docstring).

    Args:
        bank: the training motions.
        batch: samples B.
        n_frames: frames per sample T.
        config: the transforms.
        seed: integers that seed the batch; each transform draws from its own generator seeded with
            ``(*seed, k)``, so switching one transform off does not change what the others draw.
        scale_frames: see :func:`normalize_keypoints`.

    Returns:
        The dict of :func:`render_views`, plus "world" (B, T, 17, 3) world joints and "lengths" (B, 16).
    """
    rngs = {name: np.random.default_rng([*seed, k]) for k, name in enumerate(_STREAMS)}
    motion = config.window(bank, batch, n_frames, rngs["window"])
    if config.splice is not None:
        motion = config.splice(motion, rngs["splice"])
    if config.angles is not None:
        motion = config.angles(motion, bank.fps, rngs["angles"])
    if config.body is not None:
        motion = config.body(motion, rngs["body"])
    if config.trajectory is not None:
        motion = config.trajectory(motion, bank.fps, rngs["trajectory"])
    joints = motion.joints()
    if config.rotate is not None:
        joints = config.rotate(joints, rngs["rotate"])
    if config.mirror is not None:
        joints = config.mirror(joints, rngs["mirror"])
    cameras = config.camera(joints, rngs["camera"])
    out = render_views(joints, cameras, config.detector, rngs["detector"], geometry_dtype=np.float32,
                       scale_frames=scale_frames)
    out["world"] = joints
    out["lengths"] = motion.lengths
    return out


class AugmentedMocapDataset(Dataset):
    """Training samples drawn on the fly by :func:`augmented_views` (a fresh person, camera and motion each time).

    ``len()`` is the number of samples per epoch. A batch of indices is generated at once (``__getitems__``,
    which PyTorch's DataLoader uses), seeded by ``(seed, epoch, first index, batch size)``: the same seed, epoch
    and indices give the same batch. The trainer calls :meth:`set_epoch`.

    Args:
        n_frames: frames per sample.
        epoch_size: samples per epoch.
        clips: training clips (default the 12 of :data:`TRAIN_CLIPS`).
        seed: seed of the data (not the run's seed).
        augment: settings for :meth:`AugmentConfig.from_options`.

    Samples: "input" (T, 17, 3), "target" (T, 17, 3), "factor" (T,), "res" (2,) = (2, 2), "occluded" (T, 17).
    """

    def __init__(self, n_frames: int = 27, epoch_size: int = 4096, clips: Sequence[str] = TRAIN_CLIPS,
                 seed: int = 0, augment: Optional[Dict] = None, scale_frames: int = 1):
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int; got {seed!r}")
        if not isinstance(epoch_size, int) or epoch_size < 1:
            raise ValueError(f"epoch_size must be a positive int; got {epoch_size!r}")
        mocap, fps = load_mocap()
        unknown = [c for c in clips if c not in mocap]
        if unknown or not clips:
            raise ValueError(f"clips must be a non-empty list of names from {sorted(mocap)}; got {list(clips)}")
        self.bank = MotionBank(mocap, clips, fps)
        self.n_frames = int(n_frames)
        self.epoch_size = epoch_size
        self.seed = seed
        self.config = AugmentConfig.from_options(augment)
        self.scale_frames = check_scale_frames(scale_frames)
        self.epoch = 0
        self.skeleton = H36M_SKELETON

    def __len__(self) -> int:
        return self.epoch_size

    def set_epoch(self, epoch: int) -> None:
        """Draw the samples of this epoch."""
        self.epoch = int(epoch)

    def __getitems__(self, indices: List[int]) -> List[Dict[str, torch.Tensor]]:
        indices = [int(i) for i in indices]
        out = augmented_views(self.bank, len(indices), self.n_frames, self.config,
                              (self.seed, self.epoch, indices[0], len(indices)), self.scale_frames)
        tensors = {k: torch.from_numpy(np.ascontiguousarray(out[k])) for k in ("input", "target", "factor",
                                                                                "occluded")}
        res = torch.full((2,), 2.0)
        return [{"input": tensors["input"][i], "target": tensors["target"][i], "factor": tensors["factor"][i],
                 "occluded": tensors["occluded"][i], "res": res} for i in range(len(indices))]

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        return self.__getitems__([index])[0]


def wild_views(n_frames: int = 27, stride: Optional[int] = None, *, noisy: bool = True,
               clips: Sequence[str] = TEST_CLIPS, draws: int = 8, seed: int = 20261202,
               tail: str = "cover", scale_frames: int = 1) -> ClipDataset:
    """The "wild" evaluation split: held-out actions as other people, filmed by other cameras.

    Each clip is played whole at its own speed, ``draws`` times, each time with a body (:class:`BodyShape`), a
    changed pelvis path (:class:`RootTrajectory`), a heading, a mirror coin and a camera (:class:`RandomCamera`)
    drawn from the training distributions with a fixed seed; the joint angles and the motion are the recorded ones.
    ``noisy=True`` adds :class:`DetectorErrors` (no clean samples), ``noisy=False`` gives exact 2D. Both variants
    of one seed show the same people and cameras.

    Returns:
        A :class:`ClipDataset` (sources ``<clip>_wild<k>``, action = clip) with ``occluded`` flags.
    """
    mocap, fps = load_mocap()
    bank = MotionBank(mocap, clips, fps)
    config = AugmentConfig()
    detector = dataclasses.replace(config.detector, p_clean=0.0) if noisy else None
    parts: Dict[str, List[np.ndarray]] = {k: [] for k in ("input", "target", "factor", "occluded", "source")}
    for c, clip in enumerate(clips):
        n = int(bank.frames[c])
        for k in range(draws):
            rngs = {name: np.random.default_rng([seed, c, k, i]) for i, name in enumerate(_STREAMS)}
            root, d = bank.gather(np.array([c]), np.arange(n, dtype=np.float64)[None])
            motion = Motion(root=root, directions=d, lengths=bank.base_lengths[None].copy(), clip=np.array([c]))
            motion = config.body(motion, rngs["body"])
            motion = config.trajectory(motion, fps, rngs["trajectory"])
            joints = config.mirror(config.rotate(motion.joints(), rngs["rotate"]), rngs["mirror"])
            cameras = config.camera(joints, rngs["camera"])
            out = render_views(joints, cameras, detector, rngs["detector"], scale_frames=scale_frames)
            for key in ("input", "target", "factor", "occluded"):
                parts[key].append(out[key][0])
            parts["source"].append(np.full(n, f"{clip}_wild{k:02d}"))
    sources = np.concatenate(parts["source"])
    actions = np.array([s.rsplit("_wild", 1)[0] for s in sources])
    total = len(sources)
    return ClipDataset(np.concatenate(parts["input"]), np.concatenate(parts["target"]),
                       np.concatenate(parts["factor"]), np.full((total, 2), 2.0, dtype=np.float32), sources, actions,
                       n_frames=n_frames, stride=stride or n_frames, skeleton=H36M_SKELETON, tail=tail,
                       occluded=np.concatenate(parts["occluded"]), rng=None)
