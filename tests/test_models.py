"""Tests of the DSTformer lifter, its presets and checkpoint I/O (CPU, small shapes)."""

import os
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from repose_ext.models import (
    PRESETS,
    DSTformer,
    build_model,
    load_checkpoint,
    load_model_weights,
    model_config,
    save_checkpoint,
    strip_prefixes,
)
from repose_ext.models.dstformer import Attention, DSTBlock

RELEASED_LIST = Path(__file__).parent / "data" / "released_model_state_dict.txt"
RELEASED_PARAMS = 16_001_549  # stated with the released list (spec); checked independently below


def _released_entries():
    entries = []
    for line in RELEASED_LIST.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"(\S+) \(([\d, ]*)\)", line.strip())
        assert match, f"unparsable line {line!r}"
        shape = tuple(int(s) for s in match.group(2).replace(" ", "").split(",") if s)
        entries.append((match.group(1), shape))
    return entries


def _expected_params(dim_in, dim_out, dim_feat, dim_rep, depth, mlp_ratio, num_joints, maxlen, **_):
    """Parameter count from the architecture description, written out by hand."""
    c, h = dim_feat, int(dim_feat * mlp_ratio)
    layer_norm = 2 * c
    attention = (3 * c * c + 3 * c) + (c * c + c)
    mlp = (c * h + h) + (h * c + c)
    block = 4 * layer_norm + 2 * attention + 2 * mlp
    fuse = 2 * c * 2 + 2
    return (maxlen * c + num_joints * c + (dim_in * c + c) + 2 * depth * block + depth * fuse + layer_norm
            + (c * dim_rep + dim_rep) + (dim_rep * dim_out + dim_out))


@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    return build_model("small").eval()


# ---------------------------------------------------------------- released layout


def test_released_list_file_has_260_tensors_and_the_stated_count():
    entries = _released_entries()
    assert len(entries) == 260
    total = 0
    for _, shape in entries:
        n = 1
        for s in shape:
            n *= s
        total += n
    assert total == RELEASED_PARAMS


def test_repose_preset_state_dict_equals_released_list():
    with torch.device("meta"):  # shapes only; no 16M-parameter initialisation
        model = build_model("repose")
    ours = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert ours == _released_entries()  # same keys, same shapes, same order
    assert sum(p.numel() for p in model.parameters()) == RELEASED_PARAMS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_parameter_counts_match_the_architecture_formula(name):
    with torch.device("meta"):
        model = build_model(name)
    assert sum(p.numel() for p in model.parameters()) == _expected_params(**PRESETS[name])


def test_formula_reproduces_released_count_and_motionbert_size():
    assert _expected_params(**PRESETS["repose"]) == RELEASED_PARAMS
    assert 42.4e6 < _expected_params(**PRESETS["motionbert"]) < 42.6e6  # spec: ~42.5 M


def test_released_format_checkpoint_loads_strict_into_repose_preset(tmp_path):
    # A file of the authors' layout: {"model_pos": {"module." + key: tensor}} plus training bookkeeping.
    torch.manual_seed(1)
    state = {"module." + k: torch.randn(shape) for k, shape in _released_entries()}
    path = tmp_path / "best_epoch.bin"
    torch.save({"epoch": 7, "lr": 1e-4, "min_loss": 40.0, "model_pos": state}, path)
    model = build_model("repose")
    ckpt = load_model_weights(model, path)
    assert ckpt["epoch"] == 7 and ckpt["missing_keys"] == [] and ckpt["unexpected_keys"] == []
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, state["module." + k], rtol=0, atol=0)
    out = model.eval()(torch.randn(1, 2, 17, 3))
    assert out.shape == (1, 2, 17, 3) and torch.isfinite(out).all()


# ---------------------------------------------------------------- forward pass


def test_forward_shapes_short_clip(small):
    x = torch.randn(2, 5, 17, 3)
    y = small(x)
    assert y.shape == (2, 5, 17, 3) and y.dtype == torch.float32 and torch.isfinite(y).all()
    rep = small(x, return_rep=True)
    assert rep.shape == (2, 5, 17, 128)
    assert rep.abs().max() <= 1.0  # Tanh representation


def test_forward_full_length_and_single_frame():
    model = build_model("small", depth=1).eval()
    assert model(torch.randn(1, 243, 17, 3)).shape == (1, 243, 17, 3)
    assert model(torch.randn(3, 1, 17, 3)).shape == (3, 1, 17, 3)


def test_repose_preset_forward_tiny_clip():
    torch.manual_seed(0)
    model = build_model("repose").eval()
    y = model(torch.randn(1, 3, 17, 3))
    assert y.shape == (1, 3, 17, 3) and torch.isfinite(y).all()


