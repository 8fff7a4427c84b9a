"""Evaluation metrics for 3D human pose: MPJPE family, 3DHP PCK/AUC and depth-order accuracy.

All functions take torch tensors (numpy arrays are converted), work on any number of leading batch dimensions,
and compute in float64 for metrics that involve an SVD or counting. Units are those of the inputs (millimetres
for the published protocols). ``reduction="mean"`` returns a 0-d tensor averaged over every pose; ``"none"``
returns one value per pose (frame), averaged over its joints.

Protocols (names as in VideoPose3D / MotionBERT):

* ``mpjpe``: Protocol 1, mean Euclidean joint error.
* ``p_mpjpe``: Protocol 2, error after a per-pose similarity Procrustes alignment (rotation without reflection,
  uniform scale, translation) of the prediction onto the ground truth.
* ``n_mpjpe``: error after the per-pose least-squares scale ``s = <p, g> / <p, p>`` (no rotation/translation).
* ``mpjve``: mean per-joint velocity error (first differences along time).
* ``pck`` / ``auc``: MPI-INF-3DHP PCK at 150 mm and the area under the PCK curve over thresholds 0:5:150 mm,
  on the 14 joints of the official MATLAB evaluation, in percent.
* ``spatial_depth_order_accuracy`` / ``temporal_depth_order_accuracy``: the fraction of joint pairs (per frame)
  or frame pairs (per joint) whose predicted depth order matches the ground truth, the quantity the RePOSE rank
  losses optimise.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ._shapes import shape_str as _shape

#: MPI-INF-3DHP 17-joint order (P-STMO / MotionAGFormer loaders): 0 head_top, 1 neck, 2 R shoulder, 3 R elbow,
#: 4 R wrist, 5 L shoulder, 6 L elbow, 7 L wrist, 8 R hip, 9 R knee, 10 R ankle, 11 L hip, 12 L knee, 13 L ankle,
#: 14 pelvis (root), 15 spine, 16 head. PCK/AUC use the first 14 (pelvis, spine and head are excluded), as in
#: the official ``mpii_get_pck_auc_joint_groups.m``.
PCK_JOINTS_3DHP: Tuple[int, ...] = tuple(range(14))

#: The same 14 joints in H36M-17 order, via the H36M->3DHP map of MotionAGFormer ``data/const.py``:
#: R hip/knee/ankle 1-3, L hip/knee/ankle 4-6, neck 8, head top 10, L shoulder/elbow/wrist 11-13, R 14-16.
PCK_JOINTS_H36M: Tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15, 16)

#: PCK threshold (mm) and the AUC thresholds 0, 5, ..., 150 mm (31 values).
PCK_THRESHOLD_MM = 150.0
AUC_THRESHOLDS_MM: Tuple[float, ...] = tuple(float(t) for t in range(0, 151, 5))

_REDUCTIONS = ("mean", "none")
ArrayLike = Union[torch.Tensor, np.ndarray]



def _as_tensor(x: ArrayLike, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array; got {type(x).__name__}")
    if not (x.is_floating_point() or x.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"{name} must be a real-valued tensor; got {x.dtype}")
    return x


def _check_poses(pred: ArrayLike, gt: ArrayLike, min_dim: int = 2, layout: str = "(..., J, 3)"):
    pred = _as_tensor(pred, "pred")
    gt = _as_tensor(gt, "gt")
    if pred.dim() < min_dim or pred.shape[-1] != 3:
        raise ValueError(f"pred must have shape {layout}; got {_shape(pred)}")
    if gt.shape != pred.shape:
        raise ValueError(f"gt must have the shape of pred {_shape(pred)}; got {_shape(gt)}")
    if gt.device != pred.device:
        raise ValueError(f"pred and gt must be on the same device; got {pred.device} and {gt.device}")
    dtype = torch.promote_types(pred.dtype, gt.dtype)
    if not dtype.is_floating_point:
        dtype = torch.float64
    return pred.to(dtype), gt.to(dtype)


def _reduce(per_pose: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_pose.mean()
    if reduction == "none":
        return per_pose
    raise ValueError(f"reduction must be one of {_REDUCTIONS}; got {reduction!r}")


def mpjpe(pred: ArrayLike, gt: ArrayLike, reduction: str = "mean") -> torch.Tensor:
    """Mean per-joint position error (Protocol 1): the Euclidean distance averaged over joints.

    Args:
        pred: predicted joints.
        gt: ground-truth joints.
        reduction: ``"mean"`` over all poses, or ``"none"`` for one value per pose.

    Returns:
        0-d tensor, or (...) per pose.

    Shape:
        pred, gt: (..., J, 3).
    """
    pred, gt = _check_poses(pred, gt)
    return _reduce(torch.linalg.vector_norm(pred - gt, dim=-1).mean(dim=-1), reduction)


def procrustes_align(pred: ArrayLike, gt: ArrayLike) -> torch.Tensor:
    """Align each predicted pose to its ground truth with the best similarity transform.

    Finds, per pose, the scale s > 0, rotation R (det R = +1: reflections are excluded) and translation t that
    minimise sum_j ||s R p_j + t - g_j||^2 (Umeyama / Kabsch with the determinant fix), computed in float64.
    A degenerate pose (all prediction joints at one point) is mapped to the ground-truth centroid.

    Args:
        pred: predicted joints.
        gt: ground-truth joints.

    Returns:
        The aligned prediction, in ``pred``'s floating dtype.

    Shape:
        pred, gt: (..., J, 3). Returns (..., J, 3).
    """
    pred, gt = _check_poses(pred, gt)
    out_dtype = pred.dtype
    p = pred.double()
    g = gt.double()
    mu_p = p.mean(dim=-2, keepdim=True)
    mu_g = g.mean(dim=-2, keepdim=True)
    p0 = p - mu_p
    g0 = g - mu_g
    # Cross-covariance H = P0^T G0 (3x3); with H = U S V^T the best rotation acting on row vectors is
    # R = U D V^T where D = diag(1, 1, sign(det(U V^T))) removes a reflection.
    h = p0.transpose(-1, -2) @ g0
    u, s, vh = torch.linalg.svd(h)
    sign = torch.sign(torch.linalg.det(u @ vh))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    d = torch.ones_like(s)
    d[..., 2] = sign
    rot = (u * d.unsqueeze(-2)) @ vh
    var_p = (p0 * p0).sum(dim=(-2, -1))
    trace = (s * d).sum(dim=-1)
    scale = torch.where(var_p > 0, trace / torch.where(var_p > 0, var_p, torch.ones_like(var_p)),
                        torch.zeros_like(var_p))
    aligned = scale[..., None, None] * (p0 @ rot) + mu_g
    return aligned.to(out_dtype)


def p_mpjpe(pred: ArrayLike, gt: ArrayLike, reduction: str = "mean") -> torch.Tensor:
    """MPJPE after per-pose Procrustes alignment (Protocol 2), see :func:`procrustes_align`.

    Args:
        pred: predicted joints.
        gt: ground-truth joints.
        reduction: ``"mean"`` over all poses, or ``"none"`` for one value per pose.

    Returns:
        0-d tensor, or (...) per pose.

    Shape:
        pred, gt: (..., J, 3).
    """
    aligned = procrustes_align(pred, gt)
    return mpjpe(aligned, _as_tensor(gt, "gt").to(aligned.dtype), reduction)


def n_mpjpe(pred: ArrayLike, gt: ArrayLike, reduction: str = "mean") -> torch.Tensor:
    """MPJPE after scaling each predicted pose by the least-squares factor s = <p, g> / <p, p>.

    The sums run over the pose's joints and coordinates (no centring, as in VideoPose3D / MotionBERT). A pose whose
    prediction is all zeros gets s = 0.

    Args:
        pred: predicted joints.
        gt: ground-truth joints.
        reduction: ``"mean"`` over all poses, or ``"none"`` for one value per pose.

    Returns:
        0-d tensor, or (...) per pose.

    Shape:
        pred, gt: (..., J, 3).
    """
    pred, gt = _check_poses(pred, gt)
    pp = (pred * pred).sum(dim=(-2, -1), keepdim=True)
    pg = (pred * gt).sum(dim=(-2, -1), keepdim=True)
    scale = torch.where(pp > 0, pg / torch.where(pp > 0, pp, torch.ones_like(pp)), torch.zeros_like(pp))
    return mpjpe(scale * pred, gt, reduction)


def mpjve(pred: ArrayLike, gt: ArrayLike, reduction: str = "mean") -> torch.Tensor:
    """Mean per-joint velocity error: MPJPE between first differences along time (dimension -3).

    Args:
        pred: predicted joint sequences.
        gt: ground-truth joint sequences.
        reduction: ``"mean"`` over all T - 1 differences of every sequence, or ``"none"`` for (..., T - 1).

    Returns:
        0-d tensor, or (..., T - 1) per frame difference.

    Shape:
        pred, gt: (..., T, J, 3) with T >= 2.
    """
    pred, gt = _check_poses(pred, gt, min_dim=3, layout="(..., T, J, 3)")
    if pred.shape[-3] < 2:
        raise ValueError(f"pred must have at least 2 frames (dimension -3) for a velocity; got {_shape(pred)}")
    return mpjpe(pred.diff(dim=-3), gt.diff(dim=-3), reduction)


def _joint_errors(pred, gt, joints: Optional[Sequence[int]]) -> torch.Tensor:
    pred, gt = _check_poses(pred, gt)
    err = torch.linalg.vector_norm(pred.double() - gt.double(), dim=-1)
    if joints is not None:
        idx = torch.as_tensor(list(joints), dtype=torch.long, device=err.device)
        if idx.numel() == 0 or int(idx.min()) < 0 or int(idx.max()) >= err.shape[-1]:
            raise ValueError(f"joints must be non-empty indices in [0, {err.shape[-1]}); got {list(joints)}")
        err = err.index_select(-1, idx)
    return err


def pck(pred: ArrayLike, gt: ArrayLike, threshold: float = PCK_THRESHOLD_MM,
        joints: Optional[Sequence[int]] = PCK_JOINTS_3DHP, reduction: str = "mean") -> torch.Tensor:
    """Percentage of correct keypoints: joints whose error is strictly below ``threshold``, in percent.

    Inputs should be root-relative and in millimetres (the 3DHP protocol). The default joint subset is the 14
    MPI-INF-3DHP joints in 3DHP order (:data:`PCK_JOINTS_3DHP`); pass :data:`PCK_JOINTS_H36M` for poses in
    H36M-17 order, or None for all joints.

    Args:
        pred: predicted joints.
        gt: ground-truth joints.
        threshold: distance threshold (150 mm in the 3DHP protocol).
        joints: indices of the joints scored, or None for all.
        reduction: ``"mean"`` over all poses and joints, or ``"none"`` for one value per pose.

    Returns:
        0-d tensor (float64, 0..100), or (...) per pose.

    Shape:
        pred, gt: (..., J, 3).
    """
    err = _joint_errors(pred, gt, joints)
    return _reduce((err < threshold).double().mean(dim=-1) * 100.0, reduction)


def auc(pred: ArrayLike, gt: ArrayLike, thresholds: Sequence[float] = AUC_THRESHOLDS_MM,
        joints: Optional[Sequence[int]] = PCK_JOINTS_3DHP, reduction: str = "mean") -> torch.Tensor:
    """Area under the PCK curve: the mean of :func:`pck` over ``thresholds`` (0, 5, ..., 150 mm), in percent.

    Args:
        pred: predicted joints.
        gt: ground-truth joints.
        thresholds: PCK thresholds averaged.
        joints: indices of the joints scored, or None for all (see :func:`pck`).
        reduction: ``"mean"`` over all poses and joints, or ``"none"`` for one value per pose.

    Returns:
        0-d tensor (float64, 0..100), or (...) per pose.

    Shape:
        pred, gt: (..., J, 3).
    """
    err = _joint_errors(pred, gt, joints)
    thr = torch.as_tensor(list(thresholds), dtype=err.dtype, device=err.device)
    if thr.numel() == 0:
        raise ValueError("thresholds must not be empty")
    below = (err.unsqueeze(-1) < thr).double()  # (..., J, K)
    return _reduce(below.mean(dim=(-2, -1)) * 100.0, reduction)


def _depths(x: ArrayLike, name: str, min_dim: int) -> torch.Tensor:
    x = _as_tensor(x, name)
    if x.dim() >= min_dim + 1 and x.shape[-1] == 3:
        return x[..., 2]
    if x.dim() >= min_dim:
        return x
    raise ValueError(f"{name} must have shape (..., {'T, ' if min_dim == 2 else ''}J, 3) or depths "
                     f"(..., {'T, ' if min_dim == 2 else ''}J); got {_shape(x)}")


def _order_counts(pz: torch.Tensor, gz: torch.Tensor, gt_tolerance: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Counts over the pairs (a, b) of the last axis: (correct, valid), each of shape (...)."""
    gd = gz.unsqueeze(-1) - gz.unsqueeze(-2)  # g_a - g_b
    pd = pz.unsqueeze(-1) - pz.unsqueeze(-2)
    valid = gd < -gt_tolerance  # g_a < g_b by more than the tolerance: each unordered pair counted once
    correct = valid & (pd < 0)  # the prediction must order them strictly the same way
    return correct.sum(dim=(-2, -1)), valid.sum(dim=(-2, -1))


