"""End-to-end tests of repose_ext.data against independent computations, on tiny synthetic files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from data_factories import (
    make_h36m_motionbert,
    make_mpi_inf_3dhp_test,
    make_mpi_inf_3dhp_train,
    make_videopose3d_2d,
    make_videopose3d_3d,
    videopose3d_metadata,
    write_npz,
    write_pickle,
)
from repose_ext.data import (
    ClipDataset,
    DataFormatError,
    camera_to_2_5d,
    camera_to_world,
    denormalize_image_coordinates,
    flip_clip,
    flip_pose,
    h36m_camera,
    load_h36m_motionbert,
    load_mpi_inf_3dhp,
    load_videopose3d,
    normalize_image_coordinates,
    normalized_to_millimetres,
    random_flip,
    resample_indices,
    split_clips,
    world_to_camera,
)
from repose_ext.data import skeleton as sk
from repose_ext.data.camera import quaternion_rotate
from repose_ext.data.h36m_cameras import H36M_CAMERA_EXTRINSICS, H36M_CAMERA_IDS, H36M_CAMERA_INTRINSICS

SKELETONS = [sk.H36M_SKELETON, sk.MPI_INF_3DHP_SKELETON]


# ----------------------------------------------------------------------------------------------------------------
# Independent reference computations (written from the definitions, not from the code under test)
# ----------------------------------------------------------------------------------------------------------------
def rotation_matrix(q):
    """Rotation matrix of the unit quaternion q = (w, x, y, z) (textbook form)."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def normalise_px(px, w, h):
    """x/w*2-1, y/w*2-h/w, z/w*2 written out per channel."""
    out = np.array(px, dtype=np.float64)
    out[..., 0] = px[..., 0] * 2.0 / w - 1.0
    out[..., 1] = px[..., 1] * 2.0 / w - h / w
    if out.shape[-1] == 3:
        out[..., 2] = px[..., 2] * 2.0 / w
    return out


def expected_clip_starts(length, n, stride, cover=False):
    """Start frames of MotionBERT windows in one video (None = resampled short video)."""
    if length < n:
        return None
    starts = list(range(0, length - n + 1, stride))
    if cover and starts[-1] + n < length:
        starts.append(length - n)
    return starts


# ----------------------------------------------------------------------------------------------------------------
# Skeletons
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("skel", SKELETONS, ids=lambda s: s.name)
def test_skeleton_tree_limbs_and_flip_lists_are_consistent(skel):
    assert len(skel.joint_names) == len(skel.parents) == 17
    assert skel.parents[skel.root] == -1 and skel.parents.count(-1) == 1
    for j in range(17):  # every joint reaches the root
        k, steps = j, 0
        while k != skel.root:
            k, steps = skel.parents[k], steps + 1
            assert steps < 17
    edges = {tuple(sorted((p, c))) for c, p in enumerate(skel.parents) if p >= 0}
    assert {tuple(sorted(limb)) for limb in skel.limbs} == edges
    for l, r in zip(skel.left, skel.right):
        assert skel.joint_names[l].startswith("left_") and skel.joint_names[r].startswith("right_")
        assert skel.joint_names[l][5:] == skel.joint_names[r][6:]
    sided = [j for j, name in enumerate(skel.joint_names) if name.split("_")[0] in ("left", "right")]
    assert sorted(skel.left + skel.right) == sided
    perm = skel.flip_permutation
    assert [perm[p] for p in perm] == list(range(17))


def test_h36m_to_3dhp_map():
    m = sk.H36M_TO_MPI_INF_3DHP
    assert sorted(m) == list(range(17))
    assert [sk.MPI_INF_3DHP_TO_H36M[m[i]] for i in range(17)] == list(range(17))
    same_name = [i for i, n in enumerate(sk.H36M_JOINT_NAMES) if n not in ("nose", "thorax")]
    for i in same_name:
        assert sk.H36M_JOINT_NAMES[i] == sk.MPI_INF_3DHP_JOINT_NAMES[m[i]], i
    assert sk.MPI_INF_3DHP_JOINT_NAMES[m[sk.H36M_JOINT_NAMES.index("thorax")]] == "neck"
    assert sk.MPI_INF_3DHP_JOINT_NAMES[m[sk.H36M_JOINT_NAMES.index("nose")]] == "head"
    # The trees and the flip lists correspond through the map.
    for i, p in enumerate(sk.H36M_PARENTS):
        assert sk.MPI_INF_3DHP_PARENTS[m[i]] == (-1 if p < 0 else m[p])
    assert [m[j] for j in sk.H36M_LEFT] == list(sk.MPI_INF_3DHP_LEFT[3:] + sk.MPI_INF_3DHP_LEFT[:3])
    assert sk.MPI_INF_3DHP_ROOT == m[0] == 14


def test_h36m_32_to_17_selection():
    removed = [4, 5, 9, 10, 11, 16, 20, 21, 22, 23, 24, 28, 29, 30, 31]  # VideoPose3D's remove_joints
    assert list(sk.H36M_32_TO_17) == sorted(set(range(32)) - set(removed))