@pytest.mark.parametrize(
    "shape, pattern",
    [
        ((2, 5, 16, 3), r"x must have shape \(B, T, 17, 3\); got \(2, 5, 16, 3\)"),
        ((2, 5, 17, 2), r"x must have shape \(B, T, 17, 3\); got \(2, 5, 17, 2\)"),
        ((5, 17, 3), r"x must have shape \(B, T, 17, 3\); got \(5, 17, 3\)"),
        ((1, 244, 17, 3), r"T=244 frames, more than maxlen=243"),
    ],
)
def test_forward_rejects_bad_shapes(small, shape, pattern):
    with pytest.raises(ValueError, match=pattern):
        small(torch.zeros(shape))


def test_forward_rejects_integer_input(small):
    with pytest.raises(TypeError, match="floating-point"):
        small(torch.zeros(1, 2, 17, 3, dtype=torch.long))


def test_fusion_initialisation_and_equal_mix_at_init():
    torch.manual_seed(0)
    fused = build_model("small").eval()
    for layer in fused.ts_attn:
        assert torch.all(layer.weight == 0) and torch.all(layer.bias == 0.5)
    averaged = build_model("small", att_fuse=False).eval()
    assert not any(k.startswith("ts_attn") for k in averaged.state_dict())
    state = {k: v for k, v in fused.state_dict().items() if not k.startswith("ts_attn")}
    averaged.load_state_dict(state, strict=True)
    x = torch.randn(2, 4, 17, 3)
    # Zero weights and equal biases give softmax weights (0.5, 0.5): the plain average of the two streams.
    torch.testing.assert_close(fused(x), averaged(x))
    # Once the fusion weights move, the outputs differ.
    with torch.no_grad():
        fused.ts_attn[0].weight.normal_()
    assert not torch.allclose(fused(x), averaged(x))


def test_attention_equals_torch_multihead_attention():
    torch.manual_seed(0)
    ours = Attention(dim=16, num_heads=4).eval()
    ref = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(ours.qkv.weight)
        ref.in_proj_bias.copy_(ours.qkv.bias)
        ref.out_proj.weight.copy_(ours.proj.weight)
        ref.out_proj.bias.copy_(ours.proj.bias)
    x = torch.randn(6, 7, 16)
    expected, _ = ref(x, x, x, need_weights=False)
    torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-6)
    # Extra leading dimensions are batch dimensions.
    torch.testing.assert_close(ours(x.view(2, 3, 7, 16)), expected.view(2, 3, 7, 16), rtol=1e-5, atol=1e-6)


def test_spatial_mixes_joints_within_a_frame_and_temporal_frames_within_a_joint():
    torch.manual_seed(0)
    block = DSTBlock(dim=8, num_heads=2, mlp_ratio=2.0, order="st").eval()
    x = torch.randn(1, 4, 5, 8)
    x2 = x.clone()
    x2[0, 1, 2] += torch.randn(8)  # frame 1, joint 2 (not a constant shift: LayerNorm would remove it)
    ds = (block.spatial(x2) - block.spatial(x)).abs().sum(dim=-1)[0]  # (T, J)
    assert torch.all(ds[[0, 2, 3]] == 0) and torch.all(ds[1] > 0)  # only frame 1, all of its joints
    dt = (block.temporal(x2) - block.temporal(x)).abs().sum(dim=-1)[0]
    assert torch.all(dt[:, [0, 1, 3, 4]] == 0) and torch.all(dt[:, 2] > 0)  # only joint 2, all frames


def test_block_orders_differ():
    torch.manual_seed(0)
    st = DSTBlock(8, 2, 2.0, "st").eval()
    ts = DSTBlock(8, 2, 2.0, "ts").eval()
    ts.load_state_dict(st.state_dict())
    x = torch.randn(1, 3, 4, 8)
    torch.testing.assert_close(st(x), st.temporal(st.spatial(x)))
    torch.testing.assert_close(ts(x), st.spatial(st.temporal(x)))
    assert not torch.allclose(st(x), ts(x))
    with pytest.raises(ValueError, match="order must be 'st' or 'ts'"):
        DSTBlock(8, 2, 2.0, "sts")


def test_short_clip_uses_only_the_first_rows_of_the_temporal_embedding(small):
    x = torch.randn(1, 6, 17, 3)
    before = small(x)
    model = build_model("small").eval()
    model.load_state_dict(small.state_dict())
    with torch.no_grad():
        model.temp_embed[:, 6:] = 1e3
    torch.testing.assert_close(model(x), before, rtol=0, atol=0)
    with torch.no_grad():
        model.temp_embed[:, 5] += 1.0
    assert not torch.allclose(model(x), before)


