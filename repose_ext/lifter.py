"""Lift 2D keypoints from a detector to 3D poses: the Python API behind ``python -m repose_ext.lift``.

    from repose_ext import Lifter

    lifter = Lifter()                                   # the bundled model; Lifter("runs/x/model.pt") for yours
    result = lifter.lift("alphapose-results.json", fps=30)
    result.pose3d                                       # (N, 17, 3) mm, root-relative, Human3.6M-17 order
    result.save("pose3d.npz")                           # or .json / .csv

What happens to the input (one place for each step):

1. :func:`repose_ext.keypoints.readers.read_detections` reads the file (format detected where unambiguous);
2. persons are tracked and ranked (:mod:`repose_ext.keypoints.tracking`); the main subject is lifted by default,
   ``person=N`` lifts track N, ``all_persons=True`` every track; frames inside a track's span where it was not
   detected are filled by interpolation and listed;
3. the joints are converted to Human3.6M-17 (:func:`repose_ext.keypoints.formats.to_h36m17`);
4. with ``fps`` given, the series is resampled to the rate the model was trained at and the poses back to one per
   input frame;
5. the keypoints are normalised as in training (:func:`repose_ext.data.normalization.normalize_keypoints` for the
   camera-free lifters, MotionBERT's image coordinates for the others), lifted with flip test-time averaging, and
   scaled to millimetres by matching the bundled skeleton's bone lengths (a monocular lifter sees no metric scale).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from typing import List, Optional, Union

import numpy as np
import torch

from ._atomic import atomic_write
from .data.augment import bones_of
from .data.clips import flip_pose
from .data.normalization import check_scale_frames, normalize_image_coordinates, normalize_keypoints
from .data.skeleton import H36M_JOINT_NAMES, H36M_LEFT, H36M_RIGHT
from .keypoints.formats import FORMATS, to_h36m17
from .keypoints.readers import (Detections, KeypointInputError, from_array, positive_number, read_detections,
                                split_xyc)
from .keypoints.tracking import select_tracks, track_series
from .models import build_model
from .models.checkpoint import load_checkpoint, load_model_weights
from .training.datasets import input_norm, pose_scale_frames

DEFAULT_CHECKPOINT = os.path.join(os.path.dirname(__file__), "assets", "default_model.pt")
NUM_JOINTS = 17
#: Frame rate of the embedded motion capture and of Human3.6M, the rate every shipped config trains at.
MODEL_FPS = 50.0
UNITS = "mm, root-relative; metric scale from the bone lengths of the bundled mocap skeleton"


@dataclasses.dataclass
class LiftResult:
    """3D poses of one or more tracks, one row per (track, frame).

    Attributes:
        pose3d: (N, 17, 3) root-relative millimetres, Human3.6M-17 order.
        pose3d_normalized: (N, 17, 3) the model's output (root-relative, units of the normalised input).
        frame: (N,) frame index of each row (0-based, into ``frame_ids``).
        frame_id: (N,) the input's frame id (image id, file name or index).
        track: (N,) track rank (0 = main subject).
        filled: (N,) True where the person was not detected in that frame (keypoints interpolated).
        scores: (N, 17) the 2D confidences after conversion to Human3.6M-17.
        keypoints: (N, 17, 2) the 2D keypoints after conversion (pixels).
        format: the input's joint order.
    """

    pose3d: np.ndarray
    pose3d_normalized: np.ndarray
    frame: np.ndarray
    frame_id: np.ndarray
    track: np.ndarray
    filled: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray
    format: str

    def save(self, path: str) -> str:
        """Write ``.npz`` (default), ``.json`` or ``.csv`` atomically (no partial file on failure). Returns the
        path written."""
        path = os.fspath(path)
        if os.path.isdir(path) or os.path.basename(path) in ("", ".npz", ".json", ".csv"):
            raise KeypointInputError(f"--output must be a file name (e.g. pose3d.npz); got {path!r}")
        ext = os.path.splitext(path)[1].lower()
        folder = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise KeypointInputError(f"--output {path}: cannot create its folder ({exc})") from None
        if ext == ".json":
            atomic_write(path, lambda f: f.write(json.dumps(self._json())), binary=False)
        elif ext == ".csv":
            atomic_write(path, lambda f: f.write(self._csv()), binary=False)
        else:
            atomic_write(path, lambda f: np.savez(
                f, pose3d=self.pose3d.astype(np.float32), pose3d_normalized=self.pose3d_normalized.astype(np.float32),
                frame=self.frame, frame_id=self.frame_id.astype(str), track=self.track, filled=self.filled,
                scores=self.scores.astype(np.float32), keypoints=self.keypoints.astype(np.float32),
                joints=np.array(H36M_JOINT_NAMES), units=np.array(UNITS), format=np.array(self.format)))
        return path

    def _json(self):
        return {"units": UNITS, "joints": list(H36M_JOINT_NAMES), "format": self.format,
                "frames": [{"frame": int(f), "frame_id": str(i), "track": int(t), "filled": bool(b),
                            "pose3d": np.round(p, 2).tolist()}
                           for f, i, t, b, p in zip(self.frame, self.frame_id, self.track, self.filled, self.pose3d)]}

    def _csv(self):
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["frame", "frame_id", "track", "filled"] + [f"{j}_{c}" for j in H36M_JOINT_NAMES for c in "xyz"])
        for f, i, t, b, p in zip(self.frame, self.frame_id, self.track, self.filled, self.pose3d):
            w.writerow([int(f), i, int(t), int(b)] + [f"{v:.2f}" for v in p.reshape(-1)])
        return out.getvalue()


def _resample(series: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``series`` (S, ...) at fractional frame ``positions`` (M,)."""
    positions = np.clip(positions, 0, len(series) - 1)
    i0 = np.floor(positions).astype(np.int64)
    i1 = np.minimum(i0 + 1, len(series) - 1)
    w = (positions - i0).reshape((-1,) + (1,) * (series.ndim - 1))
    return series[i0] * (1 - w) + series[i1] * w


