"""Known-answer tests for the pose metrics, the MotionBERT training losses and the H36M protocol."""

import math

import numpy as np
import pytest
import torch

from repose_ext.evaluation import (
    S9_BLOCK_LIST,
    H36MProtocol,
    denormalize_to_mm,
    evaluate_h36m,
    strip_camera_suffix,
)
from repose_ext.metrics import (
    AUC_THRESHOLDS_MM,
    PCK_JOINTS_3DHP,
    PCK_JOINTS_H36M,
    auc,
    mpjpe,
    mpjve,
    n_mpjpe,
    p_mpjpe,
    pck,
    procrustes_align,
    spatial_depth_order_accuracy,
    temporal_depth_order_accuracy,
)
from repose_ext.training.pose_losses import mpjpe_loss, n_mpjpe_loss, velocity_loss


def _random_rotation(generator):
    q, r = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=generator))
    q = q * torch.sign(torch.diagonal(r))
    if torch.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _horn_p_mpjpe(pred, gt):
    """Independent Procrustes: Horn's unit-quaternion method (always a proper rotation), numpy, one pose."""
    p = pred - pred.mean(0)
    g = gt - gt.mean(0)
    s = p.T @ g  # s[a, b] = sum_j p_a g_b
    sxx, sxy, sxz = s[0]
    syx, syy, syz = s[1]
    szx, szy, szz = s[2]
    n = np.array([
        [sxx + syy + szz, syz - szy, szx - sxz, sxy - syx],
        [syz - szy, sxx - syy - szz, sxy + syx, szx + sxz],
        [szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy],
        [sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz],
    ])
    w, v = np.linalg.eigh(n)
    q0, qx, qy, qz = v[:, -1]
    rot = np.array([  # rotation matrix of the unit quaternion, acting on column vectors
        [q0 * q0 + qx * qx - qy * qy - qz * qz, 2 * (qx * qy - q0 * qz), 2 * (qx * qz + q0 * qy)],
        [2 * (qy * qx + q0 * qz), q0 * q0 - qx * qx + qy * qy - qz * qz, 2 * (qy * qz - q0 * qx)],
        [2 * (qz * qx - q0 * qy), 2 * (qz * qy + q0 * qx), q0 * q0 - qx * qx - qy * qy + qz * qz],
    ])
    rp = p @ rot.T
    scale = (rp * g).sum() / (p * p).sum()
    aligned = scale * rp + gt.mean(0)
    return np.linalg.norm(aligned - gt, axis=-1).mean()


# ---------------------------------------------------------------- MPJPE family


def test_mpjpe_known_answer_and_reductions():
    gt = torch.zeros(2, 3, 17, 3)
    pred = gt.clone()
    pred[..., 0] = 3.0
    pred[..., 1] = 4.0
    pred[1, :, :, 2] = 12.0  # 3-4-12-13
    assert mpjpe(pred, gt).item() == pytest.approx((5 + 13) / 2)
    per_pose = mpjpe(pred, gt, reduction="none")
    assert per_pose.shape == (2, 3)
    torch.testing.assert_close(per_pose[0], torch.full((3,), 5.0))
    torch.testing.assert_close(per_pose[1], torch.full((3,), 13.0))
    assert mpjpe(pred.numpy(), gt.numpy()).item() == pytest.approx(9.0)  # numpy accepted


def test_mpjpe_errors():
    with pytest.raises(ValueError, match=r"pred must have shape \(\.\.\., J, 3\); got \(4, 17, 2\)"):
        mpjpe(torch.zeros(4, 17, 2), torch.zeros(4, 17, 2))
    with pytest.raises(ValueError, match=r"gt must have the shape of pred \(4, 17, 3\); got \(4, 16, 3\)"):
        mpjpe(torch.zeros(4, 17, 3), torch.zeros(4, 16, 3))
    with pytest.raises(ValueError, match="reduction must be one of"):
        mpjpe(torch.zeros(4, 17, 3), torch.zeros(4, 17, 3), reduction="sum")