def test_embeddings_break_permutation_equivariance():
    torch.manual_seed(0)
    model = build_model("small", depth=2).eval()
    x = torch.randn(1, 5, 17, 3)
    frame_perm = torch.tensor([3, 0, 4, 1, 2])
    joint_perm = torch.randperm(17)
    # With learned embeddings, order matters.
    assert not torch.allclose(model(x[:, frame_perm]), model(x)[:, frame_perm], atol=1e-5)
    assert not torch.allclose(model(x[:, :, joint_perm]), model(x)[:, :, joint_perm], atol=1e-5)
    # Without them, attention is permutation-equivariant over frames and joints.
    with torch.no_grad():
        model.temp_embed.zero_()
        model.pos_embed.zero_()
    torch.testing.assert_close(model(x[:, frame_perm]), model(x)[:, frame_perm], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(model(x[:, :, joint_perm]), model(x)[:, :, joint_perm], rtol=1e-4, atol=1e-5)


def test_every_parameter_gets_a_gradient(small):
    model = build_model("small", depth=2)
    model.train()
    model(torch.randn(2, 4, 17, 3)).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []
    assert model.ts_attn[0].weight.grad.abs().sum() > 0


def test_drop_path_is_active_in_training_only():
    torch.manual_seed(0)
    model = build_model("small", depth=2, drop_path_rate=0.5)
    assert [b.drop_path.p for b in model.blocks_st] == [0.0, 0.5]
    x = torch.randn(8, 3, 17, 3)
    model.eval()
    torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)
    model.train()
    torch.manual_seed(1)
    a = model(x)
    torch.manual_seed(2)
    b = model(x)
    assert not torch.allclose(a, b)


def test_layer_norm_eps_and_init_statistics():
    torch.manual_seed(0)
    model = build_model("small")
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    assert norms and all(m.eps == 1e-6 for m in norms)
    for emb in (model.temp_embed, model.pos_embed):
        # trunc-normal with std 0.02, cut at +-2 (absolute, as timm / MotionBERT): in effect a normal(0, 0.02)
        assert 0.018 < emb.std().item() < 0.022 and abs(emb.mean().item()) < 0.002
    assert torch.all(model.head.bias == 0)


# ---------------------------------------------------------------- factory


def test_build_model_presets_and_overrides():
    assert model_config("repose")["dim_feat"] == 256 and model_config("repose")["mlp_ratio"] == 4.0
    assert model_config("motionbert")["dim_feat"] == 512 and model_config("motionbert")["mlp_ratio"] == 2.0
    cfg = model_config({"preset": "small", "depth": 2}, maxlen=81)
    assert cfg["depth"] == 2 and cfg["maxlen"] == 81 and cfg["dim_feat"] == 64
    model = build_model({"dim_feat": 16, "dim_rep": 0, "depth": 1, "num_heads": 2, "maxlen": 9})
    assert isinstance(model, DSTformer) and isinstance(model.pre_logits, nn.Identity)
    assert model.temp_embed.shape == (1, 9, 1, 16) and model.head.in_features == 16


def test_build_model_errors():
    with pytest.raises(ValueError, match=r"preset must be one of \['motionbert', 'repose', 'simple_baseline', 'small', 'tcn243', 'tcn27', 'tcn81', "
                       r"'tcn81_cpu'\]; got 'lite'"):
        build_model("lite")
    with pytest.raises(ValueError, match=r"unknown DSTformer argument\(s\) \['dim'\]"):
        build_model({"preset": "small", "dim": 3})
    with pytest.raises(ValueError, match="dim must be divisible by num_heads"):
        build_model("small", num_heads=5)
    with pytest.raises(ValueError, match="depth must be a positive int; got 0"):
        build_model("small", depth=0)


# ---------------------------------------------------------------- checkpoints


def test_strip_prefixes():
    sd = {"module.a.weight": 1, "module._orig_mod.b": 2, "c": 3}
    assert list(strip_prefixes(sd).items()) == [("a.weight", 1), ("b", 2), ("c", 3)]