# ----------------------------------------------------------------------------------------------------------------
# Normalisation
# ----------------------------------------------------------------------------------------------------------------
def test_normalisation_known_values_and_inverse():
    w, h = 1000.0, 1002.0
    px = np.array([[0.0, 0.0, 0.0], [w, h, w / 2], [w / 2, h / 2, -w]])
    n = normalize_image_coordinates(px, w, h)
    np.testing.assert_allclose(n, [[-1, -h / w, 0], [1, h / w, 1], [0, 0, -2]], atol=1e-12)
    np.testing.assert_allclose(denormalize_image_coordinates(n, w, h), px, atol=1e-9)
    np.testing.assert_array_equal(px[1], [w, h, w / 2])  # input untouched
    # torch, per-frame resolutions broadcast over joints, 2D points
    rng = np.random.default_rng(0)
    pts = torch.tensor(rng.uniform(0, 2000, size=(5, 17, 2)))
    res = torch.tensor([[2048.0, 2048.0]] * 3 + [[1920.0, 1080.0]] * 2)
    wt, ht = res[:, 0, None], res[:, 1, None]
    n2 = normalize_image_coordinates(pts, wt, ht)
    torch.testing.assert_close(n2, torch.from_numpy(normalise_px(pts.numpy(), wt.numpy(), ht.numpy())))
    torch.testing.assert_close(denormalize_image_coordinates(n2, wt, ht), pts)


def test_normalized_to_millimetres_is_pixels_times_factor():
    rng = np.random.default_rng(1)
    px = rng.uniform(0, 1000, size=(2, 4, 17, 3))
    factor = rng.uniform(3, 6, size=(2, 4))
    mm = normalized_to_millimetres(normalise_px(px, 1000.0, 1002.0), 1000.0, 1002.0, factor[..., None])
    np.testing.assert_allclose(mm, px * factor[..., None, None], rtol=1e-10)
    with pytest.raises(ValueError, match=r"pose_n must have shape \(\.\.\., 3\)"):
        normalized_to_millimetres(np.zeros((17, 2)), 1.0, 1.0, 1.0)


# ----------------------------------------------------------------------------------------------------------------
# Cameras
# ----------------------------------------------------------------------------------------------------------------
def test_quaternion_rotation_matches_rotation_matrix_and_round_trip():
    rng = np.random.default_rng(2)
    for _ in range(5):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        v = rng.normal(size=(7, 3))
        np.testing.assert_allclose(quaternion_rotate(q, v), v @ rotation_matrix(q).T, atol=1e-12)
        t = rng.normal(size=3)
        cam = world_to_camera(v, q, t)
        np.testing.assert_allclose(cam, (v - t) @ rotation_matrix(q), atol=1e-12)  # R^T (X - t)
        np.testing.assert_allclose(camera_to_world(cam, q, t), v, atol=1e-12)


@pytest.mark.parametrize("subject", sorted(H36M_CAMERA_EXTRINSICS))
def test_h36m_camera_table_sees_the_capture_volume(subject):
    # A point 1 m above the world origin (centre of the H36M capture area) is 3.5-6.5 m in front of every
    # camera and projects near the image centre; world "up" points up in the image (camera -y).
    for index, cam_id in enumerate(H36M_CAMERA_IDS):
        cam = h36m_camera(subject, cam_id)
        assert cam.index == index and h36m_camera(subject, index) == cam
        p = world_to_camera(np.array([0.0, 0.0, 1.0]), cam.orientation, cam.translation_m)
        assert 3.5 < p[2] < 6.5
        (fx, fy), (cx, cy) = H36M_CAMERA_INTRINSICS[cam_id]["focal_length"], H36M_CAMERA_INTRINSICS[cam_id]["center"]
        u, v = cx + fx * p[0] / p[2], cy + fy * p[1] / p[2]
        assert 0.25 * cam.res[0] < u < 0.75 * cam.res[0] and 0.25 * cam.res[1] < v < 0.75 * cam.res[1]
        up = world_to_camera(np.array([0.0, 0.0, 2.0]), cam.orientation, cam.translation_m) - p
        assert up[1] < -0.9
        np.testing.assert_allclose(np.linalg.norm(cam.orientation), 1.0, atol=1e-12)
    with pytest.raises(KeyError, match="subject"):
        h36m_camera("S2", 0)


def test_camera_to_2_5d_projects_root_and_inverts_exactly():
    rng = np.random.default_rng(3)
    pts = rng.uniform(-800, 800, size=(6, 17, 3)) + [0, 0, 5000]
    f, c = 1146.0, (512.0, 510.0)
    pose, factor = camera_to_2_5d(pts, f, c)
    root = pts[:, 0]
    np.testing.assert_allclose(pose[:, 0, 0], c[0] + f * root[:, 0] / root[:, 2])  # pinhole projection of the root
    np.testing.assert_allclose(pose[:, 0, 1], c[1] + f * root[:, 1] / root[:, 2])
    np.testing.assert_array_equal(pose[:, 0, 2], 0.0)
    np.testing.assert_allclose(factor, root[:, 2] / f)
    mm = pose * factor[:, None, None]
    np.testing.assert_allclose(mm - mm[:, :1], pts - pts[:, :1], atol=1e-9)
    with pytest.raises(ValueError, match="in front of the camera"):
        camera_to_2_5d(pts * [1, 1, -1], f, c)


