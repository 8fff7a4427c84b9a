"""Tests of the embedded mocap (scripts/convert_deepmimic.py output) and the synthetic-views dataset.

Expected numbers come from the source NOTICE (joint offsets), the spec (H36M-17 parents, the
MotionBERT normalisation) or are worked out by hand below, never from the code under test.
"""

import importlib.util
import math
import pathlib

import numpy as np
import pytest
import torch

from repose_ext.data import synthetic_views as sv
from repose_ext.data.normalization import denormalize_image_coordinates, normalized_to_millimetres

REPO = pathlib.Path(__file__).resolve().parents[1]
H36M_PARENTS = [-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15]  # spec section 5
# Bone lengths (mm) from the humanoid.urdf offsets quoted in the clips' NOTICE.
NOTICE_BONES_MM = {
    (0, 1): 84.887, (0, 4): 84.887,  # pelvis -> hips
    (1, 2): 421.546, (4, 5): 421.546,  # thighs
    (2, 3): 409.87, (5, 6): 409.87,  # shins
    (0, 7): 236.151, (7, 8): 223.894,  # root -> chest -> neck
    (11, 12): 274.788, (14, 15): 274.788,  # upper arms
    (12, 13): 258.947, (15, 16): 258.947,  # forearms
}


def _load_converter():
    spec = importlib.util.spec_from_file_location("convert_deepmimic", REPO / "scripts" / "convert_deepmimic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mocap():
    return sv.load_mocap()


@pytest.fixture(scope="module")
def small_dataset():
    return sv.SyntheticViewsDataset(
        clips=["walk", "punch", "run"], n_frames=27, stride=9, azimuths_deg=(0, 90, 200), heights_mm=(1600.0,), seed=3,
        perspective_target=True,  # target x, y = pinhole projections: input - target is the detector noise
    )


# ----------------------------------------------------------------------------------------------
# Conversion (the committed npz)


def test_npz_holds_fifteen_clips_at_one_rate(mocap):
    clips, fps = mocap
    assert fps == 50.0
    assert sorted(clips) == sorted(sv.ALL_CLIPS)
    total_seconds = sum(len(j) for j in clips.values()) / fps
    assert abs(total_seconds - 34.0) < 1.5  # NOTICE: "about 34 s in all"
    for name, joints in clips.items():
        assert joints.shape[1:] == (17, 3), name
        assert np.isfinite(joints).all(), name


def test_bone_lengths_constant_and_match_notice_offsets(mocap):
    clips, _ = mocap
    for name, joints in clips.items():
        child = np.arange(1, 17)
        lengths = np.linalg.norm(joints[:, child] - joints[:, np.array(H36M_PARENTS)[child]], axis=-1)
        assert lengths.std(axis=0).max() < 0.05, name  # mm; float32 storage only
        for (parent, joint), expected in NOTICE_BONES_MM.items():
            measured = np.linalg.norm(joints[:, joint] - joints[:, parent], axis=-1)
            np.testing.assert_allclose(measured, expected, atol=0.05, err_msg=f"{name} bone {parent}-{joint}")


def test_walk_feet_on_floor_head_above_pelvis_facing_forward(mocap):
    clips, _ = mocap
    walk = clips["walk"]
    for ankle in (3, 6):
        height = walk[:, ankle, 2]
        assert 0.0 <= height.min() < 150.0  # ankle joint a few cm above the floor at foot strike
        assert (height < 150.0).mean() > 0.3  # each foot is on the ground for a good part of the cycle
    assert (walk[:, 10, 2] - walk[:, 0, 2] > 500).all()  # head top well above pelvis
    assert (walk[:, 0, 2] > 700).all() and (walk[:, 0, 2] < 1000).all()
    # Starts facing +x (nose in front of the thorax), moves forward, right side towards -y.
    assert walk[0, 9, 0] > walk[0, 8, 0]
    assert walk[-1, 0, 0] - walk[0, 0, 0] > 800
    assert walk[0, 1, 1] < walk[0, 4, 1] and walk[0, 14, 1] < walk[0, 11, 1]
    for name in ("run", "punch", "dance_a", "dance_b", "kick"):  # upright clips
        joints = clips[name]
        assert (joints[:, 10, 2] > joints[:, 0, 2]).all(), name
        assert joints[..., 2].min() > -20, name  # nothing far below the floor


def test_forward_kinematics_rest_pose_and_hinges():
    conv = _load_converter()
    identity = [1.0, 0.0, 0.0, 0.0]
    frame = [1 / 30, 0.0, 1.0, 0.0] + identity * 3 + identity + [0.0] + identity + identity + [0.0]
    frame += identity + [0.0] + identity + identity + [0.0]
    frame = np.array([frame])
    assert frame.shape == (1, 44)
    joints = conv.forward_kinematics(frame)[0]
    np.testing.assert_allclose(joints[0], [0.0, 0.0, 1000.0], atol=1e-9)
    # Right ankle: root + hip (0, 0, +0.084887) + knee + ankle offsets, source y up -> world z up.
    np.testing.assert_allclose(joints[3], [0.0, -84.887, 1000.0 - 421.546 - 409.87], atol=1e-6)
    # Left wrist: chest + shoulder (-0.02405, 0.2435, -0.18311) + elbow + wrist offsets.
    np.testing.assert_allclose(joints[13], [-24.05, 183.11, 1000.0 + 236.151 + 243.5 - 274.788 - 258.947], atol=1e-6)

    bent = frame.copy()
    bent[0, 20] = -math.pi / 2  # right knee flexed 90 degrees about local z: the shin points backwards
    bent[0, 29] = math.pi / 2  # right elbow flexed 90 degrees: the forearm points forwards
    bent[0, 4:8] = [math.cos(math.pi / 4), 0.0, math.sin(math.pi / 4), 0.0]  # root turned 90 deg about up
    joints = conv.forward_kinematics(bent)[0]
    # Turning +90 degrees about the (source) up axis maps forward +x to -z source = +y world.
    np.testing.assert_allclose(joints[3] - joints[2], [0.0, -409.87, 0.0], atol=1e-6)
    np.testing.assert_allclose(joints[16] - joints[15], [0.0, 258.947, 0.0], atol=1e-6)
    np.testing.assert_allclose(joints[1] - joints[0], [84.887, 0.0, 0.0], atol=1e-6)  # right = forward x up


def test_resampling_interpolates_positions_and_slerps_rotations():
    conv = _load_converter()
    identity = [1.0, 0.0, 0.0, 0.0]
    base = [0.1, 0.0, 1.0, 0.0] + identity * 4 + [0.0] + identity * 2 + [0.0] + identity + [0.0] + identity * 2 + [0.0]
    frames = np.array([base, base])
    frames[1, 0] = 0.0
    frames[1, 1] = 1.0  # root x moves 1 m in 0.1 s
    frames[1, 4:8] = [math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)]  # 90 deg about z
    frames[1, 20] = -1.0
    out = conv.resample_frames(frames, fps=50)
    assert out.shape == (6, 44)
    np.testing.assert_allclose(out[:, 1], [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], atol=1e-9)
    np.testing.assert_allclose(out[:, 20], [0.0, -0.2, -0.4, -0.6, -0.8, -1.0], atol=1e-9)
    half = out[3, 4:8]  # t = 0.06 s: 54 degrees
    np.testing.assert_allclose(half, [math.cos(math.radians(27)), 0, 0, math.sin(math.radians(27))], atol=1e-9)