def test_our_checkpoint_round_trip(tmp_path, small):
    model = build_model("small")
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)
    model(torch.randn(1, 2, 17, 3)).sum().backward()
    optimizer.step()
    path = tmp_path / "ckpt" / "latest.pt"
    save_checkpoint(path, nn.DataParallel(model), optimizer=optimizer, epoch=3, config={"model": "small"},
                    metrics={"mpjpe": 41.5}, extra={"step": 120})
    assert sorted(os.listdir(path.parent)) == ["latest.pt"]  # no temporary file left behind
    ckpt = load_checkpoint(path)
    assert ckpt["format"] == "repose_ext" and ckpt["epoch"] == 3 and ckpt["step"] == 120
    assert ckpt["config"] == {"model": "small"} and ckpt["metrics"] == {"mpjpe": 41.5}
    assert all(not k.startswith("module.") for k in ckpt["model_pos"])  # wrapper removed
    fresh = build_model("small")
    load_model_weights(fresh, ckpt)
    for (k, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        assert torch.equal(a, b), k
    opt2 = torch.optim.AdamW(fresh.parameters(), lr=2e-4)
    opt2.load_state_dict(ckpt["optimizer"])
    assert opt2.state_dict()["state"][0]["step"] == 1


def test_save_replaces_atomically_and_keeps_old_file_on_failure(tmp_path, small):
    path = tmp_path / "best.pt"
    save_checkpoint(path, small, epoch=1)
    save_checkpoint(path, small, epoch=2)
    assert load_checkpoint(path)["epoch"] == 2
    with pytest.raises(Exception):
        save_checkpoint(path, small, epoch=3, extra={"bad": lambda: 0})  # not picklable
    assert load_checkpoint(path)["epoch"] == 2
    assert sorted(os.listdir(tmp_path)) == ["best.pt"]
    with pytest.raises(ValueError, match=r"reserved keys \['epoch'\]"):
        save_checkpoint(path, small, epoch=4, extra={"epoch": 5})


def test_load_bare_state_dict_file(tmp_path, small):
    path = tmp_path / "weights.pth"
    torch.save({"module." + k: v for k, v in small.state_dict().items()}, path)
    fresh = build_model("small")
    load_model_weights(fresh, path)
    torch.testing.assert_close(fresh.state_dict(), small.state_dict(), rtol=0, atol=0)


def test_mismatched_checkpoint_errors_list_the_keys(tmp_path, small):
    state = {"module." + k: v for k, v in small.state_dict().items()}
    del state["module.head.bias"]
    state["module.extra.weight"] = torch.zeros(2)
    state["module.norm.weight"] = torch.zeros(5)
    path = tmp_path / "bad.bin"
    torch.save({"model_pos": state}, path)
    model = build_model("small")
    with pytest.raises(RuntimeError) as info:
        load_model_weights(model, path)
    message = str(info.value)
    assert "missing keys (1): head.bias" in message
    assert "unexpected keys (1): extra.weight" in message
    assert "shape mismatches (1): norm.weight: checkpoint (5,) vs model (64,)" in message
    ckpt = load_model_weights(model, path, strict=False)
    assert sorted(ckpt["missing_keys"]) == ["head.bias", "norm.weight"]
    assert ckpt["unexpected_keys"] == ["extra.weight"]
    torch.testing.assert_close(model.joints_embed.weight, small.joints_embed.weight, rtol=0, atol=0)


def test_wrong_preset_checkpoint_is_refused(tmp_path, small):
    path = tmp_path / "small.bin"
    save_checkpoint(path, small)
    with torch.device("meta"):
        big = build_model("repose")
    with pytest.raises(RuntimeError, match="shape mismatches"):
        load_model_weights(big, path)


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint file not found"):
        load_checkpoint(tmp_path / "nope.bin")
    path = tmp_path / "odd.bin"
    torch.save({"epoch": 1, "weights": [1, 2]}, path)
    with pytest.raises(ValueError, match="must hold a dict with key 'model_pos'"):
        load_checkpoint(path)


def test_checkpoints_carry_a_content_hash_and_bad_files_name_an_intact_one(tmp_path):
    import struct

    from repose_ext.models.checkpoint import CheckpointError, load_checkpoint

    model = build_model({"preset": "simple_baseline", "width": 16})
    with torch.no_grad():
        model.out.weight.fill_(1234.5)  # a byte pattern to find in the file
    save_checkpoint(tmp_path / "epoch_0001.pt", model, epoch=1)
    save_checkpoint(tmp_path / "latest.pt", model, epoch=2, metrics={"mpjpe": 1.5})
    assert load_checkpoint(tmp_path / "latest.pt")["epoch"] == 2  # intact: loads, digest removed
    assert "integrity_sha256" not in load_checkpoint(tmp_path / "latest.pt")
    raw = bytearray((tmp_path / "latest.pt").read_bytes())
    at = raw.find(struct.pack("<f", 1234.5) * 4)
    assert at > 0
    raw[at + 1] ^= 0xFF  # one flipped byte inside a weight: torch.load alone would not notice
    (tmp_path / "latest.pt").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=r"latest.pt is corrupt .*SHA-256.*newest intact checkpoint beside it "
                                              r"is .*epoch_0001.pt"):
        load_checkpoint(tmp_path / "latest.pt")
    (tmp_path / "latest.pt").write_bytes(bytes(raw[: len(raw) // 2]))  # truncated
    with pytest.raises(CheckpointError, match=r"latest.pt cannot be read .*epoch_0001.pt"):
        load_checkpoint(tmp_path / "latest.pt")
    (tmp_path / "latest.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(tmp_path / "latest.pt")