# ----------------------------------------------------------------------------------------------------------------
# Clip slicing
# ----------------------------------------------------------------------------------------------------------------
def test_split_clips_windows_and_tail_rule():
    sources = ["a"] * 9 + ["b"] * 3 + ["c"] * 10
    clips = split_clips(sources, 5, 2)
    assert clips.shape == (7, 5) and clips.dtype == np.int64
    np.testing.assert_array_equal(clips[:3], [range(0, 5), range(2, 7), range(4, 9)])
    short = clips[3]
    assert short.min() >= 9 and short.max() <= 11 and np.all(np.diff(short) >= 0)
    np.testing.assert_array_equal(clips[4:], [range(12, 17), range(14, 19), range(16, 21)])  # frame 21 dropped
    covered = split_clips(sources, 5, 2, tail="cover")
    assert covered.shape == (8, 5)  # "a" ends exactly; "c" gets a last window ending on frame 21
    np.testing.assert_array_equal(covered[-1], range(17, 22))
    assert set(covered.ravel()) == set(range(22))


def test_split_clips_short_last_video_is_resampled():
    clips = split_clips(["x"] * 6 + ["y"] * 2, 4, 4, rng=None)
    np.testing.assert_array_equal(clips, [[0, 1, 2, 3], [6, 6, 7, 7]])


@pytest.mark.parametrize("n,stride", [(243, 81), (243, 243), (27, 5), (1, 1)])
def test_split_clips_counts(n, stride):
    lengths = [243, 324, 500, 100, 1, 729, 244]
    sources = np.concatenate([np.full(L, f"video{k}") for k, L in enumerate(lengths)])
    for tail in ("drop", "cover"):
        clips = split_clips(sources, n, stride, tail=tail)
        expected = sum(1 if expected_clip_starts(L, n, stride, tail == "cover") is None
                       else len(expected_clip_starts(L, n, stride, tail == "cover")) for L in lengths)  # fmt: skip
        assert clips.shape == (expected, n)
        # every clip lies inside one video
        assert np.all(sources[clips] == sources[clips[:, :1]])
    if (n, stride) == (243, 81):
        assert len(split_clips(sources, n, stride)) == 1 + 2 + 4 + 1 + 1 + 7 + 1


def test_resample_indices():
    np.testing.assert_array_equal(resample_indices(3, 5, rng=None), [0, 0, 1, 1, 2])
    grid = np.linspace(0, 3, 5, endpoint=False)
    seen = set()
    for seed in range(20):
        r = resample_indices(3, 5, rng=seed)
        assert np.all(np.diff(r) >= 0) and r.min() >= 0 and r.max() <= 2
        assert np.all((r == np.floor(grid)) | (r == np.minimum(np.ceil(grid), 2)))
        seen.add(tuple(r))
        np.testing.assert_array_equal(r, resample_indices(3, 5, rng=seed))  # reproducible
    assert len(seen) > 1  # actually random
    long = resample_indices(100, 10, rng=0)  # shrinking: one index per grid cell
    assert np.all((long >= np.arange(0, 100, 10)) & (long < np.arange(10, 110, 10)))


def test_split_clips_errors():
    with pytest.raises(DataFormatError, match="'a' appears in 2 separate runs"):
        split_clips(["a", "a", "b", "a"], 2, 1)
    with pytest.raises(ValueError, match="stride must be a positive int; got 0"):
        split_clips(["a"] * 4, 2, 0)
    with pytest.raises(ValueError, match="tail must be one of"):
        split_clips(["a"] * 4, 2, 1, tail="pad")


# ----------------------------------------------------------------------------------------------------------------
# Flipping
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("skel", SKELETONS, ids=lambda s: s.name)
def test_flip_twice_is_identity_and_moves_joints(skel):
    x = torch.randn(2, 5, 17, 3, dtype=torch.float64, requires_grad=True)
    y = flip_pose(x, skel.left, skel.right)
    torch.testing.assert_close(flip_pose(y, skel.left, skel.right), x)
    l, r = skel.left[0], skel.right[0]
    torch.testing.assert_close(y[..., r, 0], -x[..., l, 0])
    torch.testing.assert_close(y[..., l, 1:], x[..., r, 1:])
    torch.testing.assert_close(y[..., skel.root, :], x[..., skel.root, :] * torch.tensor([-1.0, 1, 1], dtype=x.dtype))
    y.sum().backward()
    assert x.grad is not None
    a = np.random.default_rng(0).normal(size=(4, 17, 3)).astype(np.float32)
    a_copy = a.copy()
    b = flip_pose(a, skel.left, skel.right)
    assert b.dtype == np.float32
    np.testing.assert_array_equal(a, a_copy)
    np.testing.assert_array_equal(flip_pose(b, skel.left, skel.right), a)


