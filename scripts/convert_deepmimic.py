"""Converts the DeepMimic humanoid motion clips to the H36M 17-joint skeleton.

Run once by a developer; the output is committed as package data::

    python scripts/convert_deepmimic.py /path/to/deepmimic_clips \
        --output repose_ext/assets/deepmimic_h36m17.npz --fps 50

Source format (the NOTICE.md shipped with the clips): a JSON object
``{"Loop": "wrap"|"none", "Frames": [[44 floats], ...]}``; each frame holds its duration in
seconds, the root position in metres, then the local joint rotations of a 15-joint humanoid
(quaternions w, x, y, z; knees and elbows are one angle in radians about the local z axis).
Source axes: y up, the character faces +x, its right side is +z.

Forward kinematics places each joint at ``parent_position + parent_rotation * offset`` with the
offsets of pybullet_data's humanoid.urdf at scale 0.25 (metres, parent frame). Local rotations are
resampled to one frame rate (slerp for quaternions, linear for root position and hinge angles)
before the kinematics, so bone lengths stay exact.

The clips hold no nose or head-top joint; we place them at fixed offsets in the neck's frame:
nose (0.11, 0.15, 0) m (forward and up: the nose tip, just in front of the humanoid's 0.1 m head
sphere whose centre is 0.175 m above the neck joint) and head top (0, 0.27, 0) m (the top of that
sphere). The H36M "spine" joint
(index 7) is the humanoid's chest joint, "thorax" (8) its neck joint, the pelvis (0) its root.

Output world frame: right-handed, z up, millimetres, floor at z = 0 (the source ground plane
y = 0); ``(x, y, z)_out = 1000 * (x, -z, y)_src``, so the character starts facing +x with its
left side towards +y.

Output npz keys: ``clip_names`` (C,) str; ``fps`` () float; ``loop`` (C,) bool (source "wrap");
``source_fps`` (C,) float (median source frame rate); ``joints_<name>`` (N, 17, 3) float32 mm;
``parents`` (17,) int64 (H36M-17 parents).
"""

import argparse
import json
import os

import numpy as np

# Offsets in the parent's frame, metres (pybullet_data humanoid.urdf at scale 0.25; source axes).
CHEST_FROM_ROOT = np.array([0.0, 0.236151, 0.0])
NECK_FROM_CHEST = np.array([0.0, 0.223894, 0.0])
HIP_FROM_ROOT = {"right": np.array([0.0, 0.0, 0.084887]), "left": np.array([0.0, 0.0, -0.084887])}
KNEE_FROM_HIP = np.array([0.0, -0.421546, 0.0])
ANKLE_FROM_KNEE = np.array([0.0, -0.40987, 0.0])
SHOULDER_FROM_CHEST = {
    "right": np.array([-0.02405, 0.2435, 0.18311]),
    "left": np.array([-0.02405, 0.2435, -0.18311]),
}
ELBOW_FROM_SHOULDER = np.array([0.0, -0.274788, 0.0])
WRIST_FROM_ELBOW = np.array([0.0, -0.258947, 0.0])
# Our choice (the clips hold no such joints): fixed offsets in the neck frame, metres.
NOSE_FROM_NECK = np.array([0.11, 0.15, 0.0])
HEAD_TOP_FROM_NECK = np.array([0.0, 0.27, 0.0])

H36M_PARENTS = np.array([-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15], dtype=np.int64)

# Column layout of one source frame (44 floats).
_QUAT_COLUMNS = {
    "root": 4, "chest": 8, "neck": 12,
    "right_hip": 16, "right_ankle": 21, "right_shoulder": 25,
    "left_hip": 30, "left_ankle": 35, "left_shoulder": 39,
}
_ANGLE_COLUMNS = {"right_knee": 20, "right_elbow": 29, "left_knee": 34, "left_elbow": 43}
_ROOT_POSITION_COLUMNS = slice(1, 4)
FRAME_WIDTH = 44