def test_p_mpjpe_of_similarity_transformed_copy_is_zero():
    g = torch.Generator().manual_seed(0)
    gt = torch.randn(4, 17, 3, dtype=torch.float64, generator=g) * 300
    pred = torch.stack([2.7 * gt[i] @ _random_rotation(g).T + torch.tensor([100.0, -50.0, 4000.0], dtype=torch.float64)
                        for i in range(4)])
    assert mpjpe(pred, gt).item() > 100
    assert p_mpjpe(pred, gt).item() < 1e-9
    torch.testing.assert_close(procrustes_align(pred, gt), gt, rtol=0, atol=1e-9)
    # float32 input: aligned result in float32, computed in float64
    assert p_mpjpe(pred.float(), gt.float()).item() < 1e-3


def test_p_mpjpe_matches_horn_quaternion_method():
    g = torch.Generator().manual_seed(1)
    gt = torch.randn(6, 17, 3, dtype=torch.float64, generator=g)
    pred = gt @ _random_rotation(g).T * 0.5 + 0.3 * torch.randn(6, 17, 3, dtype=torch.float64, generator=g)
    ours = p_mpjpe(pred, gt, reduction="none")
    ref = [_horn_p_mpjpe(pred[i].numpy(), gt[i].numpy()) for i in range(6)]
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-9, atol=1e-12)


def test_p_mpjpe_never_uses_a_reflection():
    g = torch.Generator().manual_seed(2)
    gt = torch.randn(3, 17, 3, dtype=torch.float64, generator=g)
    mirrored = gt * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)  # a reflection, not a rotation
    # Without the determinant fix, Procrustes would undo the mirror exactly (error 0).
    ours = p_mpjpe(mirrored, gt, reduction="none")
    assert torch.all(ours > 0.05)
    ref = [_horn_p_mpjpe(mirrored[i].numpy(), gt[i].numpy()) for i in range(3)]
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-9, atol=1e-12)
    # A planar pose mirrored in-plane IS a rotation (180 deg about the in-plane axis): error 0.
    flat = gt.clone()
    flat[..., 2] = 0
    assert p_mpjpe(flat * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64), flat).item() < 1e-9


def test_p_mpjpe_degenerate_prediction():
    gt = torch.randn(17, 3, dtype=torch.float64)
    pred = torch.ones(17, 3, dtype=torch.float64)  # all joints at one point
    expected = torch.linalg.vector_norm(gt - gt.mean(0), dim=-1).mean()
    assert p_mpjpe(pred, gt).item() == pytest.approx(expected.item())


def test_n_mpjpe_known_answers():
    # pred = 2 gt -> scale 1/2 -> 0
    gt = torch.randn(5, 17, 3, dtype=torch.float64)
    assert n_mpjpe(2 * gt, gt).item() < 1e-12
    # one joint: gt (1, 1, 0), pred (2, 0, 0): s = 2 / 4 -> s p = (1, 0, 0) -> error 1
    assert n_mpjpe(torch.tensor([[2.0, 0, 0]]), torch.tensor([[1.0, 1, 0]])).item() == pytest.approx(1.0)
    # orthogonal: s = 0 -> error |gt| = 1; all-zero prediction also gives s = 0
    assert n_mpjpe(torch.tensor([[0.0, 1, 0]]), torch.tensor([[1.0, 0, 0]])).item() == pytest.approx(1.0)
    assert n_mpjpe(torch.zeros(1, 3), torch.tensor([[0.0, 3, 4]])).item() == pytest.approx(5.0)


def test_mpjve_known_answers():
    gt = torch.randn(2, 6, 17, 3, dtype=torch.float64)
    assert mpjve(gt + torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64), gt).item() < 1e-12  # constant offset
    drift = torch.arange(6, dtype=torch.float64).view(1, 6, 1, 1) * torch.tensor([3.0, 4.0, 0.0], dtype=torch.float64)
    assert mpjve(gt + drift, gt).item() == pytest.approx(5.0)
    assert mpjve(gt + drift, gt, reduction="none").shape == (2, 5)
    with pytest.raises(ValueError, match="at least 2 frames"):
        mpjve(gt[:, :1], gt[:, :1])


# ---------------------------------------------------------------- 3DHP PCK / AUC