def test_flip_equals_mirroring_the_image():
    # Mirror the image (x_px -> w - x_px) and relabel left/right: in normalised coordinates that is flip_pose.
    rng = np.random.default_rng(4)
    w, h = 1000.0, 1002.0
    px = rng.uniform(0, 1000, size=(3, 17, 3))
    mirrored = px.copy()
    mirrored[..., 0] = w - px[..., 0]
    perm = list(range(17))
    for l, r in zip(sk.H36M_LEFT, sk.H36M_RIGHT):
        perm[l], perm[r] = r, l
    mirrored = mirrored[:, perm]
    np.testing.assert_allclose(
        normalise_px(mirrored, w, h), flip_pose(normalise_px(px, w, h), sk.H36M_LEFT, sk.H36M_RIGHT), atol=1e-12
    )


def test_flip_clip_keeps_confidence_and_random_flip():
    inp, tgt = torch.randn(4, 3, 17, 3), torch.randn(4, 3, 17, 3)
    fi, ft = flip_clip(inp, tgt, sk.H36M_LEFT, sk.H36M_RIGHT)
    torch.testing.assert_close(fi[..., 1, 2], inp[..., 4, 2])  # confidence moves with its joint
    torch.testing.assert_close(ft[..., 1, 2], tgt[..., 4, 2])  # depth unchanged
    for p in (0.0, 1.0):
        ri, rt, mask = random_flip(inp, tgt, sk.H36M_LEFT, sk.H36M_RIGHT, p=p)
        assert mask.dtype == torch.bool and bool(mask.all()) == (p == 1.0) and bool(mask.any()) == (p == 1.0)
        torch.testing.assert_close(ri, fi if p else inp)
        torch.testing.assert_close(rt, ft if p else tgt)
    ri, rt, mask = random_flip(inp, tgt, sk.H36M_LEFT, sk.H36M_RIGHT, generator=torch.Generator().manual_seed(1))
    for b in range(4):
        torch.testing.assert_close(ri[b], fi[b] if mask[b] else inp[b])
    with pytest.raises(ValueError, match="left and right must have the same length"):
        flip_pose(inp, [1, 2], [3])


# ----------------------------------------------------------------------------------------------------------------
# MotionBERT H36M pickle
# ----------------------------------------------------------------------------------------------------------------
TRAIN_VIDEOS = [
    ("s_01_act_02_subact_01_ca_01", "54138969", 20, "Directions"),
    ("s_01_act_02_subact_01_ca_02", "55011271", 7, "Directions"),
    ("s_05_act_03_subact_02_ca_04", "60457274", 13, "Discussion"),
]
TEST_VIDEOS = [
    ("s_09_act_02_subact_01_ca_03", "58860488", 17, "Directions"),
    ("s_11_act_04_subact_02_ca_01", "54138969", 9, "Eating"),
]
RES = {"54138969": (1000, 1002), "55011271": (1000, 1000), "58860488": (1000, 1000), "60457274": (1000, 1002)}


@pytest.fixture(scope="module")
def h36m_pickle(tmp_path_factory):
    data = make_h36m_motionbert(TRAIN_VIDEOS, TEST_VIDEOS, seed=0)
    path = tmp_path_factory.mktemp("h36m") / "h36m_sh_conf_cam_source_final.pkl"
    write_pickle(data, path)
    return path, data


def _video_offsets(videos):
    starts = np.cumsum([0] + [v[2] for v in videos])
    return {v[0]: (int(s), v) for s, v in zip(starts, videos)}


@pytest.mark.parametrize("split", ["train", "test"])
def test_h36m_pickle_end_to_end(h36m_pickle, split):
    path, data = h36m_pickle
    videos = TRAIN_VIDEOS if split == "train" else TEST_VIDEOS
    n, stride = 8, 4
    ds = load_h36m_motionbert(path, split, n_frames=n, stride=stride)
    assert isinstance(ds, ClipDataset) and ds.skeleton is sk.H36M_SKELETON
    expected = sum(1 if L < n else len(range(0, L - n + 1, stride)) for _, _, L, _ in videos)
    assert len(ds) == expected
    raw = data[split]
    offsets = _video_offsets(videos)
    for i in range(len(ds)):
        s = ds[i]
        start, (source, cam, length, action) = offsets[s["source"]]
        assert s["action"] == action
        frames = s["frames"].numpy()
        assert s["frames"].dtype == torch.int64 and frames.min() >= 0 and frames.max() < length
        g = start + frames
        w, h = RES[cam]
        assert s["res"].tolist() == [w, h]
        for key in ("input", "target"):
            assert s[key].shape == (n, 17, 3) and s[key].dtype == torch.float32
        np.testing.assert_allclose(s["input"][..., :2], normalise_px(raw["joint_2d"][g], w, h), atol=1e-5)
        np.testing.assert_allclose(s["input"][..., 2], raw["confidence"][g], atol=0)
        np.testing.assert_allclose(s["target"], normalise_px(raw["joint3d_image"][g], w, h), atol=1e-5)
        np.testing.assert_array_equal(s["factor"], raw["2.5d_factor"][g])
        mm = normalized_to_millimetres(s["target"].double().numpy(), w, h, s["factor"].double().numpy()[:, None])
        np.testing.assert_allclose(mm, raw["joints_2.5d_image"][g], rtol=1e-5, atol=1e-3)
    # the short video (7 frames) is one resampled clip
    short = [s for s in ds if s["source"].endswith("ca_02")]
    assert split == "test" or (len(short) == 1 and short[0]["frames"].max() == 6)