# Source (x, y, z), y up  ->  output (x, -z, y), z up.
SOURCE_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def quaternion_to_matrix(q):
    """Rotation matrices of unit quaternions.

    Args:
        q: quaternions (w, x, y, z); normalised here.

    Returns:
        Rotation matrices.

    Shape:
        q: (..., 4) -> (..., 3, 3).
    """
    q = np.asarray(q, dtype=np.float64)
    if q.shape[-1] != 4:
        raise ValueError(f"q must have shape (..., 4); got {q.shape}")
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def rotation_about_z(angle):
    """Rotation matrices about the z axis.

    Args:
        angle: angles in radians.

    Returns:
        Rotation matrices.

    Shape:
        angle: (...,) -> (..., 3, 3).
    """
    angle = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(angle), np.sin(angle)
    zero, one = np.zeros_like(angle), np.ones_like(angle)
    return np.stack(
        [np.stack([c, -s, zero], -1), np.stack([s, c, zero], -1), np.stack([zero, zero, one], -1)], -2
    )


def slerp(q0, q1, t):
    """Spherical linear interpolation between unit quaternions, along the shorter arc.

    Args:
        q0: start quaternions (w, x, y, z).
        q1: end quaternions.
        t: interpolation weights in [0, 1].

    Returns:
        Interpolated unit quaternions.

    Shape:
        q0, q1: (N, 4); t: (N,) -> (N, 4).
    """
    q0 = q0 / np.linalg.norm(q0, axis=-1, keepdims=True)
    q1 = q1 / np.linalg.norm(q1, axis=-1, keepdims=True)
    dot = np.sum(q0 * q1, axis=-1)
    q1 = np.where(dot[:, None] < 0, -q1, q1)
    dot = np.abs(dot).clip(max=1.0)
    theta = np.arccos(dot)
    sin_theta = np.sin(theta)
    small = sin_theta < 1e-6
    safe = np.where(small, 1.0, sin_theta)
    w0 = np.where(small, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    w1 = np.where(small, t, np.sin(t * theta) / safe)
    out = w0[:, None] * q0 + w1[:, None] * q1
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def resample_frames(frames, fps):
    """Resamples source frames of varying duration to a fixed frame rate.

    Root positions and hinge angles are interpolated linearly, quaternions by slerp. Output
    frames lie at times 0, 1/fps, ... up to the time of the last source frame.

    Args:
        frames: source frames; column 0 is the frame's duration in seconds.
        fps: output frame rate in Hz.

    Returns:
        Resampled frames with the same columns (column 0 set to 1 / fps).

    Shape:
        frames: (N, 44) -> (M, 44).
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != FRAME_WIDTH or frames.shape[0] < 2:
        raise ValueError(f"frames must have shape (N >= 2, {FRAME_WIDTH}); got {frames.shape}")
    if fps <= 0:
        raise ValueError(f"fps must be positive; got {fps}")
    times = np.concatenate([[0.0], np.cumsum(frames[:-1, 0])])
    if np.any(np.diff(times) <= 0):
        raise ValueError("frames must have positive durations (except the last frame)")
    out_times = np.arange(int(np.floor(times[-1] * fps + 1e-6)) + 1) / fps
    index = np.clip(np.searchsorted(times, out_times, side="right") - 1, 0, len(times) - 2)
    weight = np.clip((out_times - times[index]) / (times[index + 1] - times[index]), 0.0, 1.0)
    a, b = frames[index], frames[index + 1]
    out = a + weight[:, None] * (b - a)  # linear for positions and angles
    for column in _QUAT_COLUMNS.values():
        out[:, column:column + 4] = slerp(a[:, column:column + 4], b[:, column:column + 4], weight)
    out[:, 0] = 1.0 / fps
    return out


def forward_kinematics(frames):
    """H36M-17 joint positions of humanoid frames.

    Args:
        frames: frames in the source layout (44 columns, see module docstring).

    Returns:
        Joint positions in the output world frame (z up), millimetres, H36M-17 order.

    Shape:
        frames: (N, 44) -> (N, 17, 3).
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != FRAME_WIDTH:
        raise ValueError(f"frames must have shape (N, {FRAME_WIDTH}); got {frames.shape}")

    def rot(name):
        column = _QUAT_COLUMNS[name]
        return quaternion_to_matrix(frames[:, column:column + 4])

    def hinge(name):
        return rotation_about_z(frames[:, _ANGLE_COLUMNS[name]])

    def place(position, rotation, offset):
        return position + np.einsum("nij,j->ni", rotation, offset)

    root_pos = frames[:, _ROOT_POSITION_COLUMNS]
    root_rot = rot("root")
    chest_rot = root_rot @ rot("chest")
    chest_pos = place(root_pos, root_rot, CHEST_FROM_ROOT)
    neck_pos = place(chest_pos, chest_rot, NECK_FROM_CHEST)
    neck_rot = chest_rot @ rot("neck")
    joints = {
        0: root_pos,
        7: chest_pos,
        8: neck_pos,
        9: place(neck_pos, neck_rot, NOSE_FROM_NECK),
        10: place(neck_pos, neck_rot, HEAD_TOP_FROM_NECK),
    }
    for side, (hip, knee, ankle) in {"right": (1, 2, 3), "left": (4, 5, 6)}.items():
        hip_pos = place(root_pos, root_rot, HIP_FROM_ROOT[side])
        hip_rot = root_rot @ rot(f"{side}_hip")
        knee_pos = place(hip_pos, hip_rot, KNEE_FROM_HIP)
        knee_rot = hip_rot @ hinge(f"{side}_knee")
        joints[hip], joints[knee] = hip_pos, knee_pos
        joints[ankle] = place(knee_pos, knee_rot, ANKLE_FROM_KNEE)
    for side, (shoulder, elbow, wrist) in {"right": (14, 15, 16), "left": (11, 12, 13)}.items():
        shoulder_pos = place(chest_pos, chest_rot, SHOULDER_FROM_CHEST[side])
        shoulder_rot = chest_rot @ rot(f"{side}_shoulder")
        elbow_pos = place(shoulder_pos, shoulder_rot, ELBOW_FROM_SHOULDER)
        elbow_rot = shoulder_rot @ hinge(f"{side}_elbow")
        joints[shoulder], joints[elbow] = shoulder_pos, elbow_pos
        joints[wrist] = place(elbow_pos, elbow_rot, WRIST_FROM_ELBOW)
    source = np.stack([joints[j] for j in range(17)], axis=1)
    return 1000.0 * source @ SOURCE_TO_WORLD.T


def clip_name(path):
    """Clip name of a source file: ``humanoid3d_walk.txt`` -> ``walk``."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return stem[len("humanoid3d_"):] if stem.startswith("humanoid3d_") else stem


def convert_folder(source_dir, fps):
    """Converts every ``humanoid3d_*.txt`` clip of a folder.

    Args:
        source_dir: folder holding the DeepMimic clip files.
        fps: output frame rate in Hz.

    Returns:
        Dict of arrays ready for ``np.savez_compressed`` (keys in the module docstring).
    """
    paths = sorted(
        os.path.join(source_dir, f) for f in os.listdir(source_dir)
        if f.startswith("humanoid3d_") and f.endswith(".txt")
    )
    if not paths:
        raise FileNotFoundError(f"source_dir must hold humanoid3d_*.txt clips; found none in {source_dir}")
    names, loops, source_fps, arrays = [], [], [], {}
    for path in paths:
        with open(path) as f:
            clip = json.load(f)
        frames = np.asarray(clip["Frames"], dtype=np.float64)
        name = clip_name(path)
        names.append(name)
        loops.append(clip.get("Loop", "none") == "wrap")
        source_fps.append(1.0 / float(np.median(frames[:-1, 0])))
        arrays[f"joints_{name}"] = forward_kinematics(resample_frames(frames, fps)).astype(np.float32)
    arrays.update(
        clip_names=np.array(names),
        fps=np.array(float(fps)),
        loop=np.array(loops),
        source_fps=np.array(source_fps),
        parents=H36M_PARENTS,
    )
    return arrays


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source_dir", help="folder with the humanoid3d_*.txt DeepMimic clips")
    parser.add_argument(
        "--output",
        default=os.path.join(os.path.dirname(__file__), "..", "repose_ext", "assets", "deepmimic_h36m17.npz"),
        help="output npz (default: repose_ext/assets/deepmimic_h36m17.npz)",
    )
    parser.add_argument("--fps", type=float, default=50.0, help="output frame rate in Hz (default 50)")
    args = parser.parse_args(argv)
    arrays = convert_folder(args.source_dir, args.fps)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    np.savez_compressed(args.output, **arrays)
    total = sum(arrays[f"joints_{n}"].shape[0] for n in arrays["clip_names"])
    print(f"wrote {args.output}: {len(arrays['clip_names'])} clips, {total} frames at {args.fps:g} Hz")
    for name in arrays["clip_names"]:
        print(f"  {name:18s} {arrays[f'joints_{name}'].shape[0]:5d} frames")


if __name__ == "__main__":
    main()
