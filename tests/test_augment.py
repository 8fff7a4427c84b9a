"""The on-the-fly augmentation, the camera-free input normalisation, the wild split and the classic lifters."""

import dataclasses

import numpy as np
import pytest
import torch

from repose_ext.data import augment as A
from repose_ext.data.normalization import normalize_keypoints, normalize_target
from repose_ext.data.skeleton import H36M_LEFT, H36M_PARENTS, H36M_RIGHT
from repose_ext.data.synthetic_views import load_mocap
from repose_ext.lifter import Lifter
from repose_ext.models import SimpleBaseline, TemporalConvNet, build_model, lifter_config
from repose_ext.models.checkpoint import save_checkpoint

PAIRS = [(j, p) for j, p in enumerate(H36M_PARENTS) if p >= 0]


@pytest.fixture(scope="module")
def bank():
    clips, fps = load_mocap()
    return A.MotionBank(clips, A.TRAIN_CLIPS, fps)


def _lengths(joints):
    return np.stack([np.linalg.norm(joints[..., j, :] - joints[..., p, :], axis=-1) for j, p in PAIRS], -1)


def _batch(bank, config=None, seed=(0, 0, 0, 8), batch=8, frames=40):
    return A.augmented_views(bank, batch, frames, config or A.AugmentConfig(), seed)


def test_bone_lengths_constant_over_time_within_a_sample(bank):
    out = _batch(bank)
    lengths = _lengths(out["world"])  # (B, T, 16), measured joint to joint
    np.testing.assert_allclose(lengths, np.broadcast_to(lengths[:, :1], lengths.shape), atol=1e-6)
    # and equal to the drawn body, left and right alike
    np.testing.assert_allclose(lengths[:, 0], out["lengths"], rtol=1e-6)  # a mirrored sample swaps sides
    left_bones = [j - 1 for j in H36M_LEFT]
    right_bones = [j - 1 for j in H36M_RIGHT]
    np.testing.assert_allclose(out["lengths"][:, left_bones], out["lengths"][:, right_bones], rtol=1e-6)
    ratio = out["lengths"] / bank.base_lengths
    assert ratio.min() >= 0.8 * 0.88 - 1e-9 and ratio.max() <= 1.2 * 1.12 + 1e-9
    assert ratio.std(axis=0).max() > 0.02  # people differ


def test_same_seed_same_batch_and_other_seed_other_batch(bank):
    a, b, c = _batch(bank), _batch(bank), _batch(bank, seed=(0, 1, 0, 8))
    for key in ("input", "target", "factor", "world"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.allclose(a["world"], c["world"])


def test_off_centre_projection_matches_an_independent_pinhole_projection(bank):
    out = _batch(bank, A.AugmentConfig(detector=None))
    # Recover each camera from the returned arrays and project the world joints with a plain loop.
    world = out["world"]
    cam = out["camera_3d"].astype(np.float64)
    for i in range(len(world)):
        f = out["focal"][i]
        w, h = out["image_size"][i]
        x = world[i].reshape(-1, 3)
        y = cam[i].reshape(-1, 3)
        # camera = R (x - c): solve the rigid transform by least squares and check it is a rotation
        xm, ym = x.mean(0), y.mean(0)
        u, _, vt = np.linalg.svd((y - ym).T @ (x - xm))
        r = u @ vt
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-6)
        np.testing.assert_allclose((x - xm) @ r.T + ym, y, atol=1e-3)
        px = np.array([[f * p[0] / p[2] + w / 2, f * p[1] / p[2] + h / 2] for p in y])
        np.testing.assert_allclose(px.reshape(out["keypoints"][i].shape), out["keypoints"][i], atol=1e-3)
    # Subjects are off centre: their mean position is spread over the image, not on its centre.
    centre = out["keypoints"][:, :, 0].mean(1) - out["image_size"][:, None, :][:, 0] / 2
    assert np.abs(centre / (out["image_size"] / 2)).max() > 0.2
    assert out["focal"].min() >= 400 and out["focal"].max() <= 2500
    assert (out["camera_3d"][..., 2] > 0).all()


def test_camera_does_not_follow_a_drifting_subject(bank):
    config = A.AugmentConfig(detector=None, trajectory=A.RootTrajectory(p_drift=1.0, max_speed=1500.0))
    out = _batch(bank, config, frames=60)
    moved = np.linalg.norm(out["keypoints"][:, -1, 0] - out["keypoints"][:, 0, 0], axis=-1)
    assert moved.max() > 20  # the pelvis crosses the image