def _poses_with_joint_errors(errors):
    gt = torch.zeros(1, len(errors), 3, dtype=torch.float64)
    pred = gt.clone()
    pred[0, :, 0] = torch.tensor(errors, dtype=torch.float64) * 0.6
    pred[0, :, 1] = torch.tensor(errors, dtype=torch.float64) * 0.8
    return pred, gt


def test_pck_and_auc_on_constructed_errors():
    # 14 scored joints (3DHP order 0..13), then pelvis, spine, head with huge errors that must be ignored.
    scored = [0, 5, 10, 149, 150, 151, 200, 75, 75, 75, 75, 75, 75, 75]
    pred, gt = _poses_with_joint_errors(scored + [1000, 1000, 1000])
    # PCK: strictly below 150 mm -> 0, 5, 10, 149 and the seven 75s -> 11 of 14.
    assert pck(pred, gt).item() == pytest.approx(100 * 11 / 14)
    # AUC: thresholds 0:5:150; error e is below (30, 29, 28, 1, 0, 0, 0, 15 x7) of the 31 thresholds.
    assert len(AUC_THRESHOLDS_MM) == 31
    assert auc(pred, gt).item() == pytest.approx(100 * (30 + 29 + 28 + 1 + 7 * 15) / (14 * 31))
    # All 17 joints: the three excluded joints now count as misses.
    assert pck(pred, gt, joints=None).item() == pytest.approx(100 * 11 / 17)
    assert pck(pred, gt, threshold=151).item() == pytest.approx(100 * 12 / 14)


def test_pck_joint_subsets_agree_between_orders():
    # H36M index -> 3DHP index (MotionAGFormer data/const.py).
    h36m_to_3dhp = [14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4]
    assert sorted(h36m_to_3dhp[i] for i in PCK_JOINTS_H36M) == list(PCK_JOINTS_3DHP)
    g = torch.Generator().manual_seed(3)
    gt3dhp = torch.randn(10, 17, 3, dtype=torch.float64, generator=g) * 100
    pred3dhp = gt3dhp + torch.randn(10, 17, 3, dtype=torch.float64, generator=g) * 90
    idx = torch.tensor(h36m_to_3dhp)
    gt_h36m, pred_h36m = gt3dhp[:, idx], pred3dhp[:, idx]
    assert pck(pred_h36m, gt_h36m, joints=PCK_JOINTS_H36M).item() == pytest.approx(pck(pred3dhp, gt3dhp).item())
    assert auc(pred_h36m, gt_h36m, joints=PCK_JOINTS_H36M).item() == pytest.approx(auc(pred3dhp, gt3dhp).item())
    assert pck(pred3dhp, gt3dhp, reduction="none").shape == (10,)
    with pytest.raises(ValueError, match="joints must be non-empty indices"):
        pck(pred3dhp, gt3dhp, joints=[17])


# ---------------------------------------------------------------- depth-order accuracy


def test_spatial_depth_order_known_answers():
    z = lambda *v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    # pairs (0,1) ok, (0,2) ok, (1,2) swapped -> 2/3
    assert spatial_depth_order_accuracy(z(0, 2, 1), z(0, 1, 2)).item() == pytest.approx(2 / 3)
    # GT tie (0,1) is not scored; a predicted tie on a scored pair is wrong
    assert spatial_depth_order_accuracy(z(5, 0, 0), z(0, 0, 1)).item() == 0.0
    assert spatial_depth_order_accuracy(z(0, 0, 1), z(0, 0, 1)).item() == 1.0
    assert spatial_depth_order_accuracy(z(0, 0, 1), z(0, 0, 1), return_counts=True) == (2, 2)
    # tolerance: the pair (0, 1) differs by 0.5 <= 1 -> not scored; (0,2), (1,2) scored
    assert spatial_depth_order_accuracy(z(1, 0, 3), z(0, 0.5, 2), gt_tolerance=1.0, return_counts=True) == (2, 2)
    # all GT depths equal -> nothing scored -> NaN
    assert math.isnan(spatial_depth_order_accuracy(z(0, 1, 2), z(1, 1, 1)).item())


