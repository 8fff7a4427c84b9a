"""Tests of the trainer: configuration, objective, evaluator, a smoke run on files of the H36M pickle schema,
checkpoint round trip, bit-exact resume, evaluation of released-format checkpoints, and two-process DDP (gloo)."""

import copy
import io
import json
import math
import re
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

import repose_ext
from repose_ext.data import H36M_SKELETON, MPI_INF_3DHP_SKELETON
from repose_ext.data.clips import flip_pose
from repose_ext.models import build_model, load_checkpoint
from repose_ext.training import ConfigError, PoseEvaluator, PoseObjective, load_config, predict, train
from repose_ext.training import objective as objective_module
from repose_ext.training.cli import main as cli_main
from repose_ext.training.config import DEFAULTS, parse_override
from repose_ext.training.reproducibility import weights_digest
from repose_ext.training.trainer import evaluate_checkpoint, prepare_target, split_summary_table

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data_factories import make_h36m_motionbert, write_pickle  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAS_FUSED_CPU = "cpu" in repose_ext.available_backends("cpu")

TINY_MODEL = {"preset": "small", "dim_feat": 16, "dim_rep": 16, "depth": 1, "num_heads": 2, "mlp_ratio": 2.0,
              "maxlen": 16}


@pytest.fixture(scope="module")
def h36m_pickle(tmp_path_factory):
    """A small file of the MotionBERT H36M pickle schema (random poses, real keys, dtypes and camera names)."""
    train_videos = [(f"s_01_act_{a:02d}_subact_01_ca_0{c + 1}", cam, 48, f"act{a}")
                    for a in (2, 3) for c, cam in enumerate(("54138969", "55011271"))]
    test_videos = [("s_09_act_02_subact_01_ca_01", "54138969", 32, "act2"),
                   ("s_09_act_03_subact_01_ca_02", "55011271", 32, "act3"),
                   ("s_09_act_05_subact_02_ca_01", "54138969", 16, "act5")]  # on MotionBERT's block list
    path = tmp_path_factory.mktemp("h36m") / "h36m_sh_conf_cam_source_final.pkl"
    write_pickle(make_h36m_motionbert(train_videos, test_videos, seed=3), path)
    return str(path)


def tiny_overrides(pickle_path, out_dir, **extra):
    """Overrides for a seconds-long run on the tiny pickle."""
    values = {
        "name": "tiny",
        "output_dir": str(out_dir),
        "data.dataset": "h36m_motionbert",
        "data.files.pickle": pickle_path,
        "data.n_frames": 16,
        "data.train_stride": 8,
        "data.test_stride": 16,
        "model": json.dumps(TINY_MODEL),
        "train.epochs": 2,
        "train.batch_size": 4,
        "train.lr": 2e-3,
        "train.log_every": 2,
        "eval.batch_size": 4,
        "loss.spatial_rank": 1.0,
        "loss.temporal_rank": 1.0,
        "loss.rank_backend": "auto",
        "train.amp": "off",  # float32 whatever the CPU ("auto" is bf16 on CPUs with bf16 instructions)
    }
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


def tiny_config(pickle_path, out_dir, **extra):
    return load_config(None, tiny_overrides(pickle_path, out_dir, **extra))


# ---------------------------------------------------------------------------------------------------------------
# Configuration


def test_overrides_are_parsed_as_yaml_and_nested():
    assert parse_override("train.lr=1e-3") == {"train": {"lr": 1e-3}}
    assert parse_override("loss.temporal_window=null") == {"loss": {"temporal_window": None}}
    assert parse_override("data.files.pickle=/a/b.pkl") == {"data": {"files": {"pickle": "/a/b.pkl"}}}
    config = load_config(None, ["train.epochs=3", "train.flip_augment=false", "data.options.use_gt_2d=true"])
    assert config["train"]["epochs"] == 3 and config["train"]["flip_augment"] is False
    assert config["data"]["options"] == {"use_gt_2d": True}
    assert config["train"]["lr"] == DEFAULTS["train"]["lr"]  # untouched keys keep their defaults


def test_overrides_of_a_free_form_section_merge_at_every_depth(tmp_path):
    """Two overrides under one nested free-form mapping keep both (the second used to replace the first's mapping
    silently), and an override leaves the file's other settings of that mapping alone; null still switches off."""
    config = load_config(None, ["data.options.augment.window.p_reverse=0.5", "data.options.augment.splice.p=0.6",
                                "data.options.augment.window.speed_range=[1, 2]"])
    assert config["data"]["options"]["augment"] == {"window": {"p_reverse": 0.5, "speed_range": [1, 2]},
                                                    "splice": {"p": 0.6}}
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  options:\n    augment:\n      window: {p_reverse: 0.5}\n      splice: {p: 0.1}\n")
    config = load_config(str(path), ["data.options.augment.splice.p=0.6", "data.options.augment.detector=null"])
    assert config["data"]["options"]["augment"] == {"window": {"p_reverse": 0.5}, "splice": {"p": 0.6},
                                                    "detector": None}


@pytest.mark.parametrize("override, words", [
    ("train.epoch=3", ["train.epoch", "epochs"]),  # unknown key: names it and the valid ones
    ("train.lr=-1", ["train.lr", "> 0", "-1"]),
    ("loss.rank_backend=fast", ["loss.rank_backend", "fused", "fast"]),
    ("data.dataset=coco", ["data.dataset", "h36m_motionbert", "coco"]),
    ("train", ["key=value"]),
    ("train=3", ["train", "mapping"]),
    ("train.lr=.inf", ["train.lr", "inf"]),  # non-finite numbers are refused up front
    ("loss.n_mpjpe=.nan", ["loss.n_mpjpe", "nan"]),
    ("model.preset=lite", ["model:", "preset must be one of", "tcn81", "lite"]),
    ("baseline=lstm", ["baseline:", "lstm"]),
])
def test_bad_overrides_name_the_key(override, words):
    with pytest.raises(ConfigError) as info:
        load_config(None, [override])
    for word in words:
        assert word in str(info.value)


def test_broken_yaml_is_a_one_line_config_error(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  epochs: [1,\n")
    with pytest.raises(ConfigError, match=r"bad.yaml is not valid YAML \(line 3, column 1\)"):
        load_config(str(path))
    assert cli_main(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(REPO, "configs"))))
def test_shipped_configs_are_valid(name):
    config = load_config(os.path.join(REPO, "configs", name))
    model = build_model(config["model"])  # the architecture exists
    assert model.maxlen is None or model.maxlen >= config["data"]["n_frames"]  # None: convolutional, any length