def test_mirroring_swaps_left_and_right_joints():
    rng = np.random.default_rng(0)
    joints = rng.normal(size=(4, 5, 17, 3))
    out = A.Mirror(p=1.0)(joints, np.random.default_rng(1))
    for l, r in zip(H36M_LEFT, H36M_RIGHT):
        np.testing.assert_array_equal(out[..., l, 0], -joints[..., r, 0])
        np.testing.assert_array_equal(out[..., r, 1:], joints[..., l, 1:])
    np.testing.assert_array_equal(A.Mirror(p=0.0)(joints, np.random.default_rng(1)), joints)


def test_splicing_keeps_the_skeleton_connected(bank):
    config = A.AugmentConfig(splice=A.Splice(p=1.0), angles=None, body=None, detector=None)
    spliced = _batch(bank, config)
    plain = _batch(bank, dataclasses.replace(config, splice=None))
    # lower body unchanged, upper body changed, and every bone still has its length (no gap at the spine)
    lower = [1, 2, 3, 4, 5, 6, 7]
    np.testing.assert_allclose(spliced["world"][:, :, lower], plain["world"][:, :, lower], atol=1e-9)
    assert not np.allclose(spliced["world"][:, :, 13], plain["world"][:, :, 13])
    np.testing.assert_allclose(_lengths(spliced["world"]), _lengths(plain["world"]), atol=1e-6)


def test_detector_errors_drop_swap_and_miss(bank):
    config = A.AugmentConfig(detector=A.DetectorErrors(p_clean=0.0, p_missed_frame=0.1, p_swap=0.05))
    out = _batch(bank, config, batch=16, frames=60)
    scores = out["scores"]
    assert (scores.max(-1) == 0).mean() > 0.03  # whole missed frames
    assert ((scores == 0).mean() > 0.05) and ((scores > 0) & (scores < 1)).any()
    assert not np.allclose(out["input"], _batch(bank, A.AugmentConfig(detector=None), batch=16, frames=60)["input"])


def test_normalize_keypoints_is_camera_free_and_handles_missing_joints():
    rng = np.random.default_rng(0)
    kp = rng.uniform(100, 300, size=(6, 17, 2))
    sc = np.ones((6, 17))
    x, size = normalize_keypoints(kp, sc)
    # a zoomed and shifted copy gives the same input
    x2, size2 = normalize_keypoints(kp * 3.5 + 40, sc)
    np.testing.assert_allclose(x, x2, atol=1e-5)
    np.testing.assert_allclose(size2, size * 3.5)
    # pelvis-centred, unit RMS size
    centre = kp[:, [0, 1, 4]].mean(1)
    np.testing.assert_allclose(x[..., :2], (kp - centre[:, None]) / size[:, None, None], atol=1e-5)
    np.testing.assert_allclose(np.sqrt((x[..., :2] ** 2).sum(-1).mean(-1)), 1.0, atol=1e-5)
    # a dropped joint is 0, a missed frame takes the size of its nearest frame
    sc[2, 5] = 0
    sc[3] = 0
    x, size = normalize_keypoints(kp, sc)
    assert (x[2, 5] == 0).all() and (x[3] == 0).all()
    assert size[3] in (size[2], size[4])