def test_spatial_depth_order_uses_channel_2_and_pools_counts():
    gt = torch.zeros(2, 3, 3)
    gt[..., 2] = torch.tensor([[0.0, 1.0, 2.0], [0.0, 0.0, 1.0]])
    pred = torch.randn(2, 3, 3)
    pred[..., 2] = torch.tensor([[0.0, 2.0, 1.0], [1.0, 1.0, 0.0]])
    correct, valid = spatial_depth_order_accuracy(pred, gt, reduction="none", return_counts=True)
    assert correct.tolist() == [2, 0] and valid.tolist() == [3, 2]
    assert spatial_depth_order_accuracy(pred, gt).item() == pytest.approx(2 / 5)  # pooled, not mean of frames
    per_frame = spatial_depth_order_accuracy(pred, gt, reduction="none")
    torch.testing.assert_close(per_frame, torch.tensor([2 / 3, 0.0], dtype=torch.float64))


def test_temporal_depth_order_matches_brute_force():
    g = torch.Generator().manual_seed(4)
    gt = torch.randint(0, 4, (2, 7, 5, 3), generator=g).double()  # small integers: many ties
    gt[:, :, 0, 2] = 0.0  # root joint: constant depth -> no scored pairs
    pred = torch.randint(0, 4, (2, 7, 5, 3), generator=g).double()
    correct = valid = 0
    per_joint = torch.zeros(2, 5)
    for b in range(2):
        for j in range(5):
            c = v = 0
            for t1 in range(7):
                for t2 in range(7):
                    if gt[b, t1, j, 2] < gt[b, t2, j, 2]:
                        v += 1
                        c += int(pred[b, t1, j, 2] < pred[b, t2, j, 2])
            correct, valid = correct + c, valid + v
            per_joint[b, j] = c / v if v else float("nan")
    assert temporal_depth_order_accuracy(pred, gt).item() == pytest.approx(correct / valid)
    torch.testing.assert_close(temporal_depth_order_accuracy(pred, gt, reduction="none").float(), per_joint,
                               equal_nan=True)
    c, v = temporal_depth_order_accuracy(pred[..., 2], gt[..., 2], return_counts=True)  # depths accepted
    assert (c.item(), v.item()) == (correct, valid)
    assert temporal_depth_order_accuracy(gt, gt).item() == 1.0


def test_depth_order_errors():
    with pytest.raises(ValueError, match="gt must have the shape of pred"):
        spatial_depth_order_accuracy(torch.zeros(3, 17, 3), torch.zeros(3, 16, 3))
    with pytest.raises(ValueError, match=r"pred must have shape \(\.\.\., T, J, 3\) or depths"):
        temporal_depth_order_accuracy(torch.zeros(17), torch.zeros(17))


# ---------------------------------------------------------------- training losses


def test_pose_losses_known_answers():
    gt = torch.zeros(2, 4, 17, 3)
    pred = gt.clone()
    pred[..., 0], pred[..., 1] = 3.0, 4.0
    assert mpjpe_loss(pred, gt).item() == pytest.approx(5.0)
    base = torch.randn(2, 4, 17, 3, dtype=torch.float64)
    assert n_mpjpe_loss(3 * base, base).item() < 1e-12
    one = torch.zeros(1, 1, 1, 3)
    assert n_mpjpe_loss(one + torch.tensor([2.0, 0, 0]), one + torch.tensor([1.0, 1, 0])).item() == pytest.approx(1.0)
    drift = torch.arange(4.0).view(1, 4, 1, 1) * torch.tensor([0.0, 3.0, 4.0])
    assert velocity_loss(base.float() + drift, base.float()).item() == pytest.approx(5.0, rel=1e-5)
    assert velocity_loss(base + 7.0, base).item() < 1e-12