def _window_starts(t: int, window: int) -> List[int]:
    """Starts of windows of length ``window`` covering [0, t): stride ``window``, the last one ending at t."""
    if t <= window:
        return [0]
    starts = list(range(0, t - window + 1, window))
    if starts[-1] + window < t:
        starts.append(t - window)
    return starts


class Lifter:
    """A trained lifter ready for detector keypoints.

    Args:
        checkpoint: one of our checkpoints (``model.pt`` / ``best.pt`` of a run; the configuration inside says how
            its input was normalised); None: the bundled model.
        device: "auto" (CUDA when available), "cpu" or "cuda".
        flip_test: average the prediction with the mirrored input's (as in evaluation).
    """

    def __init__(self, checkpoint: Optional[str] = None, device: str = "auto", flip_test: bool = True):
        path = os.fspath(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
        if not os.path.isfile(path):
            raise KeypointInputError(f"--checkpoint {path}: no such file")
        try:
            ckpt = load_checkpoint(path)
        except Exception as exc:  # truncated, corrupt or not ours: say so without a traceback
            raise KeypointInputError(f"--checkpoint {path}: not a readable checkpoint ({type(exc).__name__}: "
                                     f"{str(exc)[:200]})") from None
        config = ckpt.get("config") if isinstance(ckpt, dict) else None
        if not isinstance(config, dict) or "model" not in config:
            raise KeypointInputError(f"--checkpoint {path}: holds no config['model']; pass a checkpoint written by "
                                     f"train.py")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        try:
            self.model = build_model(config["model"])
            load_model_weights(self.model, ckpt)
        except (ValueError, KeyError, RuntimeError, TypeError) as exc:
            raise KeypointInputError(f"--checkpoint {path}: its weights do not fit its model ({str(exc)[:200]})") \
                from None
        if not all(torch.isfinite(p).all() for p in self.model.state_dict().values() if p.is_floating_point()):
            raise KeypointInputError(f"--checkpoint {path}: holds non-finite weights")
        self.model.to(self.device).eval()
        self.input_norm = input_norm(config)
        try:
            self.scale_frames = check_scale_frames(pose_scale_frames(config))
        except ValueError as exc:
            raise KeypointInputError(f"--checkpoint {path}: data.options: {exc}") from None
        self.window = None if self.model.maxlen is None else min(
            int((config.get("data") or {}).get("n_frames") or self.model.maxlen), self.model.maxlen)
        self.flip_test = flip_test
        self.checkpoint = path
        self._reference_bones: Optional[np.ndarray] = None

    # ------------------------------------------------------------------------------------------------------------
    def lift(self, keypoints: Union[str, os.PathLike, np.ndarray], format: Optional[str] = None,
             width: Optional[float] = None, height: Optional[float] = None, fps: Optional[float] = None,
             person: Optional[int] = None, all_persons: bool = False,
             scores: Optional[np.ndarray] = None) -> LiftResult:
        """Lift a detector's output.

        Args:
            keypoints: a file or OpenPose folder (see :mod:`repose_ext.keypoints.readers`), or an array (T, K, 2)
                or (T, K, 3) of one person's pixels (third column: score).
            format: joint order (:data:`~repose_ext.keypoints.formats.FORMATS`); needed where the number of
                keypoints is ambiguous (17: ``h36m17`` or ``coco17``).
            width, height: image size in pixels; needed when the file does not say and the model normalises by
                the image (the bundled camera-free model does not).
            fps: the input's frame rate; None: taken as the model's rate (50 Hz), no resampling.
            person: lift this track (0 = main subject); ``all_persons``: every track.
            scores: (T, K) confidences for an array input.

        Returns:
            A :class:`LiftResult`.
        """
        det = self._detections(keypoints, format, scores)
        width = det.width if width is None else positive_number(width, "width")
        height = det.height if height is None else positive_number(height, "height")
        fps = det.fps if fps is None else positive_number(fps, "fps")
        if self.input_norm != "pose" and (width is None or height is None):
            raise KeypointInputError("this model normalises by the image size: give width and height (--width "
                                     "--height)")
        if person is not None and (isinstance(person, bool) or not isinstance(person, (int, np.integer))):
            raise KeypointInputError(f"person must be a track number (int); got {person!r}")
        try:
            chosen = select_tracks(det, person=person, all_persons=all_persons)
        except ValueError as exc:
            raise KeypointInputError(str(exc)) from None
        parts = []
        for rank, rows in chosen:
            frames, kp, sc, filled = track_series(det, rows)
            kp, sc = to_h36m17(kp, sc, det.format)
            if all_persons and len(chosen) > 1 and not (sc > 0).any():
                continue  # a track of detections without one usable joint: nothing to lift, the others still are
            pose_n = self._lift_series(kp, sc, width, height, fps)
            if not np.isfinite(pose_n).all():
                raise KeypointInputError(f"the model gave non-finite poses for track {rank} (input out of range?)")
            parts.append((rank, frames, kp, sc, filled, pose_n, self._millimetres(pose_n)))
        if not parts:
            raise KeypointInputError("no track has a keypoint with a confidence above 0: nothing to lift")
        return LiftResult(
            pose3d=np.concatenate([p[6] for p in parts]), pose3d_normalized=np.concatenate([p[5] for p in parts]),
            frame=np.concatenate([p[1] for p in parts]),
            frame_id=np.concatenate([det.frame_ids[p[1]] for p in parts]),
            track=np.concatenate([np.full(len(p[1]), p[0]) for p in parts]),
            filled=np.concatenate([p[4] for p in parts]), scores=np.concatenate([p[3] for p in parts]),
            keypoints=np.concatenate([p[2] for p in parts]), format=det.format)

    def _detections(self, keypoints, fmt, scores) -> Detections:
        if fmt is not None and fmt not in FORMATS:
            raise KeypointInputError(f"format must be one of {list(FORMATS)}; got {fmt!r}")
        if isinstance(keypoints, (str, os.PathLike)):
            return read_detections(keypoints, fmt)
        arr = np.asarray(keypoints)
        if arr.ndim != 3 or arr.shape[-1] not in (2, 3) or arr.shape[0] == 0:
            raise KeypointInputError(f"keypoints must be an array (T, K, 2) or (T, K, 3); got shape {arr.shape}")
        kp, sc = split_xyc(arr, "keypoints")
        return from_array(kp, sc if scores is None else scores, fmt)

    @torch.no_grad()
    def _lift_series(self, kp, sc, width, height, fps) -> np.ndarray:
        """(S, 17, 2) pixels and (S, 17) scores of one track -> (S, 17, 3) root-relative normalised poses."""
        s = len(kp)
        resample = fps is not None and abs(fps - MODEL_FPS) > 1e-6 and s > 1
        if resample:  # to the model's rate, then back to one pose per input frame
            positions = np.arange(0, (s - 1) * MODEL_FPS / fps + 1e-9) * fps / MODEL_FPS
            kp, sc = _resample(kp, positions), _resample(sc, positions)
        if (sc > 0).sum() == 0:
            raise KeypointInputError("no keypoint has a confidence above 0: nothing to lift")
        if self.input_norm == "pose":
            x, _ = normalize_keypoints(kp, sc, scale_frames=self.scale_frames)
        else:
            x = np.concatenate([normalize_image_coordinates(kp, width, height), sc[..., None]], -1)
        x = torch.as_tensor(x, dtype=torch.float32, device=self.device)
        pose = self._run(x)
        if self.flip_test:
            pose = 0.5 * (pose + flip_pose(self._run(flip_pose(x, H36M_LEFT, H36M_RIGHT)), H36M_LEFT, H36M_RIGHT))
        pose = (pose - pose[:, :1]).cpu().numpy().astype(np.float64)
        if resample:
            pose = _resample(pose, np.arange(s) * MODEL_FPS / fps)
        return pose

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[0]
        window = t if self.window is None else self.window
        out = torch.zeros(t, NUM_JOINTS, 3, device=x.device)
        count = torch.zeros(t, 1, 1, device=x.device)
        for start in _window_starts(t, window):
            end = min(start + window, t)
            out[start:end] += self.model(x[None, start:end])[0].float()
            count[start:end] += 1
        return out / count

    def _millimetres(self, pose: np.ndarray) -> np.ndarray:
        """Scale so that the median bone lengths match the bundled motion-capture skeleton's."""
        if self._reference_bones is None:
            from .data.synthetic_views import load_mocap

            clips, _ = load_mocap()
            self._reference_bones = np.linalg.norm(bones_of(next(iter(clips.values()))[0]), axis=-1)
        bones = np.linalg.norm(bones_of(pose), axis=-1)  # (N, 16)
        scale = self._reference_bones.sum() / max(float(np.median(bones, axis=0).sum()), 1e-9)
        return pose * scale