def test_normalize_keypoints_scale_frames_divides_by_the_median_size_around_each_frame():
    rng = np.random.default_rng(1)
    t = 40
    kp = rng.uniform(100, 300, size=(2, t, 17, 2)) * np.linspace(1.0, 2.5, t)[None, :, None, None]
    sc = np.ones((2, t, 17))
    sc[0, 7] = 0  # a missed frame: it does not count in its neighbours' medians
    sc[1, :, :14] = 0  # a clip with too few joints in every frame: nearest valid, else 1, as with one frame
    own = normalize_keypoints(kp, sc)[1]  # each frame's own size
    x, size = normalize_keypoints(kp, sc, scale_frames=9)
    for i in range(t):  # independent statement: the median over the valid frames within 4 of frame i
        near = [own[0, k] for k in range(max(0, i - 4), min(t, i + 5)) if k != 7]
        expected = np.median(near) if i != 7 else size[0, 6 if abs(6 - i) <= abs(8 - i) else 8]
        assert size[0, i] == pytest.approx(expected, rel=1e-12), i
    np.testing.assert_allclose(size[1], own[1])
    centre = kp[0, :, [0, 1, 4]].mean(0)
    np.testing.assert_allclose(x[0, 8, :, :2], (kp[0, 8] - centre[8]) / size[0, 8], rtol=1e-5, atol=1e-6)
    assert (x[0, 7] == 0).all()
    # still camera-free: a zoomed and shifted copy gives the same input (the clip with sizes)
    np.testing.assert_allclose(normalize_keypoints(kp * 3.5 + 40, sc, scale_frames=9)[0][0], x[0], atol=1e-5)
    # one frame is the per-frame normalisation; a window longer than the clip is the clip's median
    np.testing.assert_array_equal(normalize_keypoints(kp, sc, scale_frames=1)[0], normalize_keypoints(kp, sc)[0])
    whole = normalize_keypoints(kp[0, :20], sc[0, :20], scale_frames=41)[1]
    np.testing.assert_allclose(whole[8], np.median(np.delete(own[0, :20], 7)))


def test_a_frame_whose_joints_collapse_does_not_blow_up_with_a_median_scale():
    # frame 5: only four joints detected, 2 px apart (a bad detection); its own size is tiny
    rng = np.random.default_rng(3)
    kp = rng.uniform(300, 500, size=(11, 17, 2))
    sc = np.ones((11, 17))
    sc[5] = 0
    sc[5, [0, 1, 4, 7]] = 1
    kp[5, [0, 1, 4, 7]] = 400 + rng.uniform(0, 2, size=(4, 2))
    own, size_own = normalize_keypoints(kp, sc)
    median, size_median = normalize_keypoints(kp, sc, scale_frames=5)
    assert size_own[5] < size_own[4] / 50
    assert size_median[5] == pytest.approx(np.median(size_own[3:8]))
    np.testing.assert_allclose(np.abs(median[5, [0, 1, 4, 7], :2]).max(),
                               np.abs(own[5, [0, 1, 4, 7], :2]).max() * size_own[5] / size_median[5], rtol=1e-5)
    # the 3D target is in units of the size: with the frame's own size it is ~100x the person's usual size
    cam = rng.normal(0, 300, size=(11, 17, 3)) + np.array([0, 0, 5000.0])
    target_own = np.abs(normalize_target(cam, size_own, 1000.0)[0])
    target_median = np.abs(normalize_target(cam, size_median, 1000.0)[0])
    assert target_own[5].max() > 50 * target_own[4].max()
    assert target_median[5].max() < 2 * target_median[4].max()


@pytest.mark.parametrize("bad", [0, 2, -3, 1.0, True, "9"])
def test_normalize_keypoints_rejects_a_bad_scale_frames(bad):
    with pytest.raises(ValueError, match=f"scale_frames must be an odd positive int; got {bad!r}"):
        normalize_keypoints(np.zeros((3, 17, 2)), np.ones((3, 17)), scale_frames=bad)