def test_pose_losses_gradients_and_single_frame():
    g = torch.Generator().manual_seed(5)
    gt = torch.randn(2, 3, 5, 3, dtype=torch.float64, generator=g)
    pred = torch.randn(2, 3, 5, 3, dtype=torch.float64, generator=g, requires_grad=True)
    for fn in (mpjpe_loss, n_mpjpe_loss, velocity_loss):
        assert torch.autograd.gradcheck(lambda p: fn(p, gt), (pred,))
    single = torch.randn(2, 1, 5, 3, requires_grad=True)
    loss = velocity_loss(single, torch.randn(2, 1, 5, 3))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(single.grad == 0)
    # n-mpjpe with an all-zero prediction is finite (s = 0)
    assert torch.isfinite(n_mpjpe_loss(torch.zeros(1, 2, 5, 3), gt[:1, :2]))


def test_pose_losses_check_shapes():
    with pytest.raises(ValueError, match=r"pred must have shape \(B, T, J, 3\); got \(4, 17, 3\)"):
        mpjpe_loss(torch.zeros(4, 17, 3), torch.zeros(4, 17, 3))
    with pytest.raises(ValueError, match=r"gt must have the shape of pred \(1, 4, 17, 3\); got \(1, 3, 17, 3\)"):
        velocity_loss(torch.zeros(1, 4, 17, 3), torch.zeros(1, 3, 17, 3))


# ---------------------------------------------------------------- H36M protocol


