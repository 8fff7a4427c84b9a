"""Lift your own 2D keypoints to 3D with a trained lifter.

    python -m repose_ext.lift --input keypoints.npz --output pose3d.npz [--checkpoint CKPT] [--render out.gif]

Input npz: ``keypoints`` (T, 17, 2) pixel coordinates in Human3.6M-17 order, optional ``scores`` (T, 17) in
[0, 1], and ``width``, ``height`` of the image in pixels. NaN keypoints are treated as missing joints: score 0
and a stand-in position (the mean of the frame's other joints), never a crash.

Output npz: ``pose3d`` (T, 17, 3) root-relative in millimetres, ``units``, ``pose3d_normalized`` (T, 17, 3)
root-relative in the model's normalised units, and the input echoed (``keypoints``, ``scores``, ``width``,
``height``). A monocular lifter sees no metric scale: the millimetres are the normalised pose scaled so that its
median bone lengths match the bundled motion-capture skeleton (``units`` says so).

Clips of any length: up to the model's window in one pass, longer ones in windows that cover every frame
(the last one aligned to the end), overlapping predictions averaged.
"""

from __future__ import annotations

import argparse
import os
from typing import Optional

import numpy as np
import torch

from .data.normalization import normalize_image_coordinates, normalize_keypoints
from .data.skeleton import H36M_PARENTS
from .models import build_model
from .models.checkpoint import load_checkpoint, load_model_weights
from .training.datasets import input_norm

DEFAULT_CHECKPOINT = os.path.join(os.path.dirname(__file__), "assets", "default_model.pt")
NUM_JOINTS = 17


class LiftInputError(ValueError):
    """The input file does not hold what the lifter needs; the message says what and where."""


def read_keypoints(path: str):
    """Read and check an input npz. Returns (keypoints (T,17,2) float64, scores (T,17) float64, width, height)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--input file not found: {path}")
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    for key, what in (("keypoints", "(T, 17, 2) pixel coordinates"), ("width", "the image width in pixels"),
                      ("height", "the image height in pixels")):
        if key not in data:
            raise LiftInputError(f"{path}: missing key {key!r} ({what}); found keys {sorted(data)}")
    kp = np.asarray(data["keypoints"], dtype=np.float64)
    if kp.ndim != 3 or kp.shape[1:] != (NUM_JOINTS, 2) or kp.shape[0] == 0:
        raise LiftInputError(f"{path}: keypoints must have shape (T, 17, 2) with T >= 1; got {kp.shape}")
    scores = np.ones(kp.shape[:2]) if "scores" not in data else np.asarray(data["scores"], dtype=np.float64)
    if scores.shape != kp.shape[:2]:
        raise LiftInputError(f"{path}: scores must have shape (T, 17) = {kp.shape[:2]}; got {scores.shape}")
    sizes = []
    for key in ("width", "height"):
        v = np.asarray(data[key])
        if v.size != 1 or not np.isfinite(v).all() or float(v) <= 0:
            raise LiftInputError(f"{path}: {key} must be one positive number; got {v!r}")
        sizes.append(float(v))
    return kp, scores, sizes[0], sizes[1]


def fill_missing(keypoints: np.ndarray, scores: np.ndarray, width: float, height: float):
    """NaN (or non-finite) joints and scores: score 0, position = mean of the frame's finite joints (or the centre)."""
    kp, sc = keypoints.copy(), np.nan_to_num(scores.copy(), nan=0.0, posinf=0.0, neginf=0.0)
    missing = ~np.isfinite(kp).all(axis=-1)  # (T, 17)
    sc[missing] = 0.0
    for t in np.nonzero(missing.any(axis=1))[0]:
        ok = ~missing[t]
        kp[t, missing[t]] = kp[t, ok].mean(axis=0) if ok.any() else (width / 2, height / 2)
    return kp, np.clip(sc, 0.0, 1.0), missing


def load_lifter(checkpoint: Optional[str] = None):
    """A lifter and its window from one of our checkpoints (config inside). Returns (model, window)."""
    path = checkpoint or DEFAULT_CHECKPOINT
    ckpt = load_checkpoint(path)
    config = ckpt.get("config") or {}
    if "model" not in config:
        raise ValueError(f"checkpoint {path} holds no config['model']: pass a checkpoint written by train.py")
    model = build_model(config["model"])
    load_model_weights(model, ckpt)
    model.input_norm = input_norm(config)
    if model.maxlen is None:  # convolutional and per-frame lifters take a clip of any length in one pass
        return model.eval(), None
    window = int((config.get("data") or {}).get("n_frames") or model.maxlen)
    return model.eval(), min(window, model.maxlen)


