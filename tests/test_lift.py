"""Lifting detector output: formats and joint conversion, readers of every file type, tracking and the main
subject, frame rates, outputs, the Python API and the CLI's handling of bad input."""

import json
import os
import re

import numpy as np
import pytest
import torch

import repose_ext
from repose_ext import lift
from repose_ext.data.synthetic_views import load_mocap
from repose_ext.keypoints.formats import FORMATS, NUM_KEYPOINTS, conversion_matrix, from_h36m17, to_h36m17
from repose_ext.keypoints.readers import KeypointInputError, read_detections
from repose_ext.keypoints.tracking import select_tracks, track_series
from repose_ext.lifter import Lifter
from repose_ext.models import build_model
from repose_ext.models.checkpoint import save_checkpoint

TINY_TCN = {"preset": "tcn81_cpu", "channels": 16, "filter_widths": [3, 3]}
WIDTH, HEIGHT = 1920, 1080


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    config = {"model": TINY_TCN, "data": {"dataset": "mocap_augmented", "n_frames": 27}}
    path = tmp_path_factory.mktemp("ckpt") / "tcn.pt"
    save_checkpoint(path, build_model(TINY_TCN), config=config)
    return str(path)


@pytest.fixture(scope="module")
def lifter(checkpoint):
    return Lifter(checkpoint)


# ---------------------------------------------------------------------------------------------------------------
# A filmed scene: the subject walks on the spot in the middle of the image; a smaller bystander crosses it.

def project(world, distance, shift_px):
    """Pinhole camera 5 m (``distance``) in front, 1 m high, looking along +x; (T, 17, 3) mm -> (T, 17, 2) px."""
    depth = world[..., 0] + distance
    u = 1000.0 * world[..., 1] / depth + WIDTH / 2 + shift_px[:, None]
    v = -1000.0 * (world[..., 2] - 1000.0) / depth + HEIGHT / 2
    return np.stack([u, v], -1)


def h36m_to(fmt, h):
    """Detector keypoints of ``fmt`` for H36M-17 pixel joints ``h`` (T, 17, 2)."""
    return from_h36m17(h, fmt)


@pytest.fixture(scope="module")
def scene():
    """60 frames: the subject (large, central, every frame except 20-24) and a bystander (smaller, farther) who
    walks from the left edge to the right edge through the subject between frames 0 and 59."""
    clips, _ = load_mocap()
    walk = clips["walk"][:60].copy()
    walk[..., :2] -= walk[:, :1, :2]  # walk on the spot
    subject = project(walk, 5000.0, np.zeros(60))
    other = clips["dance_b"][:60].copy()
    other[..., :2] -= other[:, :1, :2]
    bystander = project(other, 8000.0, np.linspace(-800, 800, 60))
    present = np.ones(60, dtype=bool)
    present[20:25] = False
    return {"subject": subject, "bystander": bystander, "present": present}


def results_rows(scene, fmt, image_id):
    rows = []
    for t in range(60):
        people = [("bystander", scene["bystander"][t])]
        if scene["present"][t]:
            people.append(("subject", scene["subject"][t]))
        for who, h in people[::-1] if t % 2 else people:  # detection order within a frame says nothing
            kp = h36m_to(fmt, h[None])[0]
            flat = np.concatenate([kp, np.full((len(kp), 1), 0.9)], 1).reshape(-1)
            rows.append({"image_id": image_id(t), "category_id": 1, "keypoints": flat.round(3).tolist(),
                         "score": 0.95, "who": who})
    return rows


def write_coco(path, scene, fmt="coco17"):
    rows = results_rows(scene, fmt, lambda t: 1000 + t)
    rng = np.random.default_rng(0)
    rows = [rows[i] for i in rng.permutation(len(rows))]  # exporters need not write frames in order
    path.write_text(json.dumps([{k: v for k, v in r.items() if k != "who"} for r in rows]))
    return str(path)


def write_alphapose(path, scene):
    rows = results_rows(scene, "halpe26", lambda t: f"{t}.jpg")  # "10.jpg" sorts after "9.jpg"
    path.write_text(json.dumps([{**{k: v for k, v in r.items() if k != "who"}, "idx": i % 3}
                                for i, r in enumerate(rows)]))
    return str(path)