def test_h36m_pickle_default_clip_counts():
    videos_train = [
        ("s_01_act_02_subact_01_ca_01", "54138969", 600, "A"),
        ("s_01_act_02_subact_01_ca_02", "55011271", 250, "A"),
        ("s_01_act_03_subact_01_ca_01", "54138969", 100, "B"),
    ]
    data = make_h36m_motionbert(videos_train, videos_train, seed=1)
    # 600: starts 0, 81, ..., 324 (5); 250: 1; 100: 1 (resampled)
    assert len(load_h36m_motionbert(data, "train")) == 7
    # stride 243: 600 -> 2 (frames 486..599 dropped); 250 -> 1; 100 -> 1
    test = load_h36m_motionbert(data, "test")
    assert len(test) == 4 and test[0]["input"].shape == (243, 17, 3)
    # cover: 600 -> 3 (one window ends on frame 599); 250 -> 2; 100 -> 1
    assert len(load_h36m_motionbert(data, "test", tail="cover")) == 6


def test_h36m_pickle_options(h36m_pickle):
    path, data = h36m_pickle
    a = load_h36m_motionbert(path, "train", n_frames=8, stride=4)
    b = load_h36m_motionbert(make_h36m_motionbert(TRAIN_VIDEOS, TEST_VIDEOS, seed=0, confidence_3d=True), "train",
                             n_frames=8, stride=4)  # fmt: skip
    for i in range(len(a)):
        for key in ("input", "target", "factor", "frames"):
            torch.testing.assert_close(a[i][key], b[i][key])
    gt = load_h36m_motionbert(data, "train", n_frames=8, stride=4, use_gt_2d=True)
    torch.testing.assert_close(gt[0]["input"][..., :2], gt[0]["target"][..., :2])
    assert torch.all(gt[0]["input"][..., 2] == 1.0)
    sub = load_h36m_motionbert(data, "train", n_frames=4, stride=4, sample_stride=2)
    first = sub[0]
    assert first["frames"].tolist() == [0, 2, 4, 6]
    np.testing.assert_allclose(first["factor"], data["train"]["2.5d_factor"][[0, 2, 4, 6]])
    batch = next(iter(DataLoader(a, batch_size=3)))
    assert batch["input"].shape == (3, 8, 17, 3) and batch["res"].shape == (3, 2) and len(batch["source"]) == 3


def test_h36m_pickle_errors(h36m_pickle, tmp_path):
    _, data = h36m_pickle
    bad = {"train": dict(data["train"]), "test": data["test"]}
    del bad["train"]["joint_2d"]
    write_pickle(bad, tmp_path / "missing.pkl")
    with pytest.raises(DataFormatError, match=r"\['train'\] is missing key 'joint_2d'"):
        load_h36m_motionbert(tmp_path / "missing.pkl", "train")
    bad = {"train": dict(data["train"]), "test": data["test"]}
    bad["train"]["joint3d_image"] = bad["train"]["joint3d_image"][:, :16]
    with pytest.raises(DataFormatError, match=r"\['joint3d_image'\] must have shape \(40, 17, 3\); got \(40, 16, 3\)"):
        load_h36m_motionbert(bad, "train")
    bad["train"] = dict(data["train"], confidence=data["train"]["confidence"][:-1])
    with pytest.raises(DataFormatError, match=r"'confidence'\] must have shape \(N, 17\) or \(N, 17, 1\)"):
        load_h36m_motionbert(bad, "train")
    bad["train"] = dict(data["train"], camera_name=np.full(40, "12345678"))
    with pytest.raises(DataFormatError, match="'camera_name'\\] holds '12345678'"):
        load_h36m_motionbert(bad, "train")
    with pytest.raises(DataFormatError, match="missing key 'test'"):
        load_h36m_motionbert({"train": data["train"]}, "train")
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        load_h36m_motionbert(data, "val")


# ----------------------------------------------------------------------------------------------------------------
# VideoPose3D npz
# ----------------------------------------------------------------------------------------------------------------
VP3D_LENGTHS = {
    "S1": {"Directions": 11, "Directions 1": 6},
    "S5": {"Eating": 4},
    "S6": {"WalkDog": 3},  # shorter than a clip: resampled
    "S7": {"Sitting 1": 5},
    "S8": {"Photo": 4},
    "S9": {"Walking": 9},
    "S11": {"Photo": 5},
}


@pytest.fixture(scope="module")
def vp3d_files(tmp_path_factory):
    pos3d = make_videopose3d_3d(VP3D_LENGTHS, seed=0)
    pos2d = make_videopose3d_2d(pos3d, extra_frames=(0, 1, 2, 3), seed=1)
    root = tmp_path_factory.mktemp("vp3d")
    write_npz(root / "data_3d_h36m.npz", positions_3d=pos3d)
    write_npz(root / "data_2d_h36m_cpn_ft_h36m_dbb.npz", positions_2d=pos2d, metadata=videopose3d_metadata())
    return root / "data_3d_h36m.npz", root / "data_2d_h36m_cpn_ft_h36m_dbb.npz", pos3d, pos2d