def test_config_recipes_follow_the_spec():
    mb = load_config(os.path.join(REPO, "configs", "h36m_motionbert_scratch.yaml"))
    rp = load_config(os.path.join(REPO, "configs", "h36m_repose.yaml"))
    for c in (mb, rp):  # MotionBERT's from-scratch recipe
        assert (c["train"]["epochs"], c["train"]["batch_size"], c["train"]["lr"]) == (120, 32, 2e-4)
        assert (c["train"]["weight_decay"], c["train"]["lr_decay"], c["data"]["n_frames"]) == (0.01, 0.99, 243)
        assert (c["loss"]["mpjpe"], c["loss"]["n_mpjpe"], c["loss"]["velocity"]) == (1.0, 0.5, 20.0)
    assert mb["loss"]["spatial_rank"] == 0 and mb["loss"]["temporal_rank"] == 0
    assert rp["loss"]["spatial_rank"] > 0 and rp["loss"]["temporal_rank"] > 0
    assert rp["model"] == {"preset": "repose"} and mb["model"] == {"preset": "motionbert"}
    for name in ("default.yaml", "bundled.yaml"):  # generalising lifters, each beside a same-budget baseline
        c = load_config(os.path.join(REPO, "configs", name))
        assert c["data"]["dataset"] == "mocap_augmented" and c["baseline"] == "simple_baseline"
        assert c["loss"]["rank_backend"] == "fused" and c["loss"]["spatial_rank"] > 0
        assert c["train"]["time_budget_s"] is not None


# ---------------------------------------------------------------------------------------------------------------
# Objective


def test_objective_is_the_weighted_sum_of_the_terms():
    torch.manual_seed(1)
    pred, gt = torch.randn(2, 8, 17, 3), torch.randn(2, 8, 17, 3)
    objective = PoseObjective(1.0, 0.5, 20.0, 0.3, 0.7, rank_backend="reference")
    total, terms = objective(pred, gt)
    expected = (repose_ext.training.pose_losses.mpjpe_loss(pred, gt) + 0.5 * repose_ext.training.pose_losses.n_mpjpe_loss(pred, gt)
                + 20 * repose_ext.training.pose_losses.velocity_loss(pred, gt)
                + 0.3 * repose_ext.spatial_depth_rank_loss(pred, gt, backend="reference")
                + 0.7 * repose_ext.temporal_depth_rank_loss(pred, gt, backend="reference"))
    torch.testing.assert_close(total, expected)
    assert list(terms) == ["mpjpe", "n_mpjpe", "velocity", "spatial_rank", "temporal_rank"]


