"""Following persons across frames and choosing the main subject.

:func:`track_persons` links the detections of consecutive frames greedily by keypoint distance: each track
predicts its keypoints in the next frame from its last two observations (constant velocity, so two people who
cross keep their identities), a detection joins the track whose prediction is nearest, if the mean distance of
their common confident joints is under ``max_distance`` times the track's body size; a track that was not seen
for ``max_gap`` frames ends. Tracks are then ranked by :func:`rank_tracks`: the sum over the track's frames of mean
confidence x body size x centrality, so a long, confident, large and central track (the subject the camera
follows) outranks a bystander who walks past. Track 0 is the main subject.

:func:`track_series` gives one track as a series over its span of frames, filling the frames where it was not
detected by linear interpolation (with confidences halved), and says which frames were filled.
"""

from __future__ import annotations

import warnings
from typing import Optional, Tuple

import numpy as np

from .readers import Detections


def _size(kp: np.ndarray, sc: np.ndarray) -> float:
    ok = sc > 0
    if ok.sum() < 2:
        return 1.0
    pts = kp[ok]
    return max(float(np.linalg.norm(pts.max(0) - pts.min(0))), 1.0)


def track_persons(det: Detections, max_gap: int = 30, max_distance: float = 0.5) -> np.ndarray:
    """Track id of every row of ``det`` (0, 1, ... in order of appearance).

    Args:
        det: the detections.
        max_gap: frames a track may go undetected and still continue.
        max_distance: largest mean joint distance, in units of the track's body size (bounding-box diagonal).
    """
    n = len(det.frame)
    ids = np.full(n, -1, dtype=np.int64)
    tracks = []  # dicts: last frame, keypoints, scores, velocity, size
    rows_by_frame = np.split(np.arange(n), np.flatnonzero(np.diff(det.frame)) + 1) if n else []
    for rows in rows_by_frame:
        t = int(det.frame[rows[0]])
        live = [k for k, tr in enumerate(tracks) if t - tr["frame"] <= max_gap]
        pairs = []
        for r in rows:
            for k in live:
                tr = tracks[k]
                pred = tr["kp"] + tr["vel"] * (t - tr["frame"])
                common = (det.scores[r] > 0) & (tr["sc"] > 0)
                if common.sum() < 2:
                    continue
                dist = np.linalg.norm(det.keypoints[r][common] - pred[common], axis=-1).mean() / tr["size"]
                if dist < max_distance:
                    pairs.append((dist, int(r), k))
        used_rows, used_tracks = set(), set()
        for dist, r, k in sorted(pairs):
            if r in used_rows or k in used_tracks:
                continue
            used_rows.add(r)
            used_tracks.add(k)
            ids[r] = k
        for r in rows:
            kp, sc = det.keypoints[r], det.scores[r]
            if ids[r] < 0:
                ids[r] = len(tracks)
                tracks.append({"frame": t, "kp": kp.copy(), "sc": sc.copy(), "vel": np.zeros_like(kp),
                               "size": _size(kp, sc)})
                continue
            tr = tracks[ids[r]]
            both = ((sc > 0) & (tr["sc"] > 0))[:, None]
            step = (kp - tr["kp"]) / max(t - tr["frame"], 1)
            tr["vel"] = np.where(both, 0.5 * tr["vel"] + 0.5 * step, tr["vel"])
            tr["kp"] = np.where((sc > 0)[:, None], kp, tr["kp"] + tr["vel"] * (t - tr["frame"]))
            tr["sc"] = np.maximum(sc, 0.5 * tr["sc"])
            tr["size"] = 0.8 * tr["size"] + 0.2 * _size(kp, sc)
            tr["frame"] = t
    return ids


def rank_tracks(det: Detections, ids: np.ndarray) -> np.ndarray:
    """Track ids ordered from the main subject down (see the module docstring)."""
    if len(ids) == 0:
        return np.zeros(0, dtype=np.int64)
    ok = det.scores > 0
    pts = np.where(ok[..., None], det.keypoints, np.nan)
    with warnings.catch_warnings():  # rows without a confident joint give NaN boxes (value 0 below)
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanmin(pts, axis=1), np.nanmax(pts, axis=1)
        if det.width is not None and det.height is not None:
            image_lo, image_hi = np.zeros(2), np.array([det.width, det.height])
        else:  # the extent of every detection stands in for the image
            image_lo, image_hi = np.nanmin(lo, axis=0), np.nanmax(hi, axis=0)
    centre = (lo + hi) / 2
    diag = max(float(np.linalg.norm(image_hi - image_lo)), 1.0)
    centrality = np.clip(1 - np.linalg.norm(centre - (image_lo + image_hi) / 2, axis=-1) / (0.5 * diag), 0, 1)
    size = np.linalg.norm(hi - lo, axis=-1) / diag
    confidence = det.scores.mean(-1)
    value = np.nan_to_num(confidence * (0.5 + 0.5 * centrality) * size)
    totals = np.bincount(ids, weights=value)
    return np.argsort(-totals, kind="stable")


def track_series(det: Detections, rows: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One track as a series over its span of frames.

    Returns:
        ``(frames (S,), keypoints (S, K, 2), scores (S, K), filled (S,) bool)``: frames are indices into
        ``det.frame_ids`` from the track's first to its last detection; frames without a detection are filled by
        linear interpolation of each joint between its nearest detected frames, with half the confidence.
    """
    rows = rows[np.argsort(det.frame[rows], kind="stable")]
    first, last = int(det.frame[rows[0]]), int(det.frame[rows[-1]])
    frames = np.arange(first, last + 1)
    seen = det.frame[rows] - first
    k = det.keypoints.shape[1]
    kp = np.zeros((len(frames), k, 2))
    sc = np.zeros((len(frames), k))
    kp[seen], sc[seen] = det.keypoints[rows], det.scores[rows]
    filled = np.ones(len(frames), dtype=bool)
    filled[seen] = False
    for j in range(k):  # per joint: interpolate between the frames where it was detected
        ok = np.flatnonzero(sc[:, j] > 0)
        if len(ok) == 0:
            continue
        gaps = np.flatnonzero(filled)
        if len(gaps):
            for c in range(2):
                kp[gaps, j, c] = np.interp(gaps, ok, kp[ok, j, c])
            sc[gaps, j] = 0.5 * np.interp(gaps, ok, sc[ok, j])
    return frames, kp, sc, filled


def select_tracks(det: Detections, person: Optional[int] = None, all_persons: bool = False):
    """The tracks to lift: ``[(track rank, rows)]`` for the main subject, track ``person``, or every track."""
    ids = np.zeros(len(det.frame), dtype=np.int64) if det.single_person else track_persons(det)
    order = rank_tracks(det, ids)
    ranked = [(rank, np.flatnonzero(ids == tid)) for rank, tid in enumerate(order)]
    ranked = [(rank, rows) for rank, rows in ranked if len(rows)]
    if all_persons:
        return ranked
    index = 0 if person is None else person
    if not 0 <= index < len(ranked):
        raise ValueError(f"--person must be between 0 and {len(ranked) - 1} ({len(ranked)} tracks found); "
                         f"got {person}")
    return [ranked[index]]