@pytest.mark.parametrize("split", ["train", "test"])
def test_videopose3d_end_to_end(vp3d_files, split):
    path3d, path2d, pos3d, pos2d = vp3d_files
    n, stride = 4, 3
    ds = load_videopose3d(path3d, path2d, split, n_frames=n, stride=stride)
    subjects = ["S1", "S5", "S6", "S7", "S8"] if split == "train" else ["S9", "S11"]
    cover = split == "test"
    starts = [expected_clip_starts(L, n, stride, cover) for s in subjects for L in VP3D_LENGTHS[s].values()]
    expected = sum(4 * (1 if st is None else len(st)) for st in starts)
    assert len(ds) == expected and ds.skeleton is sk.H36M_SKELETON
    covered = set()
    for i in range(len(ds)):
        s = ds[i]
        subject, action, cam_id = s["source"].split("/")
        assert subject in subjects and s["action"] == action.split(" ")[0]
        c = H36M_CAMERA_IDS.index(cam_id)
        frames = s["frames"].numpy()
        covered.update((s["source"], int(f)) for f in frames)
        w, h = RES[cam_id]
        assert s["res"].tolist() == [w, h]
        kp = pos2d[subject][action][c][frames]
        np.testing.assert_allclose(s["input"][..., :2], normalise_px(kp, w, h), atol=1e-5)
        assert torch.all(s["input"][..., 2] == 1.0)
        # independent camera-space joints in mm: R^T (X - t), translation mm
        q, t_mm = H36M_CAMERA_EXTRINSICS[subject][c]
        world_mm = pos3d[subject][action][frames][:, list(sk.H36M_32_TO_17)].astype(np.float64) * 1000.0
        cam_mm = (world_mm - np.asarray(t_mm)) @ rotation_matrix(q)
        (fx, fy), (cx, cy) = H36M_CAMERA_INTRINSICS[cam_id]["focal_length"], H36M_CAMERA_INTRINSICS[cam_id]["center"]
        f = (fx + fy) / 2
        root = cam_mm[:, 0]
        target_px = denormalize_image_coordinates(s["target"].double().numpy(), w, h)
        np.testing.assert_allclose(target_px[:, 0, 0], cx + f * root[:, 0] / root[:, 2], atol=2e-3)
        np.testing.assert_allclose(target_px[:, 0, 1], cy + f * root[:, 1] / root[:, 2], atol=2e-3)
        np.testing.assert_allclose(s["factor"], root[:, 2] / f, rtol=1e-5)
        mm = normalized_to_millimetres(s["target"].double().numpy(), w, h, s["factor"].double().numpy()[:, None])
        np.testing.assert_allclose(mm - mm[:, :1], cam_mm - cam_mm[:, :1], atol=0.05)  # float32 storage
        np.testing.assert_allclose(s["target"][:, 0, 2], 0.0, atol=1e-7)
    if cover:
        assert covered == {(f"{s}/{a}/{c}", k) for s in subjects for a, L in VP3D_LENGTHS[s].items()
                           for c in H36M_CAMERA_IDS for k in range(L)}  # fmt: skip


def test_videopose3d_errors(vp3d_files, tmp_path):
    _, path2d, pos3d, pos2d = vp3d_files
    write_npz(tmp_path / "wrong.npz", positions=pos3d)
    with pytest.raises(DataFormatError, match="missing key 'positions_3d'"):
        load_videopose3d(tmp_path / "wrong.npz", path2d, "train")
    bad3d = {s: dict(a) for s, a in pos3d.items()}
    bad3d["S1"]["Directions"] = bad3d["S1"]["Directions"][:, :31]
    with pytest.raises(DataFormatError, match=r"positions_3d\['S1'\]\['Directions'\] must have shape \(T, 32, 3\)"):
        load_videopose3d({"positions_3d": bad3d}, path2d, "train")
    short2d = {s: dict(a) for s, a in pos2d.items()}
    short2d["S1"]["Directions 1"] = [k[:5] for k in short2d["S1"]["Directions 1"]]
    with pytest.raises(DataFormatError, match=r"\['Directions 1'\]\[0\] must have at least the 6 frames"):
        load_videopose3d({"positions_3d": pos3d}, {"positions_2d": short2d}, "train")
    missing = {s: dict(a) for s, a in pos2d.items()}
    del missing["S9"]["Walking"]
    with pytest.raises(DataFormatError, match=r"positions_2d\['S9'\] is missing action 'Walking'"):
        load_videopose3d({"positions_3d": pos3d}, {"positions_2d": missing}, "test")
    meta = dict(videopose3d_metadata(), keypoints_symmetry=[[1, 2, 3], [4, 5, 6]])
    with pytest.raises(DataFormatError, match="keypoints_symmetry"):
        load_videopose3d({"positions_3d": pos3d}, {"positions_2d": pos2d, "metadata": meta}, "train")
    with pytest.raises(DataFormatError, match="missing subject 'S2'"):
        load_videopose3d({"positions_3d": pos3d}, {"positions_2d": pos2d}, "train", subjects=["S2"])