def write_openpose(folder, scene, fmt="body25"):
    folder.mkdir()
    for t in range(60):
        people = [scene["bystander"][t]] + ([scene["subject"][t]] if scene["present"][t] else [])
        out = []
        for h in people:
            kp = h36m_to(fmt, h[None])[0]
            flat = np.concatenate([kp, np.full((len(kp), 1), 0.8)], 1)
            flat[-1] = 0.0  # OpenPose writes a missing joint as 0, 0, 0
            out.append({"person_id": [-1], "pose_keypoints_2d": flat.reshape(-1).round(3).tolist()})
        (folder / f"clip_{t:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": out}))
    return str(folder)


# ---------------------------------------------------------------------------------------------------------------
# Formats

def test_every_format_converts_to_the_same_h36m_limbs(scene):
    h = scene["subject"]
    for fmt in FORMATS:
        w = conversion_matrix(fmt)
        np.testing.assert_allclose(w.sum(1), 1.0)  # every H36M joint is a weighted mean of source joints
        kp, sc = to_h36m17(h36m_to(fmt, h), np.ones((60, NUM_KEYPOINTS[fmt])), fmt)
        limbs = [1, 2, 3, 4, 5, 6, 9, 11, 12, 13, 14, 15, 16]
        np.testing.assert_allclose(kp[:, limbs], h[:, limbs], atol=1e-9)
        assert (sc == 1).all()
    coco, _ = to_h36m17(h36m_to("coco17", h), np.ones((60, 17)), "coco17")
    np.testing.assert_allclose(coco[:, 0], (h[:, 1] + h[:, 4]) / 2)  # pelvis: mid-hip
    np.testing.assert_allclose(coco[:, 8], (h[:, 11] + h[:, 14]) / 2)  # thorax: mid-shoulder
    np.testing.assert_allclose(coco[:, 7], (coco[:, 0] + coco[:, 8]) / 2)  # spine between them
    np.testing.assert_allclose(coco[:, 10], h[:, 10], atol=1e-9)  # head top: mid-eye (the fixture's eyes)
    halpe, _ = to_h36m17(h36m_to("halpe26", h), np.ones((60, 26)), "halpe26")
    np.testing.assert_allclose(halpe[:, [0, 8, 10]], h[:, [0, 8, 10]], atol=1e-9)  # hip, neck, head given


def test_a_converted_joint_is_missing_when_a_source_is():
    kp = np.zeros((1, 17, 2))
    sc = np.ones((1, 17))
    sc[0, 11] = 0.0  # left hip missing
    _, out = to_h36m17(kp, sc, "coco17")
    assert out[0, 0] == 0 and out[0, 4] == 0 and out[0, 7] == 0  # pelvis, left hip, spine
    assert out[0, 1] == 1


# ---------------------------------------------------------------------------------------------------------------
# Readers, tracking, frames

def test_readers_of_every_file_type(tmp_path, scene):
    coco = read_detections(write_coco(tmp_path / "coco.json", scene))
    assert coco.format == "coco17" and list(coco.frame_ids) == list(range(1000, 1060))
    assert len(coco.frame) == 60 + 55 and (np.diff(coco.frame) >= 0).all()
    alpha = read_detections(write_alphapose(tmp_path / "ap.json", scene))
    assert alpha.format == "halpe26" and list(alpha.frame_ids[:12]) == [f"{t}.jpg" for t in range(12)]
    op = read_detections(write_openpose(tmp_path / "op", scene))
    assert op.format == "body25" and len(op.frame_ids) == 60 and (op.scores[:, -1] == 0).all()
    op18 = read_detections(write_openpose(tmp_path / "op18", scene, "coco18"))
    assert op18.format == "coco18"
    np.savez(tmp_path / "a.npz", keypoints=h36m_to("halpe26", scene["subject"]), width=WIDTH, height=HEIGHT, fps=25)
    arr = read_detections(str(tmp_path / "a.npz"))
    assert arr.format == "halpe26" and arr.width == WIDTH and arr.fps == 25 and arr.single_person
    np.save(tmp_path / "a.npy", np.concatenate([scene["subject"], np.ones((60, 17, 1))], -1))
    with pytest.raises(KeypointInputError, match="could be any of .*h36m17.*coco17.*--format"):
        read_detections(str(tmp_path / "a.npy"))
    assert read_detections(str(tmp_path / "a.npy"), "h36m17").format == "h36m17"


