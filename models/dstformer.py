"""DSTformer: the dual-stream spatio-temporal transformer lifter of MotionBERT, as released with RePOSE.

Architecture (MotionBERT, Zhu et al., ICCV 2023; RePOSE's ``lib/model/RePOSE.py`` is the same network):

* Each input keypoint ``(x, y, confidence)`` is embedded by a Linear layer to ``dim_feat``; a learned joint
  embedding ``pos_embed`` (1, J, C) and a learned temporal embedding ``temp_embed`` (1, maxlen, 1, C) are added
  (a clip of T < maxlen frames uses the first T rows).
* ``depth`` layers. Each layer runs two transformer blocks on the same input: ``blocks_st[i]`` applies spatial
  attention (over the J joints of each frame) then temporal attention (over the T frames of each joint);
  ``blocks_ts[i]`` applies them in the other order. Every attention/MLP sub-layer is pre-norm with a residual.
  The two outputs are fused per token by a learned 2-way softmax: ``ts_attn[i]`` is a Linear(2C -> 2) on the
  concatenated features, initialised to weight 0 and bias 0.5 (an equal mix at the start of training).
* A final LayerNorm, ``pre_logits`` = Linear(dim_feat -> dim_rep) + Tanh (the "motion representation"), and a
  Linear head to the 3 output coordinates.

All LayerNorms use eps 1e-6; Linear weights are trunc-normal (std 0.02) with zero bias, the embeddings
trunc-normal (std 0.02). Parameter names follow the released checkpoint, so the authors' ``best_epoch.bin``
loads with ``strict=True`` (see :mod:`repose_ext.models.checkpoint`).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from .._shapes import shape_str as _shape

_LN_EPS = 1e-6



class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch of a sample with probability ``p`` (training only).

    Args:
        p: drop probability in [0, 1). Kept samples are rescaled by 1 / (1 - p).
    """

    def __init__(self, p: float = 0.0):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop path probability must be in [0, 1); got {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Mlp(nn.Module):
    """Two-layer perceptron ``fc2(drop(GELU(fc1(x))))`` followed by dropout.

    Args:
        dim: input and output width.
        hidden_dim: width of the hidden layer.
        drop: dropout probability after each layer.
    """

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Attention(nn.Module):
    """Standard multi-head self-attention over the second-to-last axis.

    The ``qkv`` projection's output rows are laid out as (3, num_heads, head_dim): query, key and value, each
    split into heads, the layout of the released checkpoint. Scores are scaled by head_dim ** -0.5.

    Args:
        dim: token width C (divisible by ``num_heads``).
        num_heads: number of heads.
        qkv_bias: whether the qkv projection has a bias.
        attn_drop: dropout on the attention probabilities (training only).
        proj_drop: dropout after the output projection.

    Shape:
        x: (..., L, C), attention among the L tokens of each leading index. Returns (..., L, C).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0):
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"dim must be divisible by num_heads; got dim={dim}, num_heads={num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.attn_drop = float(attn_drop)
        # Registration order (proj before qkv) matches the released state dict.
        self.proj = nn.Linear(dim, dim)
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *lead, length, dim = x.shape
        qkv = self.qkv(x).reshape(*lead, length, 3, self.num_heads, self.head_dim)
        qkv = qkv.movedim(-3, 0).transpose(-3, -2)  # (3, ..., heads, L, head_dim)
        q, k, v = qkv.unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        out = out.transpose(-3, -2).reshape(*lead, length, dim)
        return self.proj_drop(self.proj(out))


class DSTBlock(nn.Module):
    """One stream of a DSTformer layer: spatial and temporal attention sub-blocks in a fixed order.

    Each sub-block is ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))`` (pre-norm, residual, optional drop path).
    Spatial attention mixes the J joints of one frame; temporal attention mixes the T frames of one joint.

    Args:
        dim: feature width C.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width = ``int(dim * mlp_ratio)``.
        order: ``"st"`` (spatial then temporal) or ``"ts"`` (temporal then spatial).
        qkv_bias, drop, attn_drop, drop_path: as in :class:`Attention`, :class:`Mlp` and :class:`DropPath`.

    Shape:
        x: (B, T, J, C). Returns (B, T, J, C).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, order: str, qkv_bias: bool = True,
                 drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0):
        super().__init__()
        if order not in ("st", "ts"):
            raise ValueError(f"order must be 'st' or 'ts'; got {order!r}")
        self.order = order
        hidden = int(dim * mlp_ratio)
        # Registration order matches the released state dict.
        self.norm1_s = nn.LayerNorm(dim, eps=_LN_EPS)
        self.norm1_t = nn.LayerNorm(dim, eps=_LN_EPS)
        self.attn_s = Attention(dim, num_heads, qkv_bias, attn_drop, drop)
        self.attn_t = Attention(dim, num_heads, qkv_bias, attn_drop, drop)
        self.drop_path = DropPath(drop_path)
        self.norm2_s = nn.LayerNorm(dim, eps=_LN_EPS)
        self.norm2_t = nn.LayerNorm(dim, eps=_LN_EPS)
        self.mlp_s = Mlp(dim, hidden, drop)
        self.mlp_t = Mlp(dim, hidden, drop)

    def spatial(self, x: torch.Tensor) -> torch.Tensor:
        """Spatial sub-block: attention over joints within each frame. x: (B, T, J, C)."""
        x = x + self.drop_path(self.attn_s(self.norm1_s(x)))
        return x + self.drop_path(self.mlp_s(self.norm2_s(x)))

    def temporal(self, x: torch.Tensor) -> torch.Tensor:
        """Temporal sub-block: attention over frames for each joint. x: (B, T, J, C)."""
        x = x + self.drop_path(self.attn_t(self.norm1_t(x).transpose(1, 2)).transpose(1, 2))
        return x + self.drop_path(self.mlp_t(self.norm2_t(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.order == "st":
            return self.temporal(self.spatial(x))
        return self.spatial(self.temporal(x))


class DSTformer(nn.Module):
    """Dual-stream spatio-temporal transformer that lifts 2D keypoint sequences to 3D.

    Args:
        dim_in: input channels per joint (3: x, y, confidence).
        dim_out: output channels per joint (3: x, y, z).
        dim_feat: transformer width C.
        dim_rep: width of the ``pre_logits`` representation (Linear + Tanh); 0 or None skips it (the head then
            reads the ``dim_feat`` features directly).
        depth: number of dual-stream layers.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width / C.
        num_joints: J.
        maxlen: longest clip; the temporal embedding has this many rows.
        qkv_bias: bias in the qkv projections.
        drop_rate: dropout after embeddings, attention projections and MLP layers.
        attn_drop_rate: dropout on the attention probabilities.
        drop_path_rate: stochastic depth, rising linearly from 0 at the first layer to this value at the last.
        att_fuse: fuse the two streams with the learned per-token softmax ``ts_attn`` (the released model);
            False averages them (no ``ts_attn`` parameters).

    Shape:
        x: (B, T, J, dim_in) with T <= maxlen and J = num_joints. Returns (B, T, J, dim_out), or the
        representation (B, T, J, dim_rep) with ``return_rep=True``.
    """

    def __init__(self, dim_in: int = 3, dim_out: int = 3, dim_feat: int = 256, dim_rep: Optional[int] = 512,
                 depth: int = 5, num_heads: int = 8, mlp_ratio: float = 4.0, num_joints: int = 17,
                 maxlen: int = 243, qkv_bias: bool = True, drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0, att_fuse: bool = True):
        super().__init__()
        for name, value in (("dim_in", dim_in), ("dim_out", dim_out), ("dim_feat", dim_feat), ("depth", depth),
                            ("num_heads", num_heads), ("num_joints", num_joints), ("maxlen", maxlen)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int; got {value!r}")
        if dim_rep is not None and (isinstance(dim_rep, bool) or not isinstance(dim_rep, int) or dim_rep < 0):
            raise ValueError(f"dim_rep must be a non-negative int or None; got {dim_rep!r}")
        if not mlp_ratio > 0:
            raise ValueError(f"mlp_ratio must be > 0; got {mlp_ratio!r}")
        self.dim_in = dim_in
        self.dim_out = dim_out
        self.dim_feat = dim_feat
        self.num_joints = num_joints
        self.maxlen = maxlen
        self.att_fuse = att_fuse

        # Registration order matches the released state dict: temp_embed, pos_embed, joints_embed, blocks_st,
        # blocks_ts, norm, pre_logits, head, ts_attn.
        self.temp_embed = nn.Parameter(torch.zeros(1, maxlen, 1, dim_feat))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_joints, dim_feat))
        self.joints_embed = nn.Linear(dim_in, dim_feat)
        self.pos_drop = nn.Dropout(drop_rate)
        drop_paths = [drop_path_rate * i / (depth - 1) if depth > 1 else 0.0 for i in range(depth)]
        self.blocks_st = nn.ModuleList(
            DSTBlock(dim_feat, num_heads, mlp_ratio, "st", qkv_bias, drop_rate, attn_drop_rate, dp)
            for dp in drop_paths
        )
        self.blocks_ts = nn.ModuleList(
            DSTBlock(dim_feat, num_heads, mlp_ratio, "ts", qkv_bias, drop_rate, attn_drop_rate, dp)
            for dp in drop_paths
        )
        self.norm = nn.LayerNorm(dim_feat, eps=_LN_EPS)
        if dim_rep:
            self.pre_logits = nn.Sequential(OrderedDict([("fc", nn.Linear(dim_feat, dim_rep)), ("act", nn.Tanh())]))
            self.dim_rep = dim_rep
        else:
            self.pre_logits = nn.Identity()
            self.dim_rep = dim_feat
        self.head = nn.Linear(self.dim_rep, dim_out)
        if att_fuse:
            self.ts_attn = nn.ModuleList(nn.Linear(2 * dim_feat, 2) for _ in range(depth))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """(Re-)initialise every parameter as described in the module docstring."""
        nn.init.trunc_normal_(self.temp_embed, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        if self.att_fuse:
            for fuse in self.ts_attn:
                fuse.weight.zero_()
                fuse.bias.fill_(0.5)

    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor; got {type(x).__name__}")
        if x.dim() != 4 or x.shape[2] != self.num_joints or x.shape[3] != self.dim_in:
            raise ValueError(
                f"x must have shape (B, T, {self.num_joints}, {self.dim_in}); got {_shape(x)}"
            )
        if x.shape[1] > self.maxlen:
            raise ValueError(f"x has T={x.shape[1]} frames, more than maxlen={self.maxlen}; got {_shape(x)}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor; got {x.dtype}")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings and the dual-stream layers, then the final LayerNorm: (B, T, J, dim_in) -> (B, T, J, C)."""
        self._check_input(x)
        frames = x.shape[1]
        x = self.joints_embed(x) + self.pos_embed.unsqueeze(1)
        x = self.pos_drop(x)
        x = x + self.temp_embed[:, :frames]
        for i, (block_st, block_ts) in enumerate(zip(self.blocks_st, self.blocks_ts)):
            x_st = block_st(x)
            x_ts = block_ts(x)
            if self.att_fuse:
                alpha = self.ts_attn[i](torch.cat([x_st, x_ts], dim=-1)).softmax(dim=-1)
                x = x_st * alpha[..., 0:1] + x_ts * alpha[..., 1:2]
            else:
                x = (x_st + x_ts) * 0.5
        return self.norm(x)

    def forward(self, x: torch.Tensor, return_rep: bool = False) -> torch.Tensor:
        """Lift a clip of 2D keypoints.

        Args:
            x: (B, T, J, dim_in) keypoints (x, y, confidence) in normalised image coordinates.
            return_rep: return the ``pre_logits`` representation instead of the head's output.

        Returns:
            (B, T, J, dim_out) predicted 3D joints, or (B, T, J, dim_rep) with ``return_rep``.
        """
        rep = self.pre_logits(self.forward_features(x))
        if return_rep:
            return rep
        return self.head(rep)


#: Named configurations for :func:`build_model`. "repose" is the released RePOSE model (MotionBERT-Lite sizes);
#: "motionbert" the MotionBERT default H36M lifter; "small" a CPU-sized model for smoke tests and quick runs.
PRESETS = {
    "repose": dict(dim_in=3, dim_out=3, dim_feat=256, dim_rep=512, depth=5, num_heads=8, mlp_ratio=4.0,
                   num_joints=17, maxlen=243),
    "motionbert": dict(dim_in=3, dim_out=3, dim_feat=512, dim_rep=512, depth=5, num_heads=8, mlp_ratio=2.0,
                       num_joints=17, maxlen=243),
    "small": dict(dim_in=3, dim_out=3, dim_feat=64, dim_rep=128, depth=3, num_heads=4, mlp_ratio=2.0,
                  num_joints=17, maxlen=243),
}

_CONFIG_KEYS = ("dim_in", "dim_out", "dim_feat", "dim_rep", "depth", "num_heads", "mlp_ratio", "num_joints",
                "maxlen", "qkv_bias", "drop_rate", "attn_drop_rate", "drop_path_rate", "att_fuse")


def model_config(name_or_dict: Union[str, Mapping[str, Any]], **overrides: Any) -> dict:
    """Resolve a preset name or config mapping (plus overrides) to the full DSTformer keyword arguments.

    Args:
        name_or_dict: a key of :data:`PRESETS`, or a mapping of :class:`DSTformer` arguments. A mapping may hold
            ``"preset"`` (or ``"name"``): that preset is the base and the other keys override it.
        **overrides: DSTformer arguments applied last.

    Returns:
        A dict of DSTformer keyword arguments.

    Raises:
        ValueError: unknown preset name or unknown argument names.
    """
    if isinstance(name_or_dict, str):
        base_name, given = name_or_dict, {}
    elif isinstance(name_or_dict, Mapping):
        given = dict(name_or_dict)
        base_name = given.pop("preset", None)
        name = given.pop("name", None)
        if base_name is None:
            base_name = name
    else:
        raise TypeError(f"name_or_dict must be a preset name or a mapping; got {type(name_or_dict).__name__}")
    config = {}
    if base_name is not None:
        if base_name not in PRESETS:
            raise ValueError(f"model preset must be one of {sorted(PRESETS)}; got {base_name!r}")
        config.update(PRESETS[base_name])
    given.update(overrides)
    unknown = sorted(set(given) - set(_CONFIG_KEYS))
    if unknown:
        raise ValueError(f"unknown DSTformer argument(s) {unknown}; expected a subset of {list(_CONFIG_KEYS)}")
    config.update(given)
    return config


def build_model(name_or_dict: Union[str, Mapping[str, Any]] = "repose", **overrides: Any) -> DSTformer:
    """Build a :class:`DSTformer` from a preset name or a config mapping.

    Args:
        name_or_dict: ``"repose"``, ``"motionbert"``, ``"small"``, or a mapping of DSTformer arguments,
            optionally with ``"preset": <name>`` as its base (e.g. ``{"preset": "small", "depth": 2}``).
        **overrides: DSTformer arguments applied on top.

    Returns:
        A freshly initialised DSTformer on the CPU.

    Example::

        model = build_model("repose")               # loads the released RePOSE checkpoint
        model = build_model({"preset": "small", "maxlen": 81})
    """
    return DSTformer(**model_config(name_or_dict, **overrides))