# ----------------------------------------------------------------------------------------------------------------
# MPI-INF-3DHP npz
# ----------------------------------------------------------------------------------------------------------------
MPI_TRAIN = {"S1 Seq1": {"0": 10, "2": 12}, "S2 Seq2": {"4": 3}}
MPI_TEST = {"TS1": 12, "TS5": 9}


@pytest.fixture(scope="module")
def mpi_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("mpi")
    train, test = make_mpi_inf_3dhp_train(MPI_TRAIN, seed=0), make_mpi_inf_3dhp_test(MPI_TEST, seed=1)
    write_npz(root / "data_train_3dhp.npz", data=train)
    write_npz(root / "data_test_3dhp.npz", data=test)
    return root / "data_train_3dhp.npz", root / "data_test_3dhp.npz", train, test


def _check_mpi_sample(s, kp, pos, w, h):
    frames = s["frames"].numpy()
    assert s["res"].tolist() == [w, h]
    np.testing.assert_allclose(s["input"][..., :2], normalise_px(kp[frames], w, h), atol=1e-5)
    assert torch.all(s["input"][..., 2] == 1.0) and torch.all(s["factor"] == 1.0)
    rel = pos[frames].astype(np.float64) - pos[frames][:, 14:15]
    np.testing.assert_allclose(s["target"], rel * 2.0 / w, atol=1e-6)
    mm = normalized_to_millimetres(s["target"].double().numpy(), w, h, 1.0)
    np.testing.assert_allclose(mm - mm[:, 14:15], rel, atol=1e-3)


def test_mpi_inf_3dhp_train(mpi_files):
    path, _, train, _ = mpi_files
    n, stride = 4, 3
    ds = load_mpi_inf_3dhp(path, "train", n_frames=n, stride=stride)
    assert ds.skeleton is sk.MPI_INF_3DHP_SKELETON and ds.skeleton.root == 14
    assert len(ds) == len(range(0, 7, 3)) + len(range(0, 9, 3)) + 1
    assert [ds[i]["source"] for i in (0, 3, 6)] == ["S1 Seq1 cam0", "S1 Seq1 cam2", "S2 Seq2 cam4"]
    for i in range(len(ds)):
        s = ds[i]
        seq, cam = s["source"].rsplit(" cam", 1)
        assert s["action"] == seq and "valid" not in s
        _check_mpi_sample(s, train[seq][0][cam]["data_2d"], train[seq][0][cam]["data_3d"], 2048, 2048)


def test_mpi_inf_3dhp_test_split_valid_and_resolutions(mpi_files):
    _, path, _, test = mpi_files
    ds = load_mpi_inf_3dhp(path, "test", n_frames=5, stride=5)
    assert len(ds) == 3 + 2  # TS1: 0, 5, +7 (cover); TS5: 0, +4 (cover)
    covered = set()
    for s in ds:
        seq = s["source"]
        w, h = (1920, 1080) if seq == "TS5" else (2048, 2048)
        _check_mpi_sample(s, test[seq]["data_2d"], test[seq]["data_3d"], w, h)
        assert s["valid"].dtype == torch.bool
        np.testing.assert_array_equal(s["valid"], test[seq]["valid"][s["frames"].numpy()] != 0)
        covered.update((seq, int(f)) for f in s["frames"])
    assert covered == {(q, k) for q, L in MPI_TEST.items() for k in range(L)}


def test_mpi_inf_3dhp_h36m_order(mpi_files):
    path, _, train, _ = mpi_files
    native = load_mpi_inf_3dhp(path, "train", n_frames=4, stride=3)
    h36m = load_mpi_inf_3dhp(path, "train", n_frames=4, stride=3, joint_order="h36m")
    assert h36m.skeleton is sk.H36M_SKELETON
    a, b = native[0], h36m[0]
    torch.testing.assert_close(b["target"][:, 0], torch.zeros(4, 3))  # pelvis first, root-relative
    for name in ("head_top", "left_wrist", "right_ankle"):
        torch.testing.assert_close(
            b["target"][:, sk.H36M_JOINT_NAMES.index(name)], a["target"][:, sk.MPI_INF_3DHP_JOINT_NAMES.index(name)]
        )
    flipped = flip_pose(b["target"], h36m.skeleton.left, h36m.skeleton.right)
    torch.testing.assert_close(flipped[:, sk.H36M_JOINT_NAMES.index("left_wrist"), 1],
                               a["target"][:, sk.MPI_INF_3DHP_JOINT_NAMES.index("right_wrist"), 1])  # fmt: skip


