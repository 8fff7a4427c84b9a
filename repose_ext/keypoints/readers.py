"""Readers of detector output: arrays, COCO keypoint results, AlphaPose results and OpenPose folders.

Every reader returns :class:`Detections`: one row per detected person and frame, nothing unpickled (npz/npy with
``allow_pickle=False``, JSON with the standard parser). A malformed file raises :class:`KeypointInputError`
naming the file and what is wrong.

* npz / npy: an array ``(T, K, 2)`` or ``(T, K, 3)`` (third column: score), one person per frame; npz keys
  ``keypoints`` (required), ``scores`` (T, K), ``width``, ``height``, ``fps`` (optional scalars).
* COCO keypoint-results JSON (MMPose, Detectron2, YOLO exporters): a list of
  ``{"image_id": int, "category_id": 1, "keypoints": [x, y, v] * K, "score": s}``; several persons per image;
  frames are the image ids in increasing order.
* AlphaPose results JSON: the same list with ``"image_id"`` a file name (``"12.jpg"``) and optionally ``"idx"``
  (AlphaPose's track id); frames are the file names in natural order.
* OpenPose output folder: one ``*_keypoints.json`` per frame with ``{"people": [{"pose_keypoints_2d": [...]}]}``;
  frames are the files in natural order; joints at (0, 0) with confidence 0 are missing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import zipfile
import zlib
from typing import Any, List, Optional, Sequence

import numpy as np

from .formats import FORMATS, NUM_KEYPOINTS, guess_format


class KeypointInputError(ValueError):
    """The input does not hold what the lifter needs; the message names the file and what is wrong."""


@dataclasses.dataclass
class Detections:
    """2D detections of a clip, one row per person and frame.

    Attributes:
        keypoints: (N, K, 2) pixels.
        scores: (N, K) confidences in [0, 1] (0: missing).
        frame: (N,) index into ``frame_ids`` of each row.
        frame_ids: (T,) the clip's frames (image ids, file names or 0..T-1), in time order; frames without a
            detection are kept.
        format: joint order, one of :data:`~repose_ext.keypoints.formats.FORMATS`.
        width, height: image size in pixels, if the file gives it.
        fps: frame rate, if the file gives it.
        single_person: the rows are one person by construction (an array input): no tracking.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    frame: np.ndarray
    frame_ids: np.ndarray
    format: str
    width: Optional[float] = None
    height: Optional[float] = None
    fps: Optional[float] = None
    single_person: bool = False


def _natural_key(name: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(name))]


def positive_number(value: Any, what: str, source: Optional[str] = None) -> Optional[float]:
    """``value`` as a float if it is one positive finite number (None stays None), else a
    KeypointInputError that names ``what`` (and the file ``source`` it came from, if any)."""
    if value is None:
        return None
    v = np.asarray(value)
    if v.dtype.kind not in "iuf" or v.size != 1 or not np.isfinite(v).all() or float(v.reshape(())) <= 0:
        prefix = f"{source}: " if source else ""
        raise KeypointInputError(f"{prefix}{what} must be one positive number; got {value!r}")
    return float(v.reshape(()))


def _checked_format(fmt: Optional[str], k: int, source: str, hint: Sequence[str] = ()) -> str:
    if fmt is None:
        try:
            return guess_format(k, source, hint)
        except ValueError as exc:
            raise KeypointInputError(str(exc)) from None
    if fmt not in FORMATS:
        raise KeypointInputError(f"format must be one of {list(FORMATS)}; got {fmt!r}")
    if NUM_KEYPOINTS[fmt] != k:
        raise KeypointInputError(f"{source}: format {fmt} has {NUM_KEYPOINTS[fmt]} keypoints per person; the file "
                                 f"has {k}")
    return fmt


def split_xyc(array: np.ndarray, source: str, what: str = "keypoints"):
    """(..., K, 2|3) numeric array -> keypoints (..., K, 2), scores (..., K) or None."""
    if array.dtype.kind not in "iuf":
        raise KeypointInputError(f"{source}: {what} must be numbers; got dtype {array.dtype}")
    array = array.astype(np.float64)
    if array.shape[-1] == 3:
        return array[..., :2], array[..., 2]
    return array, None