def _order_result(correct, valid, reduction: str, return_counts: bool):
    if return_counts:
        if reduction == "mean":
            return correct.sum(), valid.sum()
        if reduction == "none":
            return correct, valid
        raise ValueError(f"reduction must be one of {_REDUCTIONS}; got {reduction!r}")
    if reduction == "mean":
        c, v = correct.sum().double(), valid.sum().double()
        return c / v if v > 0 else torch.tensor(float("nan"), dtype=torch.float64, device=c.device)
    if reduction == "none":
        c, v = correct.double(), valid.double()
        return torch.where(v > 0, c / torch.where(v > 0, v, torch.ones_like(v)), torch.full_like(v, float("nan")))
    raise ValueError(f"reduction must be one of {_REDUCTIONS}; got {reduction!r}")


def spatial_depth_order_accuracy(pred: ArrayLike, gt: ArrayLike, gt_tolerance: float = 0.0,
                                 reduction: str = "mean", return_counts: bool = False):
    """Fraction of joint pairs, within each frame, whose predicted depth order matches the ground truth.

    A pair of joints (i, j) of one frame is scored when their ground-truth depths differ by more than
    ``gt_tolerance`` (default 0: only exact ties are skipped); it is correct when the prediction orders them the
    same way strictly. Ties: GT ties (within the tolerance) are not scored; a predicted tie on a scored pair counts
    as wrong. Each unordered pair counts once (counting both orders gives the same fraction). Depth is channel 2.

    Args:
        pred: predicted poses (..., J, 3), or depths (..., J).
        gt: ground-truth poses or depths, same shape.
        gt_tolerance: GT depth differences at or below this are treated as ties (in the inputs' units).
        reduction: ``"mean"`` pools all scored pairs of all frames; ``"none"`` gives one value per frame.
        return_counts: return ``(correct, scored)`` integer counts instead of the fraction (to pool batches).

    Returns:
        Fraction in [0, 1] (float64; NaN when no pair is scored), or the counts.

    Shape:
        pred, gt: (..., J, 3) or (..., J). Per-frame results: (...).
    """
    pz = _depths(pred, "pred", 1)
    gz = _depths(gt, "gt", 1)
    if pz.shape != gz.shape:
        raise ValueError(f"gt must have the shape of pred; got pred {_shape(pz)} and gt {_shape(gz)} depths")
    correct, valid = _order_counts(pz.double(), gz.double(), float(gt_tolerance))
    return _order_result(correct, valid, reduction, return_counts)