@pytest.mark.parametrize("writer", ["coco", "alphapose", "openpose"])
def test_the_main_subject_is_followed_through_a_crossing_bystander(tmp_path, scene, writer):
    path = {"coco": lambda: write_coco(tmp_path / "c.json", scene),
            "alphapose": lambda: write_alphapose(tmp_path / "a.json", scene),
            "openpose": lambda: write_openpose(tmp_path / "op", scene)}[writer]()
    det = read_detections(path)
    tracks = select_tracks(det, all_persons=True)
    assert len(tracks) == 2
    frames, kp, sc, filled = track_series(det, tracks[0][1])
    h36m, _ = to_h36m17(kp, sc, det.format)
    assert list(frames) == list(range(60)) and list(np.flatnonzero(filled)) == list(range(20, 25))
    seen = ~filled
    np.testing.assert_allclose(h36m[seen][:, [1, 4, 11, 14]], scene["subject"][seen][:, [1, 4, 11, 14]], atol=2e-3)
    # the gap is filled between the frames around it
    assert (h36m[20:25, 1, 1] >= np.minimum(h36m[19, 1, 1], h36m[25, 1, 1]) - 1e-6).all()
    by, _, _, by_filled = track_series(det, tracks[1][1])[0], None, None, None
    assert len(by) == 60


def test_multi_person_json_lifts_like_the_subject_alone(tmp_path, scene, lifter):
    kp = h36m_to("coco17", scene["subject"])
    alone = lifter.lift(np.concatenate([kp, np.full((60, 17, 1), 0.9)], -1), format="coco17")  # the JSON's scores
    both = lifter.lift(write_coco(tmp_path / "c.json", dict(scene, present=np.ones(60, dtype=bool))))
    assert both.format == "coco17" and (both.track == 0).all() and not both.filled.any()
    np.testing.assert_allclose(both.pose3d, alone.pose3d, atol=1e-2)  # the JSON keeps 3 decimals of a pixel


def test_person_and_all_persons(tmp_path, scene, lifter):
    path = write_coco(tmp_path / "c.json", scene)
    every = lifter.lift(path, all_persons=True)
    assert sorted(set(every.track.tolist())) == [0, 1] and len(every.frame) == 120
    one = lifter.lift(path, person=1)
    assert (one.track == 1).all() and len(one.frame) == 60 and not one.filled.any()
    with pytest.raises(KeypointInputError, match=r"--person must be between 0 and 1 \(2 tracks found\); got 2"):
        lifter.lift(path, person=2)


def test_all_persons_skips_a_track_with_no_usable_joint(tmp_path, scene, lifter):
    rows = results_rows(scene, "coco17", lambda t: t)
    for r in rows:  # the bystander's detections have score 0 on every joint
        if r.pop("who") == "bystander":
            kp = np.array(r["keypoints"]).reshape(-1, 3)
            kp[:, 2] = 0.0
            r["keypoints"] = kp.reshape(-1).tolist()
    (tmp_path / "c0.json").write_text(json.dumps(rows))
    result = lifter.lift(str(tmp_path / "c0.json"), all_persons=True)
    assert set(result.track.tolist()) == {0} and len(result.frame) == 60 and np.isfinite(result.pose3d).all()
    assert result.filled.sum() == 5  # the subject's own gap


def test_frame_rate_resamples_to_the_model_and_back(scene, lifter):
    kp = h36m_to("h36m17", scene["subject"])
    at_50 = lifter.lift(kp, format="h36m17", fps=50).pose3d
    np.testing.assert_allclose(at_50, lifter.lift(kp, format="h36m17").pose3d)  # 50 Hz: the model's rate
    # the same motion filmed at 25 Hz (every other frame): one pose per input frame, close to the 50 Hz poses
    at_25 = lifter.lift(kp[::2], format="h36m17", fps=25).pose3d
    assert at_25.shape == (30, 17, 3)
    assert np.abs(at_25 - at_50[::2]).mean() < 0.2 * np.abs(at_50).mean()
    # at 100 Hz the same frames would be lifted as a slower motion: not the same input as fps=25
    assert not np.allclose(at_25, lifter.lift(kp[::2], format="h36m17", fps=100).pose3d)


