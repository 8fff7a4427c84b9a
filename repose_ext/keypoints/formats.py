"""Joint orders of common 2D detectors and their conversion to the lifters' Human3.6M-17 joints.

Orders (facts from the COCO keypoint task, the Halpe full-body dataset and OpenPose's output documentation):

* ``coco17`` (COCO; YOLO-pose, MMPose, Detectron2): 0 nose, 1 left_eye, 2 right_eye, 3 left_ear, 4 right_ear,
  5 left_shoulder, 6 right_shoulder, 7 left_elbow, 8 right_elbow, 9 left_wrist, 10 right_wrist, 11 left_hip,
  12 right_hip, 13 left_knee, 14 right_knee, 15 left_ankle, 16 right_ankle.
* ``halpe26`` (AlphaPose): the 17 COCO joints, then 17 head, 18 neck, 19 hip (mid-hip), 20/21 left/right big toe,
  22/23 left/right small toe, 24/25 left/right heel.
* ``body25`` (OpenPose): 0 nose, 1 neck, 2-4 right shoulder/elbow/wrist, 5-7 left shoulder/elbow/wrist, 8 mid-hip,
  9-11 right hip/knee/ankle, 12-14 left hip/knee/ankle, 15/16 right/left eye, 17/18 right/left ear, 19-21 left big
  toe/small toe/heel, 22-24 right big toe/small toe/heel.
* ``coco18`` (OpenPose COCO model): 0 nose, 1 neck, 2-4 right arm, 5-7 left arm, 8-10 right leg (hip, knee,
  ankle), 11-13 left leg, 14/15 right/left eye, 16/17 right/left ear.
* ``h36m17``: the lifters' own order (:mod:`repose_ext.data.skeleton`).

Conversion to H36M-17 (:func:`to_h36m17`): the limbs map one to one; the joints a format lacks are built from the
ones it has, each as a weighted mean of source joints (:data:`H36M_FROM`), the same recipe for every frame:

* pelvis = mid-hip (``halpe26``/``body25`` have it; else the mean of the two hips);
* thorax = neck (``halpe26``/``body25``/``coco18``) or the mean of the shoulders (``coco17``);
* spine = the mean of pelvis and thorax;
* nose = nose;
* head_top = ``halpe26``'s head, or the mean of the eyes (``coco17``, ``body25``, ``coco18``).

A converted joint's confidence is the smallest confidence of its sources (a mid-hip built from one missing hip is
missing). Detectors' hips sit lower and wider than Human3.6M's hip joint centres; the lifter is trained on
Human3.6M-style joints and sees these as small systematic offsets.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from ..data.skeleton import H36M_JOINT_NAMES

FORMATS = ("h36m17", "coco17", "halpe26", "body25", "coco18")

#: Keypoints per person of each format.
NUM_KEYPOINTS = {"h36m17": 17, "coco17": 17, "halpe26": 26, "body25": 25, "coco18": 18}

# Every keypoint of each format by name, in order (the face and foot joints the conversion does not use included).
_ORDER = {
    "coco17": ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
               "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
               "right_knee", "left_ankle", "right_ankle"],
}
_ORDER["halpe26"] = _ORDER["coco17"] + ["head", "neck", "mid_hip", "left_big_toe", "right_big_toe", "left_small_toe",
                                        "right_small_toe", "left_heel", "right_heel"]
_ORDER["coco18"] = ["nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
                    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
                    "right_eye", "left_eye", "right_ear", "left_ear"]
_ORDER["body25"] = _ORDER["coco18"][:8] + ["mid_hip"] + _ORDER["coco18"][8:] + [
    "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel"]

#: format -> keypoint name -> index.
_NAMED = {fmt: {name: i for i, name in enumerate(order)} for fmt, order in _ORDER.items()}


def _sources(fmt: str) -> List[Dict[int, float]]:
    """For each H36M-17 joint, the weights of the format's keypoints that make it."""
    if fmt == "h36m17":
        return [{j: 1.0} for j in range(17)]
    n = _NAMED[fmt]

    def mean(*names: str) -> Dict[int, float]:
        return {n[name]: 1.0 / len(names) for name in names}

    pelvis = {n["mid_hip"]: 1.0} if "mid_hip" in n else mean("left_hip", "right_hip")
    thorax = {n["neck"]: 1.0} if "neck" in n else mean("left_shoulder", "right_shoulder")
    spine: Dict[int, float] = {}
    for part in (pelvis, thorax):
        for k, w in part.items():
            spine[k] = spine.get(k, 0.0) + 0.5 * w
    head = {n["head"]: 1.0} if "head" in n else mean("left_eye", "right_eye")
    one = lambda name: {n[name]: 1.0}  # noqa: E731
    return [pelvis, one("right_hip"), one("right_knee"), one("right_ankle"), one("left_hip"), one("left_knee"),
            one("left_ankle"), spine, thorax, one("nose"), head, one("left_shoulder"), one("left_elbow"),
            one("left_wrist"), one("right_shoulder"), one("right_elbow"), one("right_wrist")]


#: format -> per H36M-17 joint, {source keypoint: weight}.
H36M_FROM: Dict[str, List[Dict[int, float]]] = {fmt: _sources(fmt) for fmt in FORMATS}