def test_mpi_inf_3dhp_errors(mpi_files):
    train_path, test_path, train, test = mpi_files
    bad = {k: dict(v) for k, v in test.items()}
    del bad["TS1"]["valid"]
    with pytest.raises(DataFormatError, match=r"data\['TS1'\] is missing key 'valid'"):
        load_mpi_inf_3dhp({"data": bad}, "test")
    bad = {k: dict(v) for k, v in test.items()}
    bad["TS5"]["data_3d"] = bad["TS5"]["data_3d"][:, :, :2]
    with pytest.raises(DataFormatError, match=r"data\['TS5'\]\['data_3d'\] must have shape \(F, 17, 3\)"):
        load_mpi_inf_3dhp({"data": bad}, "test")
    bad = {k: dict(v) for k, v in test.items()}
    bad["TS1"]["valid"] = bad["TS1"]["valid"][:-1]
    with pytest.raises(DataFormatError, match=r"'valid'\] must have shape \(T,\) with the T = 12 frames"):
        load_mpi_inf_3dhp({"data": bad}, "test")
    with pytest.raises(DataFormatError, match="was a train file passed"):
        load_mpi_inf_3dhp(train_path, "test")
    bad_train = dict(train, **{"S1 Seq1": train["S1 Seq1"][0]})
    with pytest.raises(DataFormatError, match=r"data\['S1 Seq1'\] must be a list \[cam_dict, fps\]"):
        load_mpi_inf_3dhp({"data": bad_train}, "train")
    with pytest.raises(DataFormatError, match="missing key 'data'"):
        np.savez(test_path.parent / "empty.npz", other=np.zeros(1))
        load_mpi_inf_3dhp(test_path.parent / "empty.npz", "test")
    nan = {k: dict(v) for k, v in test.items()}
    nan["TS1"]["data_3d"] = nan["TS1"]["data_3d"].copy()
    invalid = int(np.flatnonzero(nan["TS1"]["valid"] == 0)[0])
    nan["TS1"]["data_3d"][invalid] = np.nan
    ds = load_mpi_inf_3dhp({"data": nan}, "test", n_frames=5, stride=5)
    assert all(torch.isfinite(s["target"]).all() for s in ds)
    nan["TS1"]["valid"] = np.ones(12)
    with pytest.raises(DataFormatError, match="non-finite"):
        load_mpi_inf_3dhp({"data": nan}, "test")


def test_clip_dataset_checks_inputs():
    n = 6
    args = dict(n_frames=3, stride=3)
    good = (np.zeros((n, 17, 3)), np.zeros((n, 17, 3)), np.ones(n), np.full((n, 2), 1000.0), ["v"] * n, ["a"] * n)
    ds = ClipDataset(*good, **args, occluded=np.zeros((n, 17), bool))
    assert len(ds) == 2 and ds[1]["occluded"].shape == (3, 17) and ds[-1]["frames"].tolist() == [3, 4, 5]
    with pytest.raises(DataFormatError, match=r"targets must have shape \(6, 17, 3\)"):
        ClipDataset(good[0], np.zeros((n, 16, 3)), *good[2:], **args)
    with pytest.raises(DataFormatError, match="factors must be finite and positive"):
        ClipDataset(*good[:2], np.zeros(n), *good[3:], **args)
    res = np.full((n, 2), 1000.0)
    res[4] = (2048, 2048)
    with pytest.raises(DataFormatError, match="res must be constant within a video"):
        ClipDataset(*good[:3], res, *good[4:], **args)
    with pytest.raises(IndexError):
        ds[2]


class _Evil:
    """Unpickling this would create a file (a stand-in for running any code)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_dataset_files_are_unpickled_with_an_allow_list(tmp_path):
    import pickle

    from repose_ext.data import load_mpi_inf_3dhp, read_h36m_motionbert, read_videopose3d
    from repose_ext.data.errors import DataFormatError
    from repose_ext.data.safe_pickle import UnsafePickleError, load_npz, load_pickle

    marker = tmp_path / "ran"
    evil = {"train": _Evil(str(marker)), "test": {}}
    pkl = tmp_path / "evil.pkl"
    pkl.write_bytes(pickle.dumps(evil))
    with pytest.raises(UnsafePickleError, match=r"evil.pkl: refused to unpickle builtins.open|io.open"):
        read_h36m_motionbert(str(pkl))
    npz = tmp_path / "evil.npz"
    np.savez(npz, positions_3d=np.array(evil, dtype=object), data=np.array(evil, dtype=object))
    with pytest.raises(UnsafePickleError, match="refused to unpickle"):
        read_videopose3d(str(npz), str(npz))
    with pytest.raises(UnsafePickleError, match="refused to unpickle"):
        load_mpi_inf_3dhp(str(npz), "test")
    assert not marker.exists()  # nothing ran
    # what the real files hold still loads: dicts of arrays (also structured and scalar values)
    good = {"train": {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "s": np.array(["x", "y"]),
                      "n": np.float64(2.5), "l": [1, (2, 3)]}}
    pkl.write_bytes(pickle.dumps(good))
    loaded = load_pickle(str(pkl))
    np.testing.assert_array_equal(loaded["train"]["a"], good["train"]["a"])
    assert loaded["train"]["l"] == [1, (2, 3)] and loaded["train"]["n"] == 2.5
    np.savez(npz, data=np.array(good, dtype=object), plain=np.ones(3))
    loaded = load_npz(str(npz))
    np.testing.assert_array_equal(loaded["data"].item()["train"]["s"], good["train"]["s"])
    np.testing.assert_array_equal(loaded["plain"], np.ones(3))
    npz.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataFormatError, match="not a readable npz file"):
        load_npz(str(npz))