def test_objective_skips_zero_weight_and_off_terms(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a rank term was computed although it is disabled")

    monkeypatch.setattr(objective_module, "spatial_depth_rank_loss", forbidden)
    monkeypatch.setattr(objective_module, "temporal_depth_rank_loss", forbidden)
    pred, gt = torch.randn(1, 4, 17, 3), torch.randn(1, 4, 17, 3)
    for objective in (PoseObjective(spatial_rank=0.0, temporal_rank=0.0, rank_backend="fused"),
                      PoseObjective(spatial_rank=1.0, temporal_rank=1.0, rank_backend="off"),
                      PoseObjective(velocity=0.0, rank_backend="reference")):
        total, terms = objective(pred, gt)
        assert not any(k.endswith("_rank") for k in terms) and objective.backend is None
    assert "velocity" not in PoseObjective(velocity=0.0)(pred, gt)[1]


@pytest.mark.skipif(not HAS_FUSED_CPU, reason="fused CPU backend not built")
def test_fused_backend_resolves_and_matches_reference():
    assert objective_module.resolve_rank_backend("fused", torch.device("cpu")) == "cpu"
    torch.manual_seed(2)
    gt = torch.randn(2, 16, 17, 3) * 0.1
    pred = (gt + 0.05 * torch.randn_like(gt)).requires_grad_(True)
    fused = PoseObjective(spatial_rank=1.0, temporal_rank=1.0, rank_backend="fused")(pred, gt)[0]
    (g_fused,) = torch.autograd.grad(fused, pred)
    ref = PoseObjective(spatial_rank=1.0, temporal_rank=1.0, rank_backend="reference")(pred, gt)[0]
    (g_ref,) = torch.autograd.grad(ref, pred)
    torch.testing.assert_close(fused, ref)
    torch.testing.assert_close(g_fused, g_ref)


def test_fused_backend_missing_is_an_actionable_error(monkeypatch):
    monkeypatch.setattr(objective_module._backends, "available_backends", lambda device=None: ["reference"])
    with pytest.raises(RuntimeError, match="rank_backend=reference"):
        PoseObjective(spatial_rank=1.0, rank_backend="fused")


def test_prepare_target_root_relative_and_first_frame_depth():
    target = torch.randn(2, 5, 17, 3)
    rel = prepare_target(target, rootrel=True, root=0)
    assert torch.all(rel[:, :, 0] == 0)
    torch.testing.assert_close(rel[:, :, 3], target[:, :, 3] - target[:, :, 0])
    glob = prepare_target(target, rootrel=False, root=0)
    torch.testing.assert_close(glob[..., :2], target[..., :2])
    torch.testing.assert_close(glob[:, 2, 4, 2], target[:, 2, 4, 2] - target[:, 0, 0, 2])


# ---------------------------------------------------------------------------------------------------------------
# Evaluator


class _AddX(torch.nn.Module):
    """(x, y, conf) -> (x + shift, y, conf): flip-equivariant up to a bias that flip averaging cancels."""

    def __init__(self, shift):
        super().__init__()
        self.shift = shift

    def forward(self, x):
        return x + torch.tensor([self.shift, 0.0, 0.0])


def test_flip_test_time_averaging_cancels_a_left_right_bias():
    x = torch.randn(2, 6, 17, 3)
    left, right = H36M_SKELETON.left, H36M_SKELETON.right
    torch.testing.assert_close(predict(_AddX(0.3), x, left, right, flip=False), x + torch.tensor([0.3, 0, 0]))
    torch.testing.assert_close(predict(_AddX(0.3), x, left, right, flip=True), x)
    torch.testing.assert_close(flip_pose(flip_pose(x, left, right), left, right), x)


def _clips(target, res=(1000.0, 1000.0), factor=2.0, source="s_01_act_02_subact_01_ca_01", action="walk",
           start=0, occluded=None, valid=None):
    b, t = target.shape[:2]
    batch = {"target": target, "res": torch.tensor([res] * b), "factor": torch.full((b, t), factor),
             "source": [source] * b, "action": [action] * b,
             "frames": torch.arange(start, start + t).repeat(b, 1)}
    if occluded is not None:
        batch["occluded"] = occluded
    if valid is not None:
        batch["valid"] = valid
    return batch


def test_evaluator_known_errors_occlusion_split_and_depth_order():
    torch.manual_seed(3)
    target = torch.randn(1, 4, 17, 3) * 0.1
    occluded = torch.zeros(1, 4, 17, dtype=torch.bool)
    occluded[:, :, 5] = True
    evaluator = PoseEvaluator(H36M_SKELETON, "h36m")
    pred = target.clone()
    pred[:, :, 5, 0] += 0.01  # joint 5 off by 0.01 normalised units = 0.01 * w/2 px * factor 2 = 10 mm
    evaluator.update(pred, _clips(target, occluded=occluded))
    result = evaluator.compute()
    assert result.summary["mpjpe"] == pytest.approx(10.0 / 17)
    assert result.summary["mpjpe_occluded"] == pytest.approx(10.0)
    assert result.summary["mpjpe_visible"] == pytest.approx(0.0, abs=1e-9)
    assert result.summary["doa_spatial"] == 1.0 and result.summary["doa_temporal"] == 1.0
    assert result.summary["frames"] == 4

    evaluator = PoseEvaluator(H36M_SKELETON, "h36m")
    reversed_depth = target.clone()
    reversed_depth[..., 2] = -target[..., 2]  # every depth order flipped (around the root)
    evaluator.update(reversed_depth, _clips(target))
    result = evaluator.compute()
    assert result.summary["doa_spatial"] == 0.0 and result.summary["doa_temporal"] == 0.0
    assert math.isnan(result.summary["mpjpe_occluded"])  # data without occlusion flags
    assert "MPJPE-occ" not in result.table()


def test_evaluator_averages_overlapping_clips_and_skips_the_block_list():
    target = torch.zeros(1, 4, 17, 3)
    evaluator = PoseEvaluator(H36M_SKELETON, "h36m")
    a, b = target.clone(), target.clone()
    a[..., 1, 0] = 0.01  # 10 mm on joint 1 in the first clip
    b[..., 1, 0] = 0.03  # 30 mm in the second clip, which covers frames 2..5 (frames 2, 3 overlap)
    evaluator.update(a, _clips(target, start=0))
    evaluator.update(b, _clips(target, start=2))
    evaluator.update(target + 1.0, _clips(target, source="s_09_act_05_subact_02_ca_03"))  # blocked
    result = evaluator.compute()
    # frames 0,1: 10 mm; frames 2,3: (10 + 30) / 2; frames 4,5: 30 mm -> joint-1 mean 20 mm over 6 frames
    assert result.summary["mpjpe"] == pytest.approx(20.0 / 17)
    assert result.summary["frames"] == 6 and result.num_clips == 2


def test_evaluator_3dhp_protocol_valid_frames_pck_auc():
    target = torch.zeros(1, 4, 17, 3)
    pred = target.clone()
    # factor 1, w = 2048: 1 normalised unit = 1024 mm. Joint 0 (head top, a PCK joint) 200 mm off in every frame.
    pred[..., 0, 0] = 200.0 / 1024
    valid = torch.tensor([[True, True, False, True]])
    pred[:, 2] += 5.0  # an invalid frame with a huge error must not count
    evaluator = PoseEvaluator(MPI_INF_3DHP_SKELETON, "mpi_inf_3dhp")
    evaluator.update(pred, _clips(target, res=(2048.0, 2048.0), factor=1.0, source="TS1", action="TS1",
                                  valid=valid))
    result = evaluator.compute()
    assert result.summary["frames"] == 3
    assert result.summary["mpjpe"] == pytest.approx(200.0 / 17)
    assert result.summary["pck"] == pytest.approx(100.0 * 13 / 14)  # 13 of the 14 PCK joints under 150 mm
    # AUC over thresholds 0, 5, ..., 150: at 0 no joint passes (strict <), at the 30 others 13 of 14 pass.
    assert result.summary["auc"] == pytest.approx(100.0 * (13 / 14) * 30 / 31)
    assert "PCK" in result.table() and "TS1" in result.table()


# ---------------------------------------------------------------------------------------------------------------
# Training runs on the tiny H36M-schema pickle


def _state_equal(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_smoke_run_loss_decreases_and_checkpoint_round_trips(h36m_pickle, tmp_path, capsys):
    config = tiny_config(h36m_pickle, tmp_path, **{"train.epochs": 3})
    summary = train(config, run_dir=str(tmp_path / "run"), progress=False)
    out = capsys.readouterr().out
    run = tmp_path / "run"
    assert str(run) in out and "MPJPE" in out and "DOA-spatial" in out
    for name in ("latest.pt", "best.pt", "model.pt", "log.csv", "config.yaml", "summary.json", "eval_final.txt"):
        assert (run / name).is_file(), name
    assert list((run / "tb").iterdir())  # TensorBoard event file
    assert (run / "curves.png").is_file()

    rows = (run / "log.csv").read_text().strip().splitlines()
    header = rows[0].split(",")
    losses = [float(r.split(",")[header.index("train_loss")]) for r in rows[1:]]
    assert len(losses) == 3 and losses[-1] < losses[0]

    ckpt = load_checkpoint(run / "latest.pt")
    assert ckpt["epoch"] == 3 and ckpt["config"] == config
    assert set(ckpt) >= {"optimizer", "scheduler", "rng_states", "metrics", "best", "best_selection"}
    assert ckpt["metrics"]["eval"]["summary"]["mpjpe"] == pytest.approx(summary["final"]["summary"]["mpjpe"])
    model = build_model(config["model"])
    repose_ext.models.load_model_weights(model, ckpt)
    assert weights_digest(model) == summary["weights_digest_by_rank"][0]
    export = load_checkpoint(run / "model.pt")  # weights-only export of the final model
    assert "optimizer" not in export and export["config"] == config
    _state_equal(export["model_pos"], ckpt["model_pos"])

    # --eval-only on our checkpoint reproduces the final table's numbers.
    assert cli_main(["--eval-only", "--checkpoint", str(run / "latest.pt"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"{summary['final']['summary']['mpjpe']:.2f}" in out


def test_amp_auto_trains_in_bf16_on_cpus_with_bf16_instructions_only(monkeypatch):
    from repose_ext.training import trainer as trainer_module

    cpu = torch.device("cpu")
    for has_bf16, auto in ((True, torch.bfloat16), (False, None)):
        monkeypatch.setattr(trainer_module, "cpu_has_bf16", lambda: has_bf16)
        assert trainer_module.resolve_amp("auto", cpu) == auto
        assert trainer_module.resolve_amp("off", cpu) is None
        assert trainer_module.resolve_amp("bf16", cpu) == torch.bfloat16


def test_autocast_path_trains_with_finite_losses_and_scores_in_float32_on_cpu(h36m_pickle, tmp_path, capsys,
                                                                              monkeypatch):
    # bf16 autocast on CPU: the model trains in bf16, the losses in float32.
    config = tiny_config(h36m_pickle, tmp_path, **{"train.epochs": 1, "train.amp": "bf16"})
    summary = train(config, run_dir=str(tmp_path / "bf16"), progress=False)
    rows = (tmp_path / "bf16" / "log.csv").read_text().splitlines()
    loss = float(rows[1].split(",")[rows[0].split(",").index("train_loss")])
    assert math.isfinite(loss) and math.isfinite(summary["final"]["summary"]["mpjpe"])
    # The weights differ from a float32 run's, but they are scored in float32, as the lift CLI runs them: the run's
    # own score equals that of the same checkpoint under train.amp=off, to the last bit.
    fp32 = train(tiny_config(h36m_pickle, tmp_path, **{"train.epochs": 1, "train.amp": "off"}),
                 run_dir=str(tmp_path / "fp32"), progress=False)
    assert fp32["weights_digest_by_rank"] != summary["weights_digest_by_rank"]
    as_off = evaluate_checkpoint(dict(config, train=dict(config["train"], amp="off")),
                                 str(tmp_path / "bf16" / "model.pt"), progress=False)
    assert as_off.summary["mpjpe"] == summary["final"]["summary"]["mpjpe"]
    # A CPU without bf16 instructions gets a note that the emulation may be slow.
    from repose_ext.training import trainer as trainer_module

    capsys.readouterr()
    monkeypatch.setattr(trainer_module, "cpu_has_bf16", lambda: False)
    train(config, run_dir=str(tmp_path / "emulated"), progress=False)
    assert "note: train.amp=bf16 on a CPU without bf16 instructions" in capsys.readouterr().out


def test_eval_only_reads_the_released_checkpoint_format(h36m_pickle, tmp_path, capsys):
    config = tiny_config(h36m_pickle, tmp_path)
    torch.manual_seed(5)
    model = build_model(config["model"])
    released = {"model_pos": {f"module.{k}": v for k, v in model.state_dict().items()}, "epoch": 7,
                "lr": 1e-4, "min_loss": 40.0}
    path = tmp_path / "best_epoch.bin"
    torch.save(released, path)
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(config))
    assert cli_main(["--config", str(cfg_path), "--eval-only", "--checkpoint", str(path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    from repose_ext.training.trainer import evaluate_checkpoint

    direct = evaluate_checkpoint(config, str(path), progress=False)
    assert f"{direct.summary['mpjpe']:.2f}" in out and "act2" in out and "act5" not in out  # act5 is blocked


def test_resume_is_bit_exact(h36m_pickle, tmp_path):
    # Dropout on, flips on, rank losses on: every RNG stream matters.
    model = dict(TINY_MODEL, drop_rate=0.1, drop_path_rate=0.1, depth=2)
    extra = {"model": json.dumps(model), "eval.every": 1}
    straight = train(tiny_config(h36m_pickle, tmp_path, **extra), run_dir=str(tmp_path / "a"), progress=False)
    train(tiny_config(h36m_pickle, tmp_path, **extra, **{"train.epochs": 1}), run_dir=str(tmp_path / "b"),
          progress=False)
    # Continue run b to 2 epochs through the command line: the stored config plus an override.
    assert cli_main(["--resume", str(tmp_path / "b"), "train.epochs=2", "--no-progress"]) == 0
    a, b = load_checkpoint(tmp_path / "a" / "latest.pt"), load_checkpoint(tmp_path / "b" / "latest.pt")
    assert b["epoch"] == 2
    _state_equal(a["model_pos"], b["model_pos"])
    assert len(a["optimizer"]["state"]) == len(b["optimizer"]["state"]) > 0
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        _state_equal(sa, sb)
    assert a["scheduler"] == b["scheduler"] and a["global_step"] == b["global_step"]
    assert straight["weights_digest_by_rank"] == json.loads((tmp_path / "b" / "summary.json").read_text())[
        "weights_digest_by_rank"]
    # The resumed run's CSV has one row per epoch, like the straight run's.
    assert len((tmp_path / "b" / "log.csv").read_text().strip().splitlines()) == 3
    # Resuming really starts from the checkpoint (a run that retrained from scratch would pass the checks above):
    # a checkpoint whose weights were changed after epoch 1 ends elsewhere, and its step counter carries on.
    train(tiny_config(h36m_pickle, tmp_path, **extra, **{"train.epochs": 1}), run_dir=str(tmp_path / "c"),
          progress=False)
    state = load_checkpoint(tmp_path / "c" / "latest.pt")
    steps_after_one = state["global_step"]
    model_c = build_model(model)
    model_c.load_state_dict(state["model_pos"])
    with torch.no_grad():
        for p in model_c.parameters():
            p.add_(0.01)
    extra_state = {k: v for k, v in state.items() if k not in ("model_pos", "optimizer", "scheduler", "epoch",
                                                               "config", "metrics", "format", "format_version")}
    from repose_ext.models import save_checkpoint

    class _Stored:  # hands the stored optimizer/scheduler state back to save_checkpoint unchanged
        def __init__(self, sd):
            self.sd = sd

        def state_dict(self):
            return self.sd

    save_checkpoint(tmp_path / "c" / "latest.pt", model_c, optimizer=_Stored(state["optimizer"]),
                    scheduler=_Stored(state["scheduler"]), epoch=1, config=state["config"], extra=extra_state)
    assert cli_main(["--resume", str(tmp_path / "c"), "train.epochs=2", "--no-progress"]) == 0
    c = load_checkpoint(tmp_path / "c" / "latest.pt")
    assert c["global_step"] == b["global_step"] == 2 * steps_after_one
    assert not all(torch.equal(c["model_pos"][k], a["model_pos"][k]) for k in a["model_pos"])


def test_cli_errors_are_reported_not_raised(tmp_path, capsys):
    assert cli_main(["--eval-only"], default_config=os.path.join(REPO, "configs", "default.yaml")) == 2
    assert "--checkpoint" in capsys.readouterr().err
    assert cli_main(["--config", os.path.join(REPO, "configs", "h36m_repose.yaml")]) == 2
    assert "data.files.pickle" in capsys.readouterr().err
    assert cli_main(["--resume", f"output_dir={tmp_path}"],
                    default_config=os.path.join(REPO, "configs", "default.yaml")) == 2
    assert "latest.pt" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("torchrun") is None and not os.path.exists(
    os.path.join(os.path.dirname(sys.executable), "torchrun")), reason="torchrun not found")
def test_two_process_ddp_on_gloo_completes_and_ranks_agree(h36m_pickle, tmp_path):
    config = tiny_config(h36m_pickle, tmp_path, **{"train.epochs": 1, "train.flip_augment": True})
    cfg_path = tmp_path / "ddp.yaml"
    cfg_path.write_text(yaml.safe_dump(config))
    run = tmp_path / "ddp_run"
    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", os.path.join(REPO, "train.py"), "--config",
         str(cfg_path), "--run-dir", str(run), "--no-progress"],
        capture_output=True, text=True, timeout=240, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["world_size"] == 2
    digests = summary["weights_digest_by_rank"]
    assert len(digests) == 2 and digests[0] == digests[1]
    ckpt = load_checkpoint(run / "latest.pt")
    assert len(ckpt["rng_states"]) == 2 and ckpt["world_size"] == 2
    # Each rank trains on half of the 20 training clips (4 videos x 5 windows): ceil(10 / 4) = 3 steps, not 5.
    assert ckpt["global_step"] == 3
    # A learning rate that follows each process's clock would differ between ranks: refused with one line.
    timed = tmp_path / "ddp_timed"
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", os.path.join(REPO, "train.py"), "--config",
         str(cfg_path), "--run-dir", str(timed), "--no-progress", "train.lr_schedule=time", "train.time_budget_s=60"],
        capture_output=True, text=True, timeout=240, env=env, cwd=REPO)
    assert proc.returncode != 0 and "error: train.lr_schedule=time needs a single process" in proc.stderr
    assert "Traceback" not in proc.stderr.split("error: train.lr_schedule")[0]
    assert not (timed / "summary.json").exists()


# ---------------------------------------------------------------------------------------------------------------
# Generalising lifters: time budget and the same-budget baseline

def augmented_overrides(out_dir, **extra):
    """A seconds-long run of a tiny temporal conv net on the augmented mocap data."""
    values = {
        "name": "aug", "output_dir": str(out_dir), "num_threads": 1,
        "data.dataset": "mocap_augmented", "data.n_frames": 9, "data.test_stride": 243,
        "data.options": json.dumps({"epoch_size": 8, "wild_draws": 1}),
        "model": json.dumps({"preset": "tcn81_cpu", "channels": 8, "filter_widths": [3, 3]}),
        "loss.velocity": 0.0, "loss.spatial_rank": 1.0, "loss.temporal_rank": 1.0,
        "train.epochs": 1, "train.batch_size": 4, "eval.batch_size": 64, "train.amp": "off",
    }
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


def test_time_budget_stops_training_after_the_epoch_it_runs_out_in(tmp_path):
    config = load_config(None, augmented_overrides(tmp_path, **{"train.epochs": 50, "train.time_budget_s": 1e-3,
                                                                "data.options": json.dumps({"epoch_size": 4000,
                                                                                            "wild_draws": 1})}))
    summary = train(config, run_dir=str(tmp_path / "run"), progress=False)
    assert summary["epochs"] == 1 and summary["global_step"] < 1000  # 1000 steps per epoch without a budget
    assert set(summary["splits"]) == {"studio", "wild_clean", "wild_noisy"}


def test_time_schedule_anneals_over_the_budget_and_needs_one(tmp_path):
    import csv

    with pytest.raises(ConfigError, match="train.time_budget_s must be a number of seconds with "
                                          "train.lr_schedule=time"):
        load_config(None, augmented_overrides(tmp_path, **{"train.lr_schedule": "time"}))
    with pytest.raises(ConfigError, match="train.lr_final must be a number in \\(0, 1\\]; got 0"):
        load_config(None, augmented_overrides(tmp_path, **{"train.lr_final": 0}))
    lr, final = 1e-3, 0.01
    config = load_config(None, augmented_overrides(tmp_path, **{
        "train.epochs": 1000, "train.time_budget_s": 3.0, "train.lr": lr, "train.lr_schedule": "time",
        "train.lr_final": final, "train.lr_decay": 0.5}))
    summary = train(config, run_dir=str(tmp_path / "run"), progress=False)
    assert 1 < summary["epochs"] < 1000  # stopped by the budget, not by the epoch count
    with open(tmp_path / "run" / "log.csv", encoding="utf-8") as f:
        rates = [float(row["lr"]) for row in csv.DictReader(f)]
    assert all(b <= a for a, b in zip(rates, rates[1:]))
    assert rates[0] < lr and rates[-1] <= lr * final ** 0.5 and rates[-1] >= lr * final * (1 - 1e-6)
    assert lr * 0.5 ** (len(rates) - 1) not in rates[1:]  # lr_decay plays no part


def test_time_budget_counts_the_earlier_invocations_of_a_resumed_run(tmp_path):
    run = tmp_path / "run"
    first = train(load_config(None, augmented_overrides(tmp_path, **{"train.time_budget_s": 1000})),
                  run_dir=str(run), progress=False)
    spent = load_checkpoint(str(run / "latest.pt"))["train_seconds"]
    assert 0 < spent < 1000 and first["epochs"] == 1 and first["global_step"] == 2
    again = load_config(None, augmented_overrides(tmp_path, **{"train.epochs": 3, "train.time_budget_s": spent}))
    resumed = train(again, run_dir=str(run), resume=str(run / "latest.pt"), progress=False)
    assert resumed["global_step"] == 2  # the budget was already spent: no step more (a fresh budget would give 4)
    assert resumed["wall_seconds"] >= round(spent, 1)  # the run's wall time, not this invocation's


def test_a_bundled_run_exports_and_re_evaluates_to_its_own_numbers(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("export_bundled", os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "export_bundled.py"))
    export_bundled = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(export_bundled)
    run = tmp_path / "run"
    with pytest.raises(SystemExit, match="summary.json not found"):
        export_bundled.export(str(run), "abc1234", "here", assets=str(tmp_path))
    config = load_config(None, augmented_overrides(tmp_path, baseline=json.dumps({"preset": "simple_baseline",
                                                                                  "width": 16})))
    summary = train(config, run_dir=str(run), progress=False)
    assets = tmp_path / "assets"
    assets.mkdir()
    record = export_bundled.export(str(run), "abc1234", "here", assets=str(assets))
    assert (assets / "default_model.pt").read_bytes() == (run / "model.pt").read_bytes()
    with open(assets / "default_model.json", encoding="utf-8") as f:
        assert json.load(f) == record
    assert record["commit"] == "abc1234" and record["model"]["steps"] == summary["global_step"]
    assert record["model"]["parameters"] == sum(p.numel() for p in build_model(config["model"]).parameters())
    assert record["metrics"]["wild_noisy"]["p_mpjpe"] == summary["splits"]["wild_noisy"]["summary"]["p_mpjpe"]
    assert record["baseline_metrics"]["studio"] == {k: summary["baseline_splits"]["studio"][k]
                                                    for k in export_bundled.METRICS}
    assert repose_ext.Lifter(str(assets / "default_model.pt")).model is not None
    # --eval-only scores every split of the run again: the same rows as the run's final table
    buf = io.StringIO()
    evaluate_checkpoint(config, str(assets / "default_model.pt"), progress=False, log=buf)
    rows = {name: split["summary"] for name, split in summary["splits"].items()}
    assert set(rows) == {"studio", "wild_clean", "wild_noisy"}
    assert split_summary_table({"model": rows}) in buf.getvalue()


def test_context_use_scores_a_run_with_and_without_its_temporal_context(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("context_use", os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "context_use.py"))
    context_use = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(context_use)
    assert context_use.main([str(tmp_path / "none")]) == 2
    assert "config.yaml not found" in capsys.readouterr().err
    torch.manual_seed(0)
    model = build_model({"preset": "tcn81_cpu", "channels": 8, "filter_widths": [3, 3]}).eval()
    x = torch.randn(2, 6, 17, 3)
    frame_by_frame = context_use.FrameByFrame(model)(x)
    torch.testing.assert_close(frame_by_frame[:, 4], model(x[:, 4:5])[:, 0])
    assert not torch.allclose(frame_by_frame, model(x))  # the conv net's output does depend on the other frames
    run = tmp_path / "run"
    config = load_config(None, augmented_overrides(tmp_path))
    summary = train(config, run_dir=str(run), progress=False)
    capsys.readouterr()
    assert context_use.main([str(run)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [(r[0], r[-4]) for r in rows] == [(split, label) for split in ("studio", "wild_clean", "wild_noisy")
                                            for label in ("clips", "frame")]
    studio = summary["splits"]["studio"]["summary"]
    assert float(rows[0][-2]) == pytest.approx(studio["p_mpjpe"], abs=0.006)  # as the run scored itself
    assert float(rows[0][-1]) == pytest.approx(studio["doa_spatial"], abs=6e-5)


def test_validation_holdout_keeps_the_test_actions_and_the_validation_clips_out_of_training():
    from repose_ext.data.augment import VALIDATION_CLIPS
    from repose_ext.data.synthetic_views import TEST_CLIPS
    from repose_ext.training.datasets import build_datasets

    options = {"epoch_size": 8, "wild_draws": 1, "holdout": "validation"}
    config = load_config(None, augmented_overrides("unused", **{"data.options": json.dumps(options)}))
    bundle = build_datasets(config)
    trained = set(bundle.train.bank.names)
    assert not trained & set(VALIDATION_CLIPS) and not trained & set(TEST_CLIPS) and len(trained) == 9
    assert bundle.test_name == "val_clean" and set(bundle.extra_tests) == {"val_noisy"}
    for split in (bundle.test, bundle.extra_tests["val_noisy"]):
        assert {split[i]["action"] for i in range(len(split))} == set(VALIDATION_CLIPS)
    bad = {**options, "holdout": "train"}
    with pytest.raises(ConfigError, match="data.options.holdout must be 'test' or 'validation'; got 'train'"):
        build_datasets(load_config(None, augmented_overrides("unused", **{"data.options": json.dumps(bad)})))


def test_scale_frames_reaches_every_split_and_a_bad_one_is_a_config_error():
    from repose_ext.training.datasets import build_datasets

    options = {"epoch_size": 8, "wild_draws": 1}
    plain = build_datasets(load_config(None, augmented_overrides("unused", **{"data.options": json.dumps(options)})))
    scaled = build_datasets(load_config(None, augmented_overrides(
        "unused", **{"data.options": json.dumps({**options, "scale_frames": 81})})))
    plain.train.set_epoch(0)
    scaled.train.set_epoch(0)
    splits = [(plain.train, scaled.train), (plain.test, scaled.test)]
    splits += [(plain.extra_tests[k], scaled.extra_tests[k]) for k in plain.extra_tests]
    for a, b in splits:  # same people, cameras and motion; only the scale of each frame differs
        x, y = a[0]["input"].numpy(), b[0]["input"].numpy()
        np.testing.assert_array_equal(x[..., 2], y[..., 2])
        rms = lambda v: np.sqrt((v[..., :2] ** 2).sum(-1).mean(-1))  # noqa: E731
        np.testing.assert_allclose(rms(x)[x[..., 2].sum(-1) == 17], 1.0, atol=1e-4)
        assert rms(y).std() > 0.01  # no longer unit size in every frame
        factor = (x[..., :2] * y[..., :2]).sum((-2, -1)) / np.maximum((y[..., :2] ** 2).sum((-2, -1)), 1e-12)
        np.testing.assert_allclose(x[..., :2], factor[:, None, None] * y[..., :2], atol=1e-4)  # one per frame
    bad = {**options, "scale_frames": 4}
    with pytest.raises(ConfigError, match="data.options: scale_frames must be an odd positive int; got 4"):
        build_datasets(load_config(None, augmented_overrides("unused", **{"data.options": json.dumps(bad)})),
                       need_train=False)


def test_bad_augmentation_settings_are_config_errors_naming_data_options(tmp_path, capsys):
    options = {"epoch_size": 8, "wild_draws": 1, "augment": {"window": {"p_reverse": 1.5}}}
    overrides = augmented_overrides(tmp_path, **{"data.options": json.dumps(options)})
    assert cli_main(["--config", os.path.join(REPO, "configs", "default.yaml"), *overrides, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: data.options: augmentation 'window': p_reverse must be in [0, 1]; got 1.5"
    assert not any(tmp_path.iterdir())  # no run directory left behind


def test_baseline_trains_beside_the_model_on_the_same_data_without_rank_losses(tmp_path, capsys):
    baseline = {"preset": "simple_baseline", "width": 16}
    config = load_config(None, augmented_overrides(tmp_path, baseline=json.dumps(baseline)))
    run = tmp_path / "run"
    summary = train(config, run_dir=str(run), progress=False)
    out = capsys.readouterr().out
    child = load_config(str(run / "baseline" / "baseline_config.yaml"))
    assert child["model"] == baseline and child["baseline"] is None
    assert child["loss"]["spatial_rank"] == 0 and child["loss"]["temporal_rank"] == 0
    assert child["data"] == config["data"] and child["train"] == config["train"] and child["seed"] == config["seed"]
    stored = load_checkpoint(str(run / "baseline" / "model.pt"))
    assert stored["config"]["model"] == baseline  # the child really trained the baseline lifter
    assert set(summary["baseline_splits"]) == {"studio", "wild_clean", "wild_noisy"}
    with open(run / "baseline" / "summary.json", encoding="utf-8") as f:
        own = json.load(f)["splits"]
    for split, values in summary["baseline_splits"].items():
        assert values == own[split]["summary"]
        row = next(line for line in out.splitlines() if line.startswith(f"{split:<12} baseline"))
        assert f"{values['mpjpe']:.2f}" in row
    assert summary["splits"]["studio"]["summary"]["mpjpe"] != summary["baseline_splits"]["studio"]["mpjpe"]
    # resuming a finished run reuses the finished baseline instead of training it again
    mtime = os.path.getmtime(run / "baseline" / "summary.json")
    train(load_config(None, augmented_overrides(tmp_path, baseline=json.dumps(baseline))), run_dir=str(run),
          resume=str(run / "latest.pt"), progress=False)
    assert "reusing the finished run" in capsys.readouterr().out
    assert os.path.getmtime(run / "baseline" / "summary.json") == mtime


def test_baseline_key_is_checked_and_old_checkpoint_configs_get_defaults():
    with pytest.raises(ConfigError, match="baseline must be null, a model preset name or a model mapping; got 5"):
        load_config(None, ["baseline=5"])
    old = copy.deepcopy(DEFAULTS)
    del old["baseline"], old["train"]["time_budget_s"]
    config = load_config(None, [], base=old)
    assert config["baseline"] is None and config["train"]["time_budget_s"] is None


def test_a_locked_run_folder_refuses_a_second_run_and_a_crashed_owner_leaves_it_free(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen(  # another run holding the folder
        [sys.executable, "-c", "import sys, time; from repose_ext.training.run_lock import RunLock; "
         f"RunLock({str(run)!r}).acquire(); print('locked', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "locked"
        config = tmp_path / "aug.yaml"
        config.write_text("name: aug\n")
        args = ["--config", str(config), "--run-dir", str(run), "--no-progress"] + augmented_overrides(tmp_path)
        assert cli_main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: run folder {run} is in use by process {holder.pid} on ") and \
            err.count("\n") == 1
        assert sorted(os.listdir(run)) == [".lock"]  # nothing written by the refused run
    finally:
        holder.kill()  # a crash: no cleanup, the lock file stays behind
        holder.wait()
    assert (run / ".lock").exists()
    assert cli_main(args) == 0  # the dead owner holds no lock: the folder is taken over
    assert not (run / ".lock").exists() and (run / "summary.json").exists()  # released at the end


def test_resuming_from_a_damaged_checkpoint_is_refused_naming_an_intact_one(tmp_path, capsys):
    config = tmp_path / "aug.yaml"
    config.write_text("name: aug\n")
    run = tmp_path / "run"
    args = ["--config", str(config), "--run-dir", str(run), "--no-progress"] + augmented_overrides(tmp_path)
    assert cli_main(args) == 0
    latest = run / "latest.pt"
    latest.write_bytes(latest.read_bytes()[:1000])  # a write cut short
    capsys.readouterr()
    assert cli_main(["--resume", str(latest), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"^error: checkpoint .*latest.pt cannot be read .*newest intact checkpoint beside it is "
                     r".*(best|model).pt\n$", err), err


def test_log_csv_is_rebuilt_from_the_checkpoint_and_leftovers_are_removed(tmp_path):
    overrides = augmented_overrides(tmp_path, **{"train.epochs": 2})
    run = tmp_path / "run"
    train(load_config(None, overrides), run_dir=str(run), progress=False)
    with open(run / "log.csv", encoding="utf-8") as f:
        full = f.read()
    assert [line.split(",")[0] for line in full.splitlines()[1:]] == ["1", "2"]
    ckpt = load_checkpoint(str(run / "latest.pt"))
    # a kill could have left an empty log and unfinished temporary files: resuming repairs both
    (run / "log.csv").write_text("")
    (run / ".latest.pt.abc.tmp").write_bytes(b"")
    (run / ".log.csv.abc.tmp").write_bytes(b"")
    train(load_config(None, augmented_overrides(tmp_path, **{"train.epochs": 3})), run_dir=str(run),
          resume=str(run / "latest.pt"), progress=False)
    with open(run / "log.csv", encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert lines[:3] == full.splitlines()[:3] and lines[3].startswith("3,")
    assert not [p for p in os.listdir(run) if p.endswith(".tmp")]
    assert [r["epoch"] for r in ckpt["log_rows"]] == [1, 2]


def test_the_trainer_flips_inputs_and_targets_together(tmp_path, monkeypatch):
    from repose_ext.data.skeleton import H36M_LEFT, H36M_RIGHT
    from repose_ext.training import trainer as trainer_module

    seen = {"flip": [], "model": [], "target": []}
    original_flip = trainer_module.random_flip

    def recording_flip(inputs, target, *args, **kwargs):
        out = original_flip(inputs, target, *args, **kwargs)
        seen["flip"].append((inputs.clone(), target.clone(), out[0].clone(), out[1].clone()))
        return out

    original_call = PoseObjective.__call__

    def recording_call(self, pred, target):
        seen["target"].append(target.detach().clone())
        return original_call(self, pred, target)

    monkeypatch.setattr(trainer_module, "random_flip", recording_flip)
    monkeypatch.setattr(PoseObjective, "__call__", recording_call)
    config = load_config(None, augmented_overrides(tmp_path, **{"train.flip_p": 1.0, "eval.every": 0}))
    trainer = trainer_module.Trainer(config, run_dir=str(tmp_path / "run"), progress=False)
    trainer.model.register_forward_pre_hook(lambda m, args: seen["model"].append(args[0].detach().clone())
                                            if m.training else None)
    try:
        trainer.train_epoch()
    finally:
        trainer.close()
    assert len(seen["flip"]) == len(seen["target"]) == 2  # 8 samples, batch 4
    for (inp, tgt, inp_out, tgt_out), model_in, target in zip(seen["flip"], seen["model"], seen["target"]):
        torch.testing.assert_close(inp_out, flip_pose(inp, H36M_LEFT, H36M_RIGHT))  # x negated, sides swapped
        torch.testing.assert_close(tgt_out, flip_pose(tgt, H36M_LEFT, H36M_RIGHT))
        torch.testing.assert_close(model_in, inp_out)  # the model sees the flipped input ...
        torch.testing.assert_close(target, tgt_out)  # ... and is scored against the flipped target
        assert not torch.equal(inp_out, inp)


def test_two_separate_processes_train_bit_identical_weights(tmp_path):
    config = tmp_path / "aug.yaml"
    config.write_text("name: aug\n")
    digests = []
    for name in ("p1", "p2"):
        run = tmp_path / name
        cmd = [sys.executable, "-m", "repose_ext.training.cli", "--config", str(config), "--run-dir", str(run),
               "--no-progress"] + augmented_overrides(tmp_path, **{"train.epochs": 2})
        subprocess.run(cmd, check=True, capture_output=True, cwd=REPO, timeout=300)
        digests.append(json.loads((run / "summary.json").read_text())["weights_digest_by_rank"])
    assert digests[0] == digests[1]


def _cli_run(tmp_path, run_dir, *extra, env=None):
    """``python -m repose_ext.training.cli`` of the tiny augmented run (2 epochs) in a separate process."""
    config = tmp_path / "aug.yaml"
    config.write_text("name: aug\n")
    cmd = [sys.executable, "-m", "repose_ext.training.cli", "--run-dir", str(run_dir), "--no-progress"]
    cmd += list(extra) if extra else ["--config", str(config)] + augmented_overrides(
        tmp_path, **{"train.epochs": 2, "eval.every": 1, "train.checkpoint_every": 1})
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300,
                          env=dict(os.environ, **(env or {}))).returncode


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("straight")
    assert _cli_run(tmp_path, tmp_path / "run") == 0
    return tmp_path / "run"


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["text_tmp:1", "checkpoint_tmp:1", "after_csv:1", "after_best:1",
                                   "after_latest:1", "checkpoint_tmp:3", "before_summary:1"])
def test_a_run_killed_at_any_write_recovers_to_the_uninterrupted_result(tmp_path, straight_run, fault):
    crashed = tmp_path / "crashed"
    assert _cli_run(tmp_path, crashed, env={"REPOSE_FAULT": fault}) == 91  # died there, no cleanup
    # what a user does next: resume if there is a checkpoint, else start the same run again
    latest = crashed / "latest.pt"
    assert (_cli_run(tmp_path, crashed, "--resume", str(latest)) if latest.exists()
            else _cli_run(tmp_path, crashed)) == 0
    straight = json.loads((straight_run / "summary.json").read_text())
    recovered = json.loads((crashed / "summary.json").read_text())
    assert recovered["weights_digest_by_rank"] == straight["weights_digest_by_rank"]
    assert recovered["best"] == straight["best"]
    assert load_checkpoint(str(crashed / "best.pt"))["epoch"] == recovered["best"]["epoch"]
    no_time = lambda text: [line.split(",")[:3] + line.split(",")[4:] for line in text.splitlines()]  # noqa: E731
    assert no_time((crashed / "log.csv").read_text()) == no_time((straight_run / "log.csv").read_text())
    assert not [p for p in os.listdir(crashed) if p.endswith(".tmp") or p == ".lock"]
    assert [load_checkpoint(str(crashed / f"epoch_000{e}.pt"))["epoch"] for e in (1, 2)] == [1, 2]  # no gaps


# ---------------------------------------------------------------------------------------------------------------
# Weight averaging (train.ema_decay)


def test_weight_average_follows_its_recursion_for_parameters_and_batchnorm_statistics():
    from repose_ext.training.weight_average import WeightAverage

    live = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    with torch.no_grad():
        for v in live.state_dict().values():
            v.fill_(0.5) if v.is_floating_point() else v.fill_(0)
    average = WeightAverage(live, decay=0.8)
    expected, counter = 0.5, 0
    for step, value in enumerate([1.0, -2.0, 3.0, 0.25, 7.0, 1.5, -1.0, 2.0, 0.0, 4.0, 5.0, 6.0]):
        with torch.no_grad():
            for v in live.state_dict().values():
                v.fill_(value) if v.is_floating_point() else v.fill_(step + 1)
        average.update(live)
        d = min(0.8, (1 + step) / (10 + step))  # warm-up decay first, 0.8 once (1 + t) / (10 + t) passes it
        expected, counter = d * expected + (1 - d) * value, step + 1
    for name, v in average.model.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(v, torch.full_like(v, expected), atol=1e-6), name
        else:
            assert int(v) == counter, name  # integer counters are copied, not averaged
    assert all(float(v.flatten()[0]) == 6.0 for v in live.state_dict().values() if v.is_floating_point())
    assert not any(p.requires_grad for p in average.model.parameters()) and not average.model.training
    assert average.state() == {"decay": 0.8, "steps": 12}
    with pytest.raises(ValueError, match="decay must be in \\(0, 1\\); got 1.0"):
        WeightAverage(live, 1.0)


def test_an_averaged_run_evaluates_and_exports_the_average_trains_as_before_and_resumes_exactly(tmp_path,
                                                                                                  capsys):
    overrides = {"train.epochs": 2, "data.options": json.dumps({"epoch_size": 24, "wild_draws": 1})}
    plain = train(load_config(None, augmented_overrides(tmp_path, **overrides)), run_dir=str(tmp_path / "plain"),
                  progress=False)
    averaged = load_config(None, augmented_overrides(tmp_path, **overrides, **{"train.ema_decay": 0.9}))
    straight = train(averaged, run_dir=str(tmp_path / "ema"), progress=False)
    latest = load_checkpoint(tmp_path / "ema" / "latest.pt")
    assert latest["weight_average"] == {"decay": 0.9, "steps": 12}  # 2 epochs of 24 samples in batches of 4
    # Averaging does not change training: the live weights are those of the same run without it ...
    _state_equal(latest["train_weights"], load_checkpoint(tmp_path / "plain" / "latest.pt")["model_pos"])
    assert plain["weights_digest_by_rank"] == straight["weights_digest_by_rank"]
    # ... while the checkpoint's model, the export and the evaluation are the average, which differs from them.
    assert not all(torch.equal(latest["model_pos"][k], latest["train_weights"][k]) for k in latest["model_pos"])
    _state_equal(load_checkpoint(tmp_path / "ema" / "model.pt")["model_pos"], latest["model_pos"])
    assert straight["final"]["summary"]["mpjpe"] != plain["final"]["summary"]["mpjpe"]
    capsys.readouterr()
    assert cli_main(["--eval-only", "--checkpoint", str(tmp_path / "ema" / "latest.pt"), "--no-progress"]) == 0
    assert f"{straight['final']['summary']['mpjpe']:.2f}" in capsys.readouterr().out

    one = load_config(None, augmented_overrides(tmp_path, **{**overrides, "train.ema_decay": 0.9, "train.epochs": 1}))
    train(one, run_dir=str(tmp_path / "resumed"), progress=False)
    assert cli_main(["--resume", str(tmp_path / "resumed"), "train.epochs=2", "--no-progress"]) == 0
    resumed = load_checkpoint(tmp_path / "resumed" / "latest.pt")
    _state_equal(resumed["model_pos"], latest["model_pos"])
    _state_equal(resumed["train_weights"], latest["train_weights"])
    assert resumed["weight_average"] == latest["weight_average"]

    # Resuming with another decay (or none) is refused, naming the setting.
    for value in ("null", "0.5"):
        capsys.readouterr()
        assert cli_main(["--resume", str(tmp_path / "resumed"), "train.epochs=3", f"train.ema_decay={value}",
                         "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: train.ema_decay: the checkpoint to resume from was written with 0.9, this "
                              "run has ") and err.count("\n") == 1, err
    assert cli_main(["--resume", str(tmp_path / "plain"), "train.epochs=3", "train.ema_decay=0.9",
                     "--no-progress"]) == 2
    assert "written with None, this run has 0.9" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"train.ema_decay must be null or a number in \(0, 1\); got 1"):
        load_config(None, ["train.ema_decay=1"])