def _clean_scores(keypoints: np.ndarray, scores: np.ndarray, source: str) -> np.ndarray:
    """Scores in [0, 1]; non-finite scores and joints with non-finite coordinates become missing (0)."""
    out = np.where(np.isfinite(scores), scores, 0.0)
    if (out < 0).any():
        raise KeypointInputError(f"{source}: scores must be >= 0; found {out.min()}")
    out = np.clip(out, 0.0, 1.0)
    bad = ~np.isfinite(keypoints).all(-1)
    if (np.abs(np.where(np.isfinite(keypoints), keypoints, 0.0)) > 1e7).any():
        raise KeypointInputError(f"{source}: keypoints must be pixel coordinates; found values beyond 1e7")
    return np.where(bad, 0.0, out)


def read_array(path: str, fmt: Optional[str] = None) -> Detections:
    """An npz or npy file of one person's keypoints per frame."""
    try:
        if path.endswith(".npy"):
            data = {"keypoints": np.load(path, allow_pickle=False)}
        else:
            with np.load(path, allow_pickle=False) as f:
                data = {k: f[k] for k in f.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:  # object arrays, truncated, ...
        raise KeypointInputError(f"{path}: not a readable {os.path.splitext(path)[1] or 'npz'} file of numeric "
                                 f"arrays ({exc})") from None
    if "keypoints" not in data:
        raise KeypointInputError(f"{path}: missing key 'keypoints' ((T, K, 2) or (T, K, 3) pixels); found keys "
                                 f"{sorted(data)}")
    arr = np.asarray(data["keypoints"])
    if arr.ndim != 3 or arr.shape[-1] not in (2, 3) or arr.shape[0] == 0:
        raise KeypointInputError(f"{path}: keypoints must have shape (T, K, 2) or (T, K, 3) with T >= 1; got "
                                 f"{arr.shape}")
    kp, sc = split_xyc(arr, path)
    if "scores" in data:
        sc = np.asarray(data["scores"])
        if sc.dtype.kind not in "iuf" or sc.shape != kp.shape[:2]:
            raise KeypointInputError(f"{path}: scores must be numbers of shape {kp.shape[:2]}; got {sc.dtype} "
                                     f"{sc.shape}")
        sc = sc.astype(np.float64)
    if fmt is None and "format" in data:
        fmt = str(data["format"])
    det = from_array(kp, sc, fmt, path)
    det.width = positive_number(data.get("width"), "width", path)
    det.height = positive_number(data.get("height"), "height", path)
    det.fps = positive_number(data.get("fps"), "fps", path)
    return det


def from_array(keypoints: np.ndarray, scores: Optional[np.ndarray], fmt: Optional[str],
               source: str = "keypoints") -> Detections:
    """One person's keypoints (T, K, 2) and scores (T, K) (None: all 1) as :class:`Detections`."""
    kp = np.asarray(keypoints, dtype=np.float64)
    sc = np.ones(kp.shape[:2]) if scores is None else np.asarray(scores, dtype=np.float64)
    if sc.shape != kp.shape[:2]:
        raise KeypointInputError(f"{source}: scores must have shape {kp.shape[:2]}; got {sc.shape}")
    fmt = _checked_format(fmt, kp.shape[1], source)
    t = kp.shape[0]
    return Detections(kp, _clean_scores(kp, sc, source), np.arange(t), np.arange(t), fmt, single_person=True)


def _load_json(path: str) -> Any:
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeypointInputError(f"{path}: not readable JSON ({exc})") from None


def _rows_to_array(rows: List[Any], source: str, what: str) -> np.ndarray:
    lengths = {len(r) if isinstance(r, list) else -1 for r in rows}
    if len(lengths) != 1 or -1 in lengths or next(iter(lengths)) % 3 or next(iter(lengths)) == 0:
        raise KeypointInputError(f"{source}: every {what} must be a list of x, y, score triples of the same length; "
                                 f"got lengths {sorted(lengths)}")
    try:
        arr = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        raise KeypointInputError(f"{source}: {what} must hold numbers only") from None
    return arr.reshape(len(rows), -1, 3)


def read_results_json(path: str, fmt: Optional[str] = None) -> Detections:
    """A COCO keypoint-results or AlphaPose results JSON file (told apart by the type of ``image_id``)."""
    data = _load_json(path)
    if isinstance(data, dict) and "annotations" in data:  # a COCO dataset file: its annotations are the results
        data = data["annotations"]
    if not isinstance(data, list) or not data:
        raise KeypointInputError(f"{path}: expected a non-empty list of detections {{image_id, keypoints, score}}; "
                                 f"got {type(data).__name__ if data else 'an empty file'}")
    for i, d in enumerate(data):
        if not isinstance(d, dict) or "image_id" not in d or "keypoints" not in d:
            raise KeypointInputError(f"{path}: detection {i} lacks 'image_id' or 'keypoints'")
    image_ids = [d["image_id"] for d in data]
    alphapose = all(isinstance(i, str) for i in image_ids)
    if not alphapose and not all(isinstance(i, int) and not isinstance(i, bool) for i in image_ids):
        raise KeypointInputError(f"{path}: image_id must be integers (COCO) or file names (AlphaPose) throughout")
    arr = _rows_to_array([d["keypoints"] for d in data], path, "'keypoints'")
    kp, sc = arr[..., :2], arr[..., 2]
    fmt = _checked_format(fmt, kp.shape[1], path, hint=("coco17", "halpe26"))
    frame_ids = sorted(set(image_ids), key=_natural_key if alphapose else None)
    index = {f: i for i, f in enumerate(frame_ids)}
    frame = np.array([index[i] for i in image_ids], dtype=np.int64)
    # COCO's visibility flag v (0 unlabelled, 1, 2) and detectors' confidences both go to [0, 1]: v = 0 is missing.
    order = np.argsort(frame, kind="stable")
    return Detections(kp[order], _clean_scores(kp[order], sc[order], path), frame[order],
                      np.array(frame_ids), fmt)


def read_openpose_folder(path: str, fmt: Optional[str] = None) -> Detections:
    """An OpenPose ``--write_json`` folder: one ``*_keypoints.json`` per frame."""
    try:
        names = sorted((n for n in os.listdir(path) if n.endswith(".json")), key=_natural_key)
    except OSError as exc:
        raise KeypointInputError(f"{path}: cannot read the folder ({exc})") from None
    if not names:
        raise KeypointInputError(f"{path}: no OpenPose *_keypoints.json files in the folder")
    rows, frame = [], []
    for t, name in enumerate(names):
        data = _load_json(os.path.join(path, name))
        people = data.get("people") if isinstance(data, dict) else None
        if not isinstance(people, list):
            raise KeypointInputError(f"{os.path.join(path, name)}: expected {{'people': [...]}} (OpenPose JSON)")
        for p in people:
            if not isinstance(p, dict) or "pose_keypoints_2d" not in p:
                raise KeypointInputError(f"{os.path.join(path, name)}: a person lacks 'pose_keypoints_2d'")
            rows.append(p["pose_keypoints_2d"])
            frame.append(t)
    frame_ids = np.array(names)
    if not rows:
        raise KeypointInputError(f"{path}: no person detected in any of the {len(names)} frames")
    arr = _rows_to_array(rows, path, "'pose_keypoints_2d'")
    kp, sc = arr[..., :2], arr[..., 2]
    fmt = _checked_format(fmt, kp.shape[1], path, hint=("body25", "coco18"))
    sc = np.where((kp == 0).all(-1), 0.0, sc)
    return Detections(kp, _clean_scores(kp, sc, path), np.array(frame, dtype=np.int64), frame_ids, fmt)


def read_detections(path: str, fmt: Optional[str] = None) -> Detections:
    """Read any supported input by its type: a folder (OpenPose), ``.json`` (COCO / AlphaPose results),
    ``.npz`` / ``.npy`` (arrays)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return read_openpose_folder(path, fmt)
    if not os.path.isfile(path):
        raise KeypointInputError(f"{path}: no such file or folder")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".json":
        return read_results_json(path, fmt)
    if ext in (".npz", ".npy"):
        return read_array(path, fmt)
    raise KeypointInputError(f"{path}: unknown input type {ext or '(no extension)'}; expected an OpenPose folder, "
                             f".json (COCO / AlphaPose results), .npz or .npy")