def test_normalize_target_gives_exact_millimetres():
    rng = np.random.default_rng(0)
    cam = rng.normal(0, 300, size=(5, 17, 3)) + np.array([0, 0, 5000.0])
    size = rng.uniform(50, 200, size=5)
    target, factor = normalize_target(cam, size, 1000.0)
    mm = target * factor[:, None, None]
    # a rigid turn of the root-relative pose: every distance between joints is kept
    dist = lambda p: np.linalg.norm(p[:, :, None] - p[:, None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(dist(mm), dist(cam), atol=2e-2)
    np.testing.assert_allclose(mm[:, 0], 0.0, atol=1e-6)
    # a subject on the optical axis is not turned: millimetres are the camera-space pose itself
    on_axis = cam - cam[:, :1] + np.array([0, 0, 5000.0])
    target, factor = normalize_target(on_axis, size, 1000.0)
    np.testing.assert_allclose(target * factor[:, None, None], on_axis - on_axis[:, :1], rtol=1e-4, atol=2e-2)
    # the turn takes the pelvis ray onto the axis: a joint on that ray stays on the axis
    ray = cam.copy()
    ray[:, 1] = cam[:, 0] * 1.2
    target, _ = normalize_target(ray, size, 1000.0)
    np.testing.assert_allclose(target[:, 1, :2], 0.0, atol=1e-5)


def test_wild_split_is_deterministic_and_differs_from_studio():
    a = A.wild_views(27, noisy=True, draws=2)
    b = A.wild_views(27, noisy=True, draws=2)
    clean = A.wild_views(27, noisy=False, draws=2)
    assert len(a) == len(b) > 0
    for i in (0, len(a) - 1):
        for key in ("input", "target", "factor"):
            torch.testing.assert_close(a[i][key], b[i][key], rtol=0, atol=0)
        mm = a[i]["target"] * a[i]["factor"][:, None, None]  # same people and cameras (the unit follows the 2D)
        torch.testing.assert_close(mm, clean[i]["target"] * clean[i]["factor"][:, None, None], rtol=1e-4, atol=0.05)
        assert not torch.equal(a[i]["input"], clean[i]["input"])
    assert {a[i]["action"] for i in range(len(a))} == set(A.TEST_CLIPS)


def test_dataset_batches_follow_the_epoch():
    ds = A.AugmentedMocapDataset(n_frames=9, epoch_size=16)
    first = ds.__getitems__([0, 1, 2])
    again = ds.__getitems__([0, 1, 2])
    ds.set_epoch(1)
    other = ds.__getitems__([0, 1, 2])
    torch.testing.assert_close(first[1]["input"], again[1]["input"], rtol=0, atol=0)
    assert not torch.equal(first[1]["input"], other[1]["input"])
    assert first[0]["input"].shape == (9, 17, 3) and first[0]["res"].tolist() == [2.0, 2.0]


def test_reversed_playback_is_the_same_window_backwards(bank):
    forward = A.WindowSampler()(bank, 16, 81, np.random.default_rng(3))
    backward = A.WindowSampler(p_reverse=1.0)(bank, 16, 81, np.random.default_rng(3))
    np.testing.assert_array_equal(backward.clip, forward.clip)
    np.testing.assert_allclose(backward.root, forward.root[:, ::-1])
    np.testing.assert_allclose(backward.directions, forward.directions[:, ::-1])
    half = A.WindowSampler(p_reverse=0.5)(bank, 16, 81, np.random.default_rng(3))
    flipped = [not np.allclose(half.root[i], forward.root[i]) for i in range(16)]
    assert 0 < sum(flipped) < 16
    for i in range(16):  # each window is either the forward one or its reverse
        np.testing.assert_allclose(half.root[i], forward.root[i, ::-1] if flipped[i] else forward.root[i])


def test_joint_angle_sway_is_bounded_smooth_and_changes_the_motion(bank):
    """A static pose swayed (no constant turn): bone lengths stay 1, each bone stays within sway_deg of its
    original direction (half for torso and head), moves between frames no faster than the highest frequency allows,
    and the deviation changes over time."""
    fps, t, b = 50.0, 120, 8
    pose = bank.directions[:1][None]  # (1, 1, 16, 3): one recorded frame
    motion = A.Motion(root=np.zeros((b, t, 3)), directions=np.broadcast_to(pose, (b, t, 16, 3)).copy(),
                      lengths=np.ones((b, 16)), clip=np.zeros(b, dtype=int))
    sway = A.JointAnglePerturbation(limb_deg=0, torso_deg=0, sway_deg=20, sway_hz=(0.5, 1.5))  # ints, as YAML gives
    d = sway(motion, fps, np.random.default_rng(0)).directions
    np.testing.assert_allclose(np.linalg.norm(d, axis=-1), 1.0, atol=1e-12)
    off = np.degrees(np.arccos(np.clip(np.sum(d * motion.directions, -1), -1, 1)))  # (B, T, 16)
    limit = np.full(16, 20.0)
    limit[[0, 3, 6, 7, 8, 9, 10, 13]] = 10.0  # pelvis-hips, spine, thorax, neck, head, shoulders
    assert np.all(off <= limit + 1e-6)
    step = np.degrees(np.arccos(np.clip(np.sum(d[:, 1:] * d[:, :-1], -1), -1, 1)))
    assert step.max() <= 2 * np.pi * 1.5 * 20.0 / fps + 1e-6  # |d theta / dt| <= 2 pi f A
    assert np.mean(off.std(axis=1) > 0.5) > 0.6  # the turn changes over time for most bones (random amplitudes)
    still = A.JointAnglePerturbation(limb_deg=0.0, torso_deg=0.0)(motion, fps, np.random.default_rng(0))
    np.testing.assert_allclose(still.directions, motion.directions, atol=1e-12)


def test_augment_options_are_checked():
    with pytest.raises(ValueError, match="unknown augmentation"):
        A.AugmentConfig.from_options({"zoom": {}})
    with pytest.raises(ValueError, match="setting"):
        A.AugmentConfig.from_options({"splice": {"q": 1}})
    assert A.AugmentConfig.from_options({"splice": None}).splice is None
    assert A.AugmentConfig.from_options({"splice": {"p": 0.7}}).splice.p == 0.7
    assert A.AugmentConfig.from_options({"detector": {"jitter_range": [0, 0.01]}}).detector.jitter_range == (0, 0.01)


@pytest.mark.parametrize("options, message", [
    ({"window": {"p_reverse": 1.5}}, r"'window': p_reverse must be in \[0, 1\]; got 1.5"),
    ({"splice": {"p": 1.5}}, r"'splice': p must be in \[0, 1\]; got 1.5"),
    ({"detector": {"p_clean": -0.1}}, r"'detector': p_clean must be in \[0, 1\]; got -0.1"),
    ({"detector": {"p_drop": "often"}}, r"'detector': p_drop must be in \[0, 1\]; got 'often'"),
    ({"mirror": {"p": True}}, r"'mirror': p must be in \[0, 1\]; got True"),
    ({"angles": {"sway_deg": -1}}, r"'angles': sway_deg must be a number >= 0 \(degrees\); got -1"),
    ({"angles": {"sway_hz": [0, 1]}}, r"'angles': sway_hz must be a pair \[low, high\] with 0 < low"),
    ({"window": {"speed_range": [2, 1]}}, r"'window': speed_range must be a pair \[low, high\]"),
    ({"camera": {"focal_range": [400]}}, r"'camera': focal_range must be a pair \[low, high\] with 0 <= low"),
    ({"body": {"scale_range": 1.0}}, r"'body': scale_range must be a pair"),
])
def test_augment_settings_no_draw_can_use_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        A.AugmentConfig.from_options(options)


# --- the classic lifters -------------------------------------------------------------------------------------------
def _params(model):
    return sum(p.numel() for p in model.parameters())


def test_simple_baseline_has_the_published_size():
    # Martinez et al. 2017: 16 joints x (x, y) in, 16 x 3 out, 1024 wide, two residual blocks: about 4.3 M.
    n = _params(SimpleBaseline(num_joints=16, dim_in=2, dim_out=3))
    assert 4.25e6 < n < 4.35e6


@pytest.mark.parametrize("widths,published", [((3, 3, 3), 8.56e6), ((3, 3, 3, 3), 12.75e6),
                                              ((3, 3, 3, 3, 3), 16.95e6)])
def test_temporal_conv_net_has_the_published_sizes(widths, published):
    # Pavllo et al. 2019, 1024 channels, 17 joints x (x, y) in: 8.56 M / 12.75 M / 16.95 M parameters.
    n = _params(TemporalConvNet(num_joints=17, dim_in=2, filter_widths=widths, channels=1024))
    assert abs(n - published) < 0.005e6


@pytest.mark.parametrize("preset", ["simple_baseline", "tcn27", "tcn81", "tcn243", "tcn81_cpu"])
def test_presets_build_and_match_their_architecture(preset):
    config = lifter_config(preset)
    model = build_model(preset)
    expected = {"simple_baseline": 4314163, "tcn27": 8607795, "tcn81": 12806195, "tcn243": 17004595,
                "tcn81_cpu": 842291}[preset]
    assert _params(model) == expected  # the published sizes above, with confidence as a third input channel
    assert config["arch"] in ("simple_baseline", "tcn")


@pytest.mark.parametrize("preset", ["simple_baseline", "tcn81_cpu"])
def test_lifters_are_sequence_to_sequence(preset):
    torch.manual_seed(0)
    model = build_model(preset).eval()
    x = torch.randn(2, 11, 17, 3)
    y = model(x)
    assert y.shape == (2, 11, 17, 3)
    if preset == "simple_baseline":  # frame by frame
        torch.testing.assert_close(model(x[:, 4:5]), y[:, 4:5], rtol=1e-5, atol=1e-5)
    else:  # a frame far from the end does not see beyond the receptive field
        x2 = x.clone()
        x2[:, -1] += 5
        long = torch.randn(1, 200, 17, 3)
        long2 = long.clone()
        long2[:, -1] += 5
        torch.testing.assert_close(model(long)[:, :100], model(long2)[:, :100])


def test_constant_bones_keeps_directions_and_makes_each_bone_its_mean_length():
    from repose_ext.models.baselines import constant_bones

    torch.manual_seed(0)
    pose = torch.randn(2, 9, 17, 3, dtype=torch.float64, requires_grad=True)
    out = constant_bones(pose)
    torch.testing.assert_close(out[:, :, 0], pose[:, :, 0])
    for j, p in enumerate(H36M_PARENTS):
        if p < 0:
            continue
        old, new = pose[:, :, j] - pose[:, :, p], out[:, :, j] - out[:, :, p]
        length = new.norm(dim=-1)
        torch.testing.assert_close(length, old.norm(dim=-1).mean(1, keepdim=True).expand_as(length))
        torch.testing.assert_close(new / length[..., None], old / old.norm(dim=-1, keepdim=True))
    out.sum().backward()
    assert torch.isfinite(pose.grad).all() and pose.grad.abs().sum() > 0
    # a person whose bones already keep their length is left as it was
    steady = out.detach()
    torch.testing.assert_close(constant_bones(steady), steady)


def test_temporal_conv_net_with_constant_bones():
    torch.manual_seed(0)
    model = build_model({"preset": "tcn81_cpu", "channels": 16, "constant_bones": True}).eval()
    plain = build_model({"preset": "tcn81_cpu", "channels": 16}).eval()
    plain.load_state_dict(model.state_dict())  # no parameters of its own
    x = torch.randn(1, 30, 17, 3)
    from repose_ext.models.baselines import constant_bones

    torch.testing.assert_close(model(x), constant_bones(plain(x)))
    with pytest.raises(ValueError, match="constant_bones needs the 17 H36M joints with 3D output; got num_joints=16"):
        build_model({"preset": "tcn81_cpu", "num_joints": 16, "constant_bones": True})
    with pytest.raises(ValueError, match="constant_bones must be true or false; got 'yes'"):
        build_model({"preset": "tcn81_cpu", "constant_bones": "yes"})


def test_unknown_model_arguments_are_named():
    with pytest.raises(ValueError, match=r"SimpleBaseline argument\(s\) \[.channels.\]"):
        build_model({"preset": "simple_baseline", "channels": 3})
    with pytest.raises(ValueError, match="model.arch"):
        build_model({"arch": "lstm"})


def test_rank_losses_train_a_temporal_conv_net():
    import repose_ext

    torch.manual_seed(0)
    model = build_model({"preset": "tcn81_cpu", "channels": 16, "filter_widths": [3, 3]})
    pred = model(torch.randn(2, 12, 17, 3))
    loss = repose_ext.depth_rank_loss(pred, torch.randn(2, 12, 17, 3), lambda_spatial=1.0, lambda_temporal=1.0)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_lift_uses_the_training_normalisation_for_a_temporal_conv_net(tmp_path):
    torch.manual_seed(0)
    config = {"model": {"preset": "tcn81_cpu", "channels": 16}, "data": {"dataset": "mocap_augmented",
                                                                            "n_frames": 81}}
    path = tmp_path / "tcn.pt"
    save_checkpoint(path, build_model(config["model"]), config=config)
    lifter = Lifter(str(path))
    assert lifter.window is None and lifter.input_norm == "pose"
    rng = np.random.default_rng(0)
    kp = rng.uniform(100, 900, size=(30, 17, 2))
    pose = lifter.lift(kp, format="h36m17").pose3d_normalized
    # camera-free: the same person twice as large, elsewhere in another image, lifts to the same pose
    pose2 = lifter.lift(kp * 2 + 100, format="h36m17", width=1920, height=1080).pose3d_normalized
    np.testing.assert_allclose(pose, pose2, atol=1e-4)
    # the input the lifter sees is exactly the training pipeline's normalisation
    seen = []
    hook = lifter.model.register_forward_pre_hook(lambda m, args: seen.append(args[0][0].numpy().copy()))
    lifter.lift(kp, format="h36m17")
    hook.remove()
    np.testing.assert_allclose(seen[0], normalize_keypoints(kp, np.ones((30, 17)))[0], atol=1e-6)
    assert pose.shape == (30, 17, 3)