def test_outputs_npz_json_csv(tmp_path, scene, lifter):
    result = lifter.lift(write_coco(tmp_path / "c.json", scene))
    npz = np.load(result.save(tmp_path / "o.npz"))
    assert npz["pose3d"].shape == (60, 17, 3) and list(npz["frame_id"][:2]) == ["1000", "1001"]
    assert npz["filled"].sum() == 5 and "mm" in str(npz["units"]) and str(npz["format"]) == "coco17"
    np.testing.assert_allclose(npz["pose3d"][:, 0], 0.0, atol=1e-4)
    js = json.loads((tmp_path / "o.json").read_text() if result.save(tmp_path / "o.json") else "")
    assert len(js["frames"]) == 60 and len(js["frames"][0]["pose3d"]) == 17 and js["joints"][0] == "pelvis"
    lines = (tmp_path / "o.csv").read_text().splitlines() if result.save(tmp_path / "o.csv") else []
    assert len(lines) == 61 and lines[0].startswith("frame,frame_id,track,filled,pelvis_x")
    assert sorted(os.listdir(tmp_path)) == ["c.json", "o.csv", "o.json", "o.npz"]  # no temporary files left


# ---------------------------------------------------------------------------------------------------------------
# CLI and bad input

def test_cli_lifts_each_detector_family(tmp_path, scene, checkpoint, capsys):
    inputs = {"coco": write_coco(tmp_path / "c.json", scene), "alphapose": write_alphapose(tmp_path / "a.json", scene),
              "openpose": write_openpose(tmp_path / "op", scene)}
    for name, path in inputs.items():
        out = tmp_path / f"{name}.npz"
        assert lift.main([path, "-o", str(out), "--checkpoint", checkpoint]) == 0
        assert np.load(out)["pose3d"].shape == (60, 17, 3)
    assert "lifted 60 frames of 1 track(s) (5 filled)" in capsys.readouterr().out


def test_cli_render_png(tmp_path, scene, checkpoint):
    np.savez(tmp_path / "a.npz", keypoints=scene["subject"][:8], format="h36m17")
    png = tmp_path / "frame.png"
    assert lift.main([str(tmp_path / "a.npz"), "-o", str(tmp_path / "o.npz"), "--checkpoint", checkpoint,
                      "--render", str(png)]) == 0
    assert png.stat().st_size > 1000


def _bad_inputs(tmp_path, scene):
    good = np.concatenate([scene["subject"], np.ones((60, 17, 1))], -1)
    cases = {}

    def add(name, filename, content, match, extra=()):
        path = tmp_path / filename
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif callable(content):
            content(path)
        cases[name] = (str(path), match, list(extra))

    add("empty file", "empty.npz", b"", "not a readable .npz file")
    buf = tmp_path / "full.npz"
    np.savez(buf, keypoints=good)
    add("truncated npz", "trunc.npz", buf.read_bytes()[:200], "not a readable .npz file")
    add("string array", "str.npz", lambda p: np.savez(p, keypoints=np.array([["a", "b"]])),
        r"keypoints must have shape \(T, K, 2\) or \(T, K, 3\)")
    add("object array", "obj.npy", lambda p: np.save(p, np.array([{"x": 1}], dtype=object), allow_pickle=True),
        "not a readable .npy file")
    add("missing key", "nokey.npz", lambda p: np.savez(p, points=good), "missing key 'keypoints'")
    add("wrong count for format", "w.npz", lambda p: np.savez(p, keypoints=good[:, :16]),
        "format coco17 has 17 keypoints per person; the file has 16", ["--format", "coco17"])
    add("unknown keypoint count", "k16.npz", lambda p: np.savez(p, keypoints=good[:, :16]),
        "16 keypoints per person match no known format")
    add("NaN width", "nanw.npz", lambda p: np.savez(p, keypoints=good, width=np.nan, format="h36m17"),
        "width must be one positive number")
    add("negative height", "negh.npz", lambda p: np.savez(p, keypoints=good, height=-3.0, format="h36m17"),
        "height must be one positive number")
    add("empty json", "empty.json", b"[]", "expected a non-empty list of detections")
    add("broken json", "broken.json", b"[{", "not readable JSON")
    add("json without keys", "nokeys.json", b'[{"image_id": 1}]', "detection 0 lacks 'image_id' or 'keypoints'")
    add("json ragged", "ragged.json", json.dumps([{"image_id": 1, "keypoints": [1, 2, 3]},
                                                  {"image_id": 2, "keypoints": [1, 2]}]).encode(),
        "list of x, y, score triples of the same length")
    add("empty folder", "emptydir", lambda p: p.mkdir(), "no OpenPose \\*_keypoints.json files")
    add("no such input", "missing.npz", None, "no such file or folder")
    return cases