def temporal_depth_order_accuracy(pred: ArrayLike, gt: ArrayLike, gt_tolerance: float = 0.0,
                                  reduction: str = "mean", return_counts: bool = False):
    """Fraction of frame pairs, for each joint, whose predicted depth order matches the ground truth.

    Like :func:`spatial_depth_order_accuracy`, over all pairs of frames (t1, t2) of a sequence for each joint
    (not only adjacent frames), the pairs the RePOSE temporal rank loss sees. Tie rule and tolerance as there; the
    root joint of root-relative data has equal depths in every frame and contributes no scored pair.

    Args:
        pred: predicted sequences (..., T, J, 3), or depths (..., T, J).
        gt: ground-truth sequences or depths, same shape.
        gt_tolerance: GT depth differences at or below this are treated as ties.
        reduction: ``"mean"`` pools all scored pairs; ``"none"`` gives one value per sequence and joint.
        return_counts: return ``(correct, scored)`` integer counts instead of the fraction.

    Returns:
        Fraction in [0, 1] (float64; NaN when no pair is scored), or the counts.

    Shape:
        pred, gt: (..., T, J, 3) or (..., T, J). Per-joint results: (..., J).
    """
    pz = _depths(pred, "pred", 2)
    gz = _depths(gt, "gt", 2)
    if pz.shape != gz.shape:
        raise ValueError(f"gt must have the shape of pred; got pred {_shape(pz)} and gt {_shape(gz)} depths")
    pz = pz.double().transpose(-1, -2)  # (..., J, T)
    gz = gz.double().transpose(-1, -2)
    # One joint at a time keeps the (..., T, T) pair tensors small for long clips.
    counts = [_order_counts(pz[..., j, :], gz[..., j, :], float(gt_tolerance)) for j in range(pz.shape[-2])]
    correct = torch.stack([c for c, _ in counts], dim=-1)
    valid = torch.stack([v for _, v in counts], dim=-1)
    return _order_result(correct, valid, reduction, return_counts)