# ----------------------------------------------------------------------------------------------
# Cameras and the 2.5D representation


def test_projection_of_a_known_point():
    camera = sv.look_at_camera([0.0, 0.0, 0.0], [0.0, 1000.0, 0.0], focal=1145.0, resolution=(1000, 1000))
    np.testing.assert_allclose(camera.rotation @ camera.rotation.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(camera.rotation) == pytest.approx(1.0)
    point = np.array([100.0, 2000.0, 50.0])  # right of and above the optical axis (world z up)
    np.testing.assert_allclose(camera.world_to_camera(point), [100.0, -50.0, 2000.0], atol=1e-9)
    np.testing.assert_allclose(camera.project(camera.world_to_camera(point)), [557.25, 471.375], atol=1e-9)
    with pytest.raises(ValueError, match="in front of the camera"):
        camera.project(np.array([0.0, 0.0, -1.0]))


def test_2p5d_target_inverts_to_pixels_and_millimetres():
    camera = sv.look_at_camera([3000.0, 1000.0, 1500.0], [0.0, 0.0, 900.0], resolution=(1000, 1002))
    rng = np.random.default_rng(1)
    world = np.array([0.0, 0.0, 900.0]) + rng.normal(0, 400, (4, 17, 3))
    cam = camera.world_to_camera(world)
    root_relative = cam - cam[:, :1]
    for perspective in (False, True):
        normalized, factor = sv.camera_to_normalized_2p5d(cam, camera, perspective=perspective)
        assert normalized.shape == (4, 17, 3) and factor.shape == (4,)
        np.testing.assert_allclose(factor, cam[:, 0, 2] / 1145.0)
        np.testing.assert_allclose(normalized[:, 0, 2], 0.0)
        pixels = denormalize_image_coordinates(normalized, 1000, 1002)
        np.testing.assert_allclose(pixels[:, 0, :2], camera.project(cam[:, 0]), atol=1e-9)  # root: pinhole
        mm = normalized_to_millimetres(normalized, 1000, 1002, factor[:, None])
        np.testing.assert_allclose(mm[..., 2] - mm[:, :1, 2], root_relative[..., 2], atol=1e-9)
        if perspective:
            np.testing.assert_allclose(pixels[..., :2], camera.project(cam), atol=1e-9)
        else:  # root-depth scaling: the metric conversion is exact
            np.testing.assert_allclose(mm - mm[:, :1], root_relative, atol=1e-9)
    # By hand: a point 100 mm right of and 50 mm below a root 2000 mm ahead, 300 mm deeper.
    camera = sv.look_at_camera([0.0, 0.0, 0.0], [0.0, 1000.0, 0.0])
    cam = np.array([[[0.0, 0.0, 2000.0], [100.0, 50.0, 2300.0]]])
    normalized, factor = sv.camera_to_normalized_2p5d(cam, camera)
    # u = 500 + 1145 * 100 / 2000 = 557.25, v = 500 + 1145 * 50 / 2000 = 528.625, z = 1145 * 300 / 2000
    np.testing.assert_allclose(normalized[0, 1], [557.25 / 500 - 1, 528.625 / 500 - 1, 171.75 / 500])
    np.testing.assert_allclose(factor, [2000.0 / 1145.0])


def test_camera_rig_keeps_clips_in_view(mocap):
    clips, _ = mocap
    for name in ("run", "spin", "cartwheel"):  # the clips that travel furthest
        cameras = sv.camera_rig_for_clip(clips[name], np.random.default_rng(0), distance_range_mm=(3500, 4000))
        assert len(cameras) == 8 * 3
        for camera in cameras:
            px = camera.project(camera.world_to_camera(clips[name]))
            assert (px >= 0).all() and (px[..., 0] < camera.width).all() and (px[..., 1] < camera.height).all()


# ----------------------------------------------------------------------------------------------
# Occlusion


def _standing_pose():
    """A hand-made upright pose facing +x (z up, mm), arms hanging, right side at -y."""
    j = np.zeros((17, 3))
    j[0] = [0, 0, 900]
    j[1], j[2], j[3] = [0, -90, 900], [0, -90, 480], [0, -90, 70]
    j[4], j[5], j[6] = [0, 90, 900], [0, 90, 480], [0, 90, 70]
    j[7], j[8] = [0, 0, 1140], [0, 0, 1360]
    j[9], j[10] = [90, 0, 1510], [0, 0, 1630]
    j[11], j[12], j[13] = [-20, 185, 1380], [-20, 200, 1110], [-20, 210, 850]
    j[14], j[15], j[16] = [-20, -185, 1380], [-20, -200, 1110], [-20, -210, 850]
    return j


def test_ray_segment_distance_matches_dense_sampling():
    rng = np.random.default_rng(0)
    eye = rng.normal(0, 1000, 3)
    ray_end = rng.normal(0, 500, (3, 5, 3))
    seg_a, seg_b = rng.normal(0, 500, (3, 4, 3)), rng.normal(0, 500, (3, 4, 3))
    seg_b[0, 0] = seg_a[0, 0]  # a sphere (zero-length segment)
    seg_b[1, 1] = seg_a[1, 1] + 0.3 * (ray_end[1, 0] - eye)  # parallel to one ray
    distance = sv._ray_segment_distance(eye, ray_end, seg_a, seg_b)
    u = np.linspace(0.0, 1.0, 401)[:, None]  # steps of at most 5.2 mm along these segments
    for t in range(3):
        for j in range(5):
            ray = eye + u * (ray_end[t, j] - eye)
            for k in range(4):
                seg = seg_a[t, k] + u * (seg_b[t, k] - seg_a[t, k])
                sampled = np.linalg.norm(ray[:, None] - seg[None], axis=-1).min()
                assert sampled - 10.0 <= distance[t, j, k] <= sampled + 1e-6, (t, j, k)


def test_joint_behind_torso_is_occluded_and_in_front_is_not():
    front = np.array([4000.0, 0.0, 1200.0])
    back = np.array([-4000.0, 0.0, 1200.0])
    pose = _standing_pose()
    behind = pose.copy()
    behind[16] = [-250.0, 0.0, 1150.0]  # right wrist behind the back
    in_front = pose.copy()
    in_front[16] = [250.0, 0.0, 1150.0]  # right wrist in front of the chest
    occ = sv.self_occlusion(np.stack([pose, behind, in_front]), front)
    assert not occ[0].any()  # upright, arms at the sides, seen from the front: all visible
    assert occ[1, 16] and not occ[2, 16]
    touching = pose.copy()
    # Pressed on the chest, 10 mm inside the 110 mm spine capsule (the capsules are approximate):
    # still visible from the front thanks to the 40 mm margin at the joint's end of the ray.
    touching[16] = [100.0, 0.0, 1150.0]
    assert not sv.self_occlusion(touching[None], front)[0, 16]
    occ_back = sv.self_occlusion(np.stack([behind, in_front]), back)
    assert not occ_back[0, 16] and occ_back[1, 16]  # seen from behind, the roles swap
    assert occ_back[0, 9]  # and the nose is hidden by the head


def test_head_hides_a_wrist_behind_it():
    pose = _standing_pose()
    # Right hand behind the head, 84 mm above the head centre (1535.5 mm): clear of the 50 mm neck
    # capsule, inside the 100 mm head sphere's shadow.
    pose[16] = [-250.0, 0.0, 1620.0]
    front = np.array([4000.0, 0.0, 1620.0])
    assert sv.self_occlusion(pose[None], front)[0, 16]
    pose[16] = [-250.0, 0.0, 1800.0]  # above the head: visible
    assert not sv.self_occlusion(pose[None], front)[0, 16]


def test_far_side_hidden_in_profile():
    left_side = np.array([0.0, 4000.0, 1200.0])  # camera at the character's left
    occ = sv.self_occlusion(_standing_pose()[None], left_side)[0]
    assert occ[14] and occ[15]  # right shoulder and elbow behind the body
    assert not occ[11] and not occ[12] and not occ[13] and not occ[10]


def test_self_occlusion_works_in_camera_space():
    pose = _standing_pose()
    pose[16] = [-250.0, 0.0, 1150.0]
    camera = sv.look_at_camera([4000.0, 300.0, 1200.0], [0.0, 0.0, 1000.0])
    world = sv.self_occlusion(pose[None], camera.position)
    cam = sv.self_occlusion(camera.world_to_camera(pose)[None], np.zeros(3))
    np.testing.assert_array_equal(world, cam)
    assert cam[0, 16]


def test_points_in_boxes():
    points = np.array([[[10.0, 10.0], [50.0, 60.0], [200.0, 200.0]], [[10.0, 10.0], [50.0, 60.0], [200.0, 200.0]]])
    boxes = np.full((2, 2, 4), np.nan)
    boxes[0, 1] = [40.0, 40.0, 100.0, 100.0]  # frame 0: one box around the second point
    inside = sv.points_in_boxes(points, boxes)
    np.testing.assert_array_equal(inside, [[False, True, False], [False, False, False]])


def test_occluder_boxes_hide_the_joints_inside_them():
    camera = sv.look_at_camera([4000.0, 0.0, 1200.0], [0.0, 0.0, 900.0])
    px = camera.project(camera.world_to_camera(np.repeat(_standing_pose()[None], 50, 0)))
    boxes = sv.OccluderBoxes(max_boxes=2, box_probability=1.0).sample(px, 50.0, np.random.default_rng(0))
    present = ~np.isnan(boxes[..., 0])
    assert present.any(axis=0).all()  # both boxes appear at some time
    inside = sv.points_in_boxes(px, boxes)
    assert inside.any()
    for t in range(50):
        for j in range(17):
            x, y = px[t, j]
            expected = any(
                b[0] <= x <= b[2] and b[1] <= y <= b[3] for b in boxes[t] if not np.isnan(b[0])
            )
            assert inside[t, j] == expected


def test_dataset_flags_and_perturbs_occluded_joints(small_dataset):
    ds = small_dataset
    samples = [ds[i] for i in range(len(ds))]
    occluded = torch.cat([x["occluded"] for x in samples]).numpy()
    inputs = torch.cat([x["input"] for x in samples]).numpy()
    targets = torch.cat([x["target"] for x in samples]).numpy()
    frames = np.concatenate(ds.clips)  # per-frame index of every sample frame
    np.testing.assert_array_equal(occluded, (ds.self_occluded | ds.box_occluded | ds.outside)[frames])
    assert ds.self_occluded.any() and ds.box_occluded.any()
    conf = inputs[..., 2]
    assert (conf >= 0).all() and (conf <= 1).all()
    assert (conf[occluded] <= 0.35).all()
    assert conf[~occluded].mean() > 0.7
    error = np.linalg.norm(inputs[..., :2] - targets[..., :2], axis=-1) * 500  # px (normalised * w / 2)
    assert 0.02 < occluded.mean() < 0.5
    assert np.median(error[occluded]) > 2 * np.median(error[~occluded])
    assert 1.0 < np.median(error[~occluded]) < 8.0  # "a few pixels"
    stats = ds.occlusion_stats()
    assert stats["occluded"] == pytest.approx((ds.self_occluded | ds.box_occluded | ds.outside).mean())
    assert stats["joint_frames"] == 17 * len(ds.self_occluded)


def test_exact_inputs_without_noise():
    ds = sv.SyntheticViewsDataset(
        clips=["walk"], azimuths_deg=(30,), heights_mm=(1600.0,), noise=None, occluders=None, perspective_target=True
    )
    sample = ds[0]
    torch.testing.assert_close(sample["input"][..., :2], sample["target"][..., :2])
    assert (sample["input"][..., 2] == 1).all()


# ----------------------------------------------------------------------------------------------
# Dataset contract, determinism, split


def test_sample_follows_clip_format(small_dataset):
    sample = small_dataset[0]
    assert sample["input"].shape == (27, 17, 3) and sample["input"].dtype == torch.float32
    assert sample["target"].shape == (27, 17, 3) and sample["target"].dtype == torch.float32
    assert sample["factor"].shape == (27,) and (sample["factor"] > 0).all()
    torch.testing.assert_close(sample["res"], torch.tensor([1000.0, 1000.0]))
    assert small_dataset.skeleton.left == (4, 5, 6, 11, 12, 13)  # flip lists for the trainer
    assert sample["frames"].dtype == torch.int64 and sample["frames"].shape == (27,)
    assert sample["occluded"].shape == (27, 17) and sample["occluded"].dtype == torch.bool
    assert sample["action"] in ("walk", "punch", "run") and sample["source"].startswith(sample["action"])
    assert (sample["target"][:, 0, 2] == 0).all()
    batch = torch.utils.data.default_collate([small_dataset[i] for i in range(4)])
    assert batch["input"].shape == (4, 27, 17, 3) and len(batch["action"]) == 4


def test_target_denormalises_to_camera_depths():
    ds = sv.SyntheticViewsDataset(clips=["punch"], azimuths_deg=(120,), heights_mm=(900.0,), with_camera_3d=True)
    sample = ds[1]
    mm = normalized_to_millimetres(sample["target"].double(), 1000, 1000, sample["factor"].double()[:, None])
    cam = sample["camera_3d"].double()
    torch.testing.assert_close(mm - mm[:, :1], cam - cam[:, :1], atol=0.05, rtol=0)


def test_windows_strides_and_short_clips(mocap):
    clips, _ = mocap
    one_camera = dict(azimuths_deg=(0,), heights_mm=(1600.0,))
    ds = sv.SyntheticViewsDataset(clips=["walk"], n_frames=27, stride=9, **one_camera)
    n = len(clips["walk"])
    starts = [int(ds[i]["frames"][0]) for i in range(len(ds))]
    expected = list(range(0, n - 27 + 1, 9))
    if expected[-1] != n - 27:
        expected.append(n - 27)  # tail="cover": one more window ends on the last frame
    assert starts == expected
    dropped = sv.SyntheticViewsDataset(clips=["walk"], n_frames=27, stride=9, tail="drop", **one_camera)
    assert [int(dropped[i]["frames"][0]) for i in range(len(dropped))] == list(range(0, n - 27 + 1, 9))
    short = sv.SyntheticViewsDataset(clips=["run"], n_frames=81, azimuths_deg=(0, 90), heights_mm=(1600.0,))
    assert len(short) == 2  # one clip per camera, resampled to 81 frames
    n_run = len(clips["run"])
    assert n_run < 81
    np.testing.assert_array_equal(short[0]["frames"].numpy(), np.floor(np.arange(81) * n_run / 81))


def test_deterministic_for_a_seed():
    kwargs = dict(clips=["kick", "walk"], n_frames=27, stride=13, azimuths_deg=(10, 150), heights_mm=(1200.0,))
    a, b = sv.SyntheticViewsDataset(seed=7, **kwargs), sv.SyntheticViewsDataset(seed=7, **kwargs)
    c = sv.SyntheticViewsDataset(seed=8, **kwargs)
    assert len(a) == len(b) == len(c)
    for i in range(len(a)):
        sa, sb = a[i], b[i]
        for key in ("input", "target", "factor", "frames", "occluded"):
            assert torch.equal(sa[key], sb[key]), key
    assert not all(torch.equal(a[i]["input"], c[i]["input"]) for i in range(len(a)))
    # A clip's data does not depend on which other clips are loaded.
    alone = sv.SyntheticViewsDataset(seed=7, **{**kwargs, "clips": ["walk"]})
    walk = [i for i in range(len(a)) if a[i]["action"] == "walk"]
    assert all(torch.equal(a[i]["input"], alone[k]["input"]) for k, i in enumerate(walk))


def test_split_is_by_clip():
    assert not set(sv.TRAIN_CLIPS) & set(sv.TEST_CLIPS)
    assert sorted(sv.TRAIN_CLIPS + sv.TEST_CLIPS) == sorted(sv.ALL_CLIPS)
    assert len(sv.TEST_CLIPS) == 3
    kwargs = dict(azimuths_deg=(0,), heights_mm=(1600.0,), occluders=None)
    train = sv.SyntheticViewsDataset("train", **kwargs)
    test = sv.SyntheticViewsDataset("test", **kwargs)
    train_actions = {train[i]["action"] for i in range(len(train))}
    test_actions = {test[i]["action"] for i in range(len(test))}
    assert train_actions == set(sv.TRAIN_CLIPS) and test_actions == set(sv.TEST_CLIPS)


def test_argument_errors_name_the_argument():
    with pytest.raises(ValueError, match="split must be one of"):
        sv.SyntheticViewsDataset("val")
    with pytest.raises(ValueError, match="n_frames must be a positive int"):
        sv.SyntheticViewsDataset(clips=["walk"], n_frames=0, azimuths_deg=(0,), heights_mm=(1600.0,))
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        sv.SyntheticViewsDataset(seed=-1)
    with pytest.raises(ValueError, match="clips must be a non-empty list of names"):
        sv.SyntheticViewsDataset(clips=["swim"])
    with pytest.raises(ValueError, match="joints must have shape"):
        sv.self_occlusion(np.zeros((17, 3)), np.zeros(3))


def test_self_occlusion_in_float32_agrees_with_float64():
    from repose_ext.data.augment import AugmentConfig, MotionBank, augmented_views
    from repose_ext.data.synthetic_views import TRAIN_CLIPS, load_mocap

    mocap, fps = load_mocap()
    out = augmented_views(MotionBank(mocap, TRAIN_CLIPS, fps), 16, 27, AugmentConfig(detector=None), (0,))
    cam = out["camera_3d"].reshape(-1, 17, 3)
    exact = sv.self_occlusion(cam, np.zeros(3))
    fast = sv.self_occlusion(cam, np.zeros(3), dtype=np.float32)
    assert 0.02 < exact.mean() < 0.5  # a real mix of hidden and visible joints
    assert (exact != fast).mean() < 1e-3