def test_every_bad_input_is_one_line_exit_2_and_no_output(tmp_path, scene, checkpoint, capsys):
    for name, (path, match, extra) in _bad_inputs(tmp_path, scene).items():
        out = tmp_path / "out" / "o.npz"
        code = lift.main([path, "-o", str(out), "--checkpoint", checkpoint] + extra)
        err = capsys.readouterr().err.strip()
        assert code == 2, name
        assert re.search(match, err), (name, err)
        assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, name
        assert not out.exists(), name


def test_bad_options_and_checkpoints(tmp_path, scene, checkpoint, capsys):
    np.savez(tmp_path / "a.npz", keypoints=scene["subject"], format="h36m17")
    src = str(tmp_path / "a.npz")
    (tmp_path / "file").write_text("x")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    cases = [
        (["-o", str(tmp_path / "file" / "o.npz"), "--checkpoint", checkpoint], "cannot create its folder"),
        (["-o", str(tmp_path / "o.npz"), "--checkpoint", str(tmp_path / "bad.pt")], "not a readable checkpoint"),
        (["-o", str(tmp_path / "o.npz"), "--checkpoint", str(tmp_path / "none.pt")], "no such file"),
        (["-o", str(tmp_path / "o.npz"), "--checkpoint", checkpoint, "--render", str(tmp_path / "r.mp4")],
         "--render must end in .gif or .png"),
        (["-o", str(tmp_path) + os.sep, "--checkpoint", checkpoint], "--output must be a file name"),
        (["-o", str(tmp_path / "o.npz"), "--checkpoint", checkpoint, "--fps", "-5"], "fps must be one positive"),
    ]
    for extra, match in cases:
        assert lift.main([src] + extra) == 2, match
        err = capsys.readouterr().err
        assert re.search(match, err) and "Traceback" not in err, (match, err)
    assert not (tmp_path / "o.npz").exists()
    assert sorted(p for p in os.listdir(tmp_path) if p.startswith(".")) == []  # no temporary files left


def test_all_missing_keypoints_are_an_error_not_a_pose(tmp_path, lifter):
    with pytest.raises(KeypointInputError, match="no keypoint has a confidence above 0"):
        lifter.lift(np.zeros((10, 17, 3)), format="h36m17")


def test_non_finite_weights_are_refused(tmp_path):
    model = build_model(TINY_TCN)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    path = tmp_path / "nan.pt"
    save_checkpoint(path, model, config={"model": TINY_TCN, "data": {"dataset": "mocap_augmented"}})
    with pytest.raises(KeypointInputError, match="non-finite weights"):
        Lifter(str(path))


def test_a_checkpoint_lifts_with_the_scale_frames_it_trained_with(tmp_path, scene):
    from repose_ext.data.normalization import normalize_keypoints

    path = tmp_path / "scaled.pt"
    config = {"model": TINY_TCN, "data": {"dataset": "mocap_augmented", "options": {"scale_frames": 9}}}
    save_checkpoint(path, build_model(TINY_TCN), config=config)
    lifter = Lifter(str(path))
    seen = []
    lifter.model.register_forward_hook(lambda module, args, out: seen.append(args[0][0].cpu().numpy()))
    kp = scene["subject"]
    sc = np.ones(kp.shape[:2])
    lifter.lift(np.concatenate([kp, sc[..., None]], -1), format="h36m17")
    np.testing.assert_allclose(seen[0], normalize_keypoints(kp, sc, scale_frames=9)[0], atol=1e-6)
    assert not np.allclose(seen[0], normalize_keypoints(kp, sc)[0], atol=1e-3)
    config["data"]["options"]["scale_frames"] = 8
    save_checkpoint(path, build_model(TINY_TCN), config=config)
    with pytest.raises(KeypointInputError, match=r"scaled.pt: data.options: scale_frames must be an odd positive "
                                                 r"int; got 8"):
        Lifter(str(path))


def test_the_api_is_exported_and_camera_free(scene, lifter):
    assert repose_ext.Lifter is Lifter
    kp = h36m_to("coco17", scene["subject"])
    a = lifter.lift(kp, format="coco17").pose3d
    b = lifter.lift(kp * 2 + 100, format="coco17").pose3d  # the same person larger, elsewhere in the image
    np.testing.assert_allclose(a, b, atol=1e-3)


def test_bundled_default_model_lifts(scene):
    result = Lifter().lift(h36m_to("coco17", scene["subject"]), format="coco17", width=WIDTH, height=HEIGHT)
    assert result.pose3d.shape == (60, 17, 3) and np.isfinite(result.pose3d).all()