def test_denormalize_known_answer():
    poses = torch.zeros(1, 2, 2, 3)
    poses[0, :, 1] = torch.tensor([0.5, -0.2, 0.1])
    res = torch.tensor([[1000.0, 1002.0]])
    factor = torch.tensor([[1.0, 2.0]])
    mm = denormalize_to_mm(poses, res, factor)
    # x_px = (x + 1) * 500, y_px = (y + 1.002) * 500, z_px = z * 500; then times the factor
    torch.testing.assert_close(mm[0, 0, 0], torch.tensor([500.0, 501.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(mm[0, 0, 1], torch.tensor([750.0, 401.0, 50.0], dtype=torch.float64))
    torch.testing.assert_close(mm[0, 1, 1], torch.tensor([1500.0, 802.0, 100.0], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"factor must have shape \(B, T\) = \(1, 2\); got \(1, 3\)"):
        denormalize_to_mm(poses, res, torch.ones(1, 3))


def test_strip_camera_suffix():
    assert strip_camera_suffix("s_09_act_05_subact_02_ca_01") == "s_09_act_05_subact_02"
    assert strip_camera_suffix("TS1") == "TS1"
    # MotionBERT's published block list (spec, evaluation protocol step 4), entry by entry
    assert sorted(S9_BLOCK_LIST) == ["s_09_act_05_subact_02", "s_09_act_10_subact_02", "s_09_act_13_subact_01"]


def _clip(target, offset_norm, source, action, frames, w=1000.0, h=1000.0, factor=1.0):
    """A clip whose prediction shifts every non-root joint by offset_norm in normalised x."""
    pred = target.clone()
    pred[:, 1:, 0] += offset_norm
    t = target.shape[0]
    return pred, {
        "target": target, "factor": torch.full((t,), factor), "res": torch.tensor([w, h]),
        "source": source, "action": action, "frames": torch.as_tensor(frames, dtype=torch.int64),
    }


def test_h36m_protocol_known_answer_with_overlap_blocklist_and_actions():
    g = torch.Generator().manual_seed(6)
    video_a = torch.randn(6, 17, 3, generator=g) * 0.1
    video_b = torch.randn(4, 17, 3, generator=g) * 0.1
    # Offsets in normalised units: with w = 1000 and factor 1, 0.002 -> 1 mm on each non-root joint.
    clips = [
        _clip(video_a[0:4], 0.002, "s_11_act_02_subact_01_ca_01", "Walking", [0, 1, 2, 3]),
        _clip(video_a[2:6], 0.006, "s_11_act_02_subact_01_ca_01", "Walking", [2, 3, 4, 5]),
        _clip(video_b, 0.010, "s_09_act_03_subact_01_ca_02", "Eating", [0, 1, 2, 3], h=1002.0, factor=2.0),
        _clip(video_b, 5.0, "s_09_act_05_subact_02_ca_03", "Eating", [0, 1, 2, 3]),  # blocked
    ]
    preds = [p for p, _ in clips]
    result = evaluate_h36m(preds, [c for _, c in clips])
    k = 16 / 17  # root-relative: the root joint has no error
    # Walking frames: 1, 1, (1+3)/2, (1+3)/2, 3, 3 mm per moved joint -> mean 2; Eating: 0.010 * 500 * 2 = 10 mm.
    assert result.per_action["Walking"]["mpjpe"] == pytest.approx(2 * k, rel=1e-5)
    assert result.per_action["Eating"]["mpjpe"] == pytest.approx(10 * k, rel=1e-5)
    assert result.mpjpe == pytest.approx(6 * k, rel=1e-5)
    assert result.per_action["Walking"]["frames"] == 6 and result.per_action["Eating"]["frames"] == 4
    assert result.num_frames == 10 and result.num_clips == 3 and result.num_skipped_clips == 1
    assert 0 < result.p_mpjpe < result.mpjpe
    table = result.table()
    assert "Walking" in table and "Eating" in table and "Average" in table


def test_h36m_protocol_repeated_frames_in_a_clip_count_once_like_motionbert():
    # A short video resampled to the clip length repeats frames; numpy's e[frames] += err keeps the last one.
    g = torch.Generator().manual_seed(9)
    video = torch.randn(2, 17, 3, generator=g) * 0.1
    target = video[[0, 0, 1, 1]]
    pred = target.clone()
    pred[:, 1:, 0] += torch.tensor([0.002, 0.004, 0.006, 0.008]).view(4, 1)  # 1, 2, 3, 4 mm
    clips = {"target": target[None], "factor": torch.ones(1, 4), "res": torch.tensor([[1000.0, 1000.0]]),
             "source": ["s_11_act_02_subact_01_ca_01"], "action": ["Walking"], "frames": torch.tensor([[0, 0, 1, 1]])}
    result = evaluate_h36m(pred[None], clips)
    assert result.num_frames == 2
    assert result.mpjpe == pytest.approx((2 + 4) / 2 * 16 / 17, rel=1e-5)  # frames 0 and 1 keep 2 mm and 4 mm


def test_h36m_protocol_scaled_prediction_has_zero_p_mpjpe():
    g = torch.Generator().manual_seed(7)
    target = torch.randn(2, 5, 17, 3, generator=g) * 0.1
    pred = target[:, :, :1] + 1.1 * (target - target[:, :, :1])  # root-relative pose scaled by 1.1
    clips = {
        "target": target, "factor": torch.full((2, 5), 4.0), "res": torch.tensor([[1000.0, 1000.0]] * 2),
        "source": ["s_11_act_03_subact_01_ca_01", "s_11_act_04_subact_01_ca_01"],
        "action": ["Eating", "Greeting"], "frames": torch.arange(5).repeat(2, 1),
    }
    result = evaluate_h36m(pred, clips)
    assert result.p_mpjpe < 1e-3 and result.mpjpe > 1.0
    mm = denormalize_to_mm(target, clips["res"], clips["factor"])
    expected = 0.1 * mpjpe(mm - mm[:, :, :1], torch.zeros_like(mm), reduction="none")
    per_action = expected.mean(dim=1)
    assert result.mpjpe == pytest.approx(per_action.mean().item(), rel=1e-5)


def _motionbert_reference(preds, targets, factors, res, sources, actions, global_frames, num_frames):
    """The MotionBERT evaluate loop re-typed in numpy with global frame indices (per-frame Procrustes)."""
    def pm(p, g):
        out = []
        for a, b in zip(p, g):
            out.append(_horn_p_mpjpe(a, b))
        return np.array(out)

    e1 = np.zeros(num_frames)
    e2 = np.zeros(num_frames)
    oc = np.zeros(num_frames)
    frame_action = np.empty(num_frames, dtype=object)
    for i in range(len(preds)):
        if sources[i][:-6] in S9_BLOCK_LIST:
            continue
        w, h = res[i]
        pred = (preds[i] + np.array([1, h / w, 0])) * w / 2 * factors[i][:, None, None]
        gt = (targets[i] + np.array([1, h / w, 0])) * w / 2 * factors[i][:, None, None]
        pred = pred - pred[:, 0:1]
        gt = gt - gt[:, 0:1]
        e1[global_frames[i]] += np.linalg.norm(pred - gt, axis=-1).mean(-1)
        e2[global_frames[i]] += pm(pred, gt)
        oc[global_frames[i]] += 1
        frame_action[global_frames[i]] = actions[i]
    per_action1, per_action2 = {}, {}
    for f in range(num_frames):
        if e1[f] > 0:
            per_action1.setdefault(frame_action[f], []).append(e1[f] / oc[f])
            per_action2.setdefault(frame_action[f], []).append(e2[f] / oc[f])
    names = sorted(per_action1)
    return np.mean([np.mean(per_action1[a]) for a in names]), np.mean([np.mean(per_action2[a]) for a in names])


def test_h36m_protocol_matches_motionbert_loop_on_random_clips():
    rng = np.random.default_rng(8)
    videos = [("s_09_act_02_subact_01_ca_01", "Directions", 11, (1000, 1002)),
              ("s_09_act_05_subact_02_ca_01", "Discussion", 9, (1000, 1002)),  # blocked
              ("s_11_act_05_subact_01_ca_02", "Discussion", 10, (1000, 1000)),
              ("s_11_act_09_subact_02_ca_03", "Photo", 4, (1000, 1000))]
    clip_len, stride = 4, 3
    offset = 0
    preds, targets, factors, res, sources, actions, local, global_ = [], [], [], [], [], [], [], []
    for source, action, length, wh in videos:
        gt_video = rng.normal(0, 0.1, (length, 17, 3))
        factor_video = rng.uniform(3.5, 4.5, length)
        starts = list(range(0, length - clip_len + 1, stride))
        for s in starts:
            frames = np.arange(s, s + clip_len)
            preds.append(gt_video[frames] + rng.normal(0, 0.01, (clip_len, 17, 3)))
            targets.append(gt_video[frames])
            factors.append(factor_video[frames])
            res.append(wh)
            sources.append(source)
            actions.append(action)
            local.append(frames)
            global_.append(frames + offset)
        offset += length
    expected = _motionbert_reference(preds, targets, factors, res, sources, actions, global_, offset)
    protocol = H36MProtocol()
    for lo in range(0, len(preds), 3):  # in batches of 3 clips
        hi = min(lo + 3, len(preds))
        protocol.update(torch.tensor(np.stack(preds[lo:hi])), {
            "target": torch.tensor(np.stack(targets[lo:hi])), "factor": torch.tensor(np.stack(factors[lo:hi])),
            "res": torch.tensor(res[lo:hi], dtype=torch.float64), "source": sources[lo:hi],
            "action": actions[lo:hi], "frames": torch.tensor(np.stack(local[lo:hi])),
        })
    result = protocol.compute()
    assert result.mpjpe == pytest.approx(expected[0], rel=1e-9)
    assert result.p_mpjpe == pytest.approx(expected[1], rel=1e-9)
    assert sorted(result.per_action) == ["Directions", "Discussion", "Photo"]


def test_h36m_protocol_errors():
    protocol = H36MProtocol()
    with pytest.raises(KeyError, match=r"needs clip fields \['res'\]"):
        protocol.update(torch.zeros(1, 2, 17, 3), target=torch.zeros(1, 2, 17, 3), factor=torch.ones(1, 2),
                        source=["a"], action=["x"], frames=torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="no frame was scored"):
        protocol.compute()
    fields = dict(target=torch.zeros(1, 2, 17, 3), factor=torch.ones(1, 2), res=torch.tensor([[1000.0, 1000.0]]),
                  source=["v_ca_01"], action=["x"], frames=torch.tensor([[0, 1]]))
    protocol.update(torch.zeros(1, 2, 17, 3), **fields)
    with pytest.raises(ValueError, match="was given action 'x' before and 'y' now"):
        protocol.update(torch.zeros(1, 2, 17, 3), **dict(fields, action=["y"]))
    with pytest.raises(ValueError, match="source must be a list of 1 strings"):
        protocol.update(torch.zeros(1, 2, 17, 3), **dict(fields, source=["a", "b"]))