def window_starts(t: int, window: int):
    """Starts of windows of length ``window`` covering [0, t): stride ``window``, the last one ending at t."""
    if t <= window:
        return [0]
    starts = list(range(0, t - window + 1, window))
    if starts[-1] + window < t:
        starts.append(t - window)
    return starts


@torch.no_grad()
def lift(model, window: int, keypoints: np.ndarray, scores: np.ndarray, width: float, height: float) -> np.ndarray:
    """Root-relative 3D poses (T, 17, 3) in normalised units from pixel keypoints (T, 17, 2) and scores (T, 17).

    The input is normalised as the model was trained (``model.input_norm``, set by :func:`load_lifter`):
    "pose" by :func:`normalize_keypoints` (the same function the training pipeline uses), else MotionBERT's
    image coordinates. ``window`` None lifts the whole clip in one pass."""
    if getattr(model, "input_norm", "image") == "pose":
        x, _size = normalize_keypoints(keypoints, scores)
    else:
        x = np.concatenate([normalize_image_coordinates(keypoints, width, height), scores[..., None]], axis=-1)
    x = torch.as_tensor(x, dtype=torch.float32)
    t = x.shape[0]
    window = t if window is None else window
    out = torch.zeros(t, NUM_JOINTS, 3)
    count = torch.zeros(t, 1, 1)
    for s in window_starts(t, window):
        e = min(s + window, t)
        out[s:e] += model(x[None, s:e])[0]
        count[s:e] += 1
    pose = out / count
    return (pose - pose[:, :1]).numpy()


def reference_bone_lengths() -> np.ndarray:
    """Bone lengths (mm) of the bundled motion-capture skeleton, one per non-root joint in H36M order."""
    from .data.synthetic_views import load_mocap

    clips, _fps = load_mocap()
    clip = next(iter(clips.values()))  # bone lengths are the same in every frame and clip
    return np.array([np.linalg.norm(clip[0, j] - clip[0, p]) for j, p in enumerate(H36M_PARENTS) if p >= 0])


def to_millimetres(pose: np.ndarray) -> np.ndarray:
    """Scale a root-relative pose so its median bone lengths match the bundled skeleton's."""
    bones = np.stack([np.linalg.norm(pose[:, j] - pose[:, p], axis=-1) for j, p in enumerate(H36M_PARENTS) if p >= 0], 1)
    scale = reference_bone_lengths().sum() / max(float(np.median(bones, axis=0).sum()), 1e-9)
    return pose * scale


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m repose_ext.lift", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", required=True, help="npz with keypoints (T,17,2), optional scores (T,17), width, height")
    ap.add_argument("--output", required=True, help="npz to write")
    ap.add_argument("--checkpoint", default=None, help=f"our checkpoint (default: the bundled {DEFAULT_CHECKPOINT})")
    ap.add_argument("--render", default=None, help="also draw the result (.gif animates, .png shows one frame)")
    args = ap.parse_args(argv)
    try:
        keypoints, scores, width, height = read_keypoints(args.input)
    except (LiftInputError, FileNotFoundError) as exc:
        ap.error(str(exc))
    filled, clean_scores, missing = fill_missing(keypoints, scores, width, height)
    model, window = load_lifter(args.checkpoint)
    pose_n = lift(model, window, filled, clean_scores, width, height)
    pose_mm = to_millimetres(pose_n)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    np.savez(args.output, pose3d=pose_mm.astype(np.float32), pose3d_normalized=pose_n.astype(np.float32),
             units=np.array("mm, root-relative; metric scale from the bone lengths of the bundled mocap skeleton"),
             keypoints=keypoints, scores=scores, width=width, height=height)
    print(f"lifted {len(pose_n)} frames ({int(missing.sum())} missing joints) -> {args.output}")
    if args.render:
        from .visualize import render_clip

        render_clip(args.render, filled, [pose_mm], ["lifted 3D (mm)"], occluded=missing | (clean_scores < 0.3))
        print(f"rendered -> {args.render}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