def conversion_matrix(fmt: str) -> np.ndarray:
    """(17, K) weights: ``h36m = W @ keypoints`` for one frame."""
    if fmt not in H36M_FROM:
        raise ValueError(f"format must be one of {list(FORMATS)}; got {fmt!r}")
    w = np.zeros((17, NUM_KEYPOINTS[fmt]))
    for j, sources in enumerate(H36M_FROM[fmt]):
        for k, weight in sources.items():
            w[j, k] = weight
    return w


def to_h36m17(keypoints: np.ndarray, scores: np.ndarray, fmt: str) -> Tuple[np.ndarray, np.ndarray]:
    """Keypoints of ``fmt`` to Human3.6M-17 joints.

    Args:
        keypoints: (..., K, 2) pixels.
        scores: (..., K) confidences (0 = missing).
        fmt: one of :data:`FORMATS`.

    Returns:
        ``(keypoints (..., 17, 2), scores (..., 17))``; a joint's score is the smallest of its sources'.
    """
    w = conversion_matrix(fmt)
    kp = np.asarray(keypoints, dtype=np.float64)
    sc = np.asarray(scores, dtype=np.float64)
    if kp.shape[-2:] != (w.shape[1], 2) or sc.shape != kp.shape[:-1]:
        raise ValueError(f"{fmt} keypoints must have shape (..., {w.shape[1]}, 2) and scores (..., {w.shape[1]}); "
                         f"got {kp.shape} and {sc.shape}")
    out = np.einsum("jk,...kc->...jc", w, np.nan_to_num(kp))
    used = w > 0  # (17, K)
    masked = np.where(used, sc[..., None, :], np.inf)  # (..., 17, K)
    return out, masked.min(-1)


def joint_table() -> str:
    """A Markdown table: each H36M-17 joint and where it comes from in every format."""
    names = {fmt: {v: k for k, v in _NAMED[fmt].items()} for fmt in _NAMED}
    lines = ["| H36M-17 joint | " + " | ".join(f for f in FORMATS if f != "h36m17") + " |",
             "|---|" + "---|" * (len(FORMATS) - 1)]
    for j, joint in enumerate(H36M_JOINT_NAMES):
        cells = []
        for fmt in FORMATS[1:]:
            sources = H36M_FROM[fmt][j]
            label = {k: f"{names[fmt][k]} ({k})" for k in sources}
            if len(sources) == 1:
                cells.append(next(iter(label.values())))
            elif len(set(sources.values())) == 1:
                cells.append("mean of " + ", ".join(label.values()))
            else:
                cells.append(" + ".join(f"{w:g} {label[k]}" for k, w in sources.items()))
        lines.append(f"| {j} {joint} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def guess_format(num_keypoints: int, source: str, hint: Sequence[str] = ()) -> str:
    """The format of ``num_keypoints`` per person when that is unambiguous (``hint``: the formats the file type
    allows, e.g. COCO JSON only holds COCO-style orders)."""
    candidates = [f for f in (hint or FORMATS) if NUM_KEYPOINTS[f] == num_keypoints]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        allowed = ", ".join(f"{f} ({NUM_KEYPOINTS[f]})" for f in (hint or FORMATS))
        raise ValueError(f"{source}: {num_keypoints} keypoints per person match no known format ({allowed})")
    raise ValueError(f"{source}: {num_keypoints} keypoints per person could be any of {candidates}; "
                     f"say which with --format")


def from_h36m17(h36m: np.ndarray, fmt: str, side_px: float = 8.0, toe_px: float = 12.0) -> np.ndarray:
    """Stand-in detector keypoints of ``fmt`` made from Human3.6M-17 pixel joints, for tests and experiments.

    Joints both orders have are copied; the others are placed at fixed pixel offsets: eyes ``side_px`` left and
    right of the head top (so their mean is the head top), ears 2.5 times as far, big/small toes and heels
    ``toe_px``, ``2 toe_px`` and ``-toe_px`` below the ankles, neck = thorax, mid-hip = pelvis. Real detectors
    put the face and feet elsewhere: this measures the conversion of the body joints, not of the face.

    Args:
        h36m: (..., 17, 2) pixels.
        fmt: one of :data:`FORMATS`.

    Returns:
        (..., K, 2) keypoints in ``fmt``'s order.
    """
    h = np.asarray(h36m, dtype=np.float64)
    if fmt == "h36m17":
        return h.copy()
    side, toe = np.array([side_px, 0.0]), np.array([0.0, toe_px])
    head, ankle_l, ankle_r = h[..., 10, :], h[..., 6, :], h[..., 3, :]
    named = {
        "nose": h[..., 9, :], "left_eye": head + side, "right_eye": head - side, "left_ear": head + 2.5 * side,
        "right_ear": head - 2.5 * side, "left_shoulder": h[..., 11, :], "right_shoulder": h[..., 14, :],
        "left_elbow": h[..., 12, :], "right_elbow": h[..., 15, :], "left_wrist": h[..., 13, :],
        "right_wrist": h[..., 16, :], "left_hip": h[..., 4, :], "right_hip": h[..., 1, :], "left_knee": h[..., 5, :],
        "right_knee": h[..., 2, :], "left_ankle": ankle_l, "right_ankle": ankle_r, "head": head,
        "neck": h[..., 8, :], "mid_hip": h[..., 0, :], "left_big_toe": ankle_l + toe, "right_big_toe": ankle_r + toe,
        "left_small_toe": ankle_l + 2 * toe, "right_small_toe": ankle_r + 2 * toe, "left_heel": ankle_l - toe,
        "right_heel": ankle_r - toe,
    }
    order = _ORDER[fmt]
    return np.stack([named[name] for name in order], axis=-2)

