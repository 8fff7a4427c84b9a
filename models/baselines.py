"""The classic lifters beside DSTformer: SimpleBaseline (one frame) and the VideoPose3D temporal conv net.

* :class:`SimpleBaseline` (Martinez et al., "A simple yet effective baseline for 3d human pose estimation",
  ICCV 2017): the 2D joints of one frame, a linear layer to 1024 features, two residual blocks of
  (linear, batch norm, ReLU, dropout) x 2, a linear layer to the 3D joints. With 16 joints in and out, as published,
  it has 4,29 M parameters (about 4.3 M). Applied to a clip it lifts every frame on its own, so its output has one
  pose per input frame and the temporal rank term applies to it like to any sequence model.
* :class:`TemporalConvNet` (Pavllo et al., "3D human pose estimation in video with temporal convolutions and
  semi-supervised training", CVPR 2019): a 1D convolution of width ``filter_widths[0]`` over time that expands the
  2D joints to ``channels`` features, then one residual block per further filter width (dilated convolution of that
  width, batch norm, ReLU, dropout, then a 1x1 convolution, batch norm, ReLU, dropout), then a 1x1 convolution to
  the 3D joints. The receptive field is the product of the widths: (3, 3, 3) -> 27 frames, (3, 3, 3, 3) -> 81,
  (3, 3, 3, 3, 3) -> 243. With 1024 channels and 17 joints (x, y in) the published sizes are 8.56 M, 12.75 M and
  16.95 M parameters.
  The network is evaluated sequence to sequence: the clip is padded at both ends by repeating its first and last
  frame (VideoPose3D's inference padding) so that every input frame gets an output frame, which gives the temporal
  rank term several output frames per clip.
  With ``constant_bones`` (17 H36M joints), the output's bone lengths are made constant over the clip: each bone
  keeps its predicted direction per frame and takes its mean predicted length over the clip's frames, and the
  joints are rebuilt from the root outwards (one person, whose bones do not change length, whatever the frame).

Both take (B, T, J, C_in) and return (B, T, J, 3), like :class:`~repose_ext.models.dstformer.DSTformer`.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..data.augment import PATH, bones_of

__all__ = ["SimpleBaseline", "TemporalConvNet"]


def constant_bones(pose: torch.Tensor) -> torch.Tensor:
    """H36M-17 poses whose bones have their mean length over time and their own direction in each frame.

    Bones and forward kinematics are those of the augmentation (:func:`repose_ext.data.augment.bones_of`,
    :data:`~repose_ext.data.augment.PATH`), in torch so that gradients flow.

    Args:
        pose: (B, T, 17, 3) joints.

    Returns:
        (B, T, 17, 3): the root as given, every other joint at the root plus the bones on its path, each with its
        direction (as predicted) and its length averaged over T.
    """
    bones = bones_of(pose)  # (B, T, 16, 3)
    length = bones.norm(dim=-1, keepdim=True)
    bones = bones / length.clamp_min(1e-6) * length.mean(dim=1, keepdim=True)
    path = torch.as_tensor(PATH, dtype=pose.dtype, device=pose.device)
    return pose[:, :, :1] + torch.einsum("jb,ntbc->ntjc", path, bones)


def _check_input(x: torch.Tensor, num_joints: int, dim_in: int) -> None:
    if x.dim() != 4 or x.shape[2] != num_joints or x.shape[3] != dim_in:
        raise ValueError(f"x must have shape (B, T, {num_joints}, {dim_in}); got {tuple(x.shape)}")


class _ResidualLinear(nn.Module):
    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True), nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class SimpleBaseline(nn.Module):
    """Martinez et al.'s single-frame lifter (see the module docstring).

    Args:
        num_joints: joints in and out.
        dim_in: channels per input joint (2: x, y; 3: x, y, confidence).
        dim_out: channels per output joint.
        width: features of the hidden layers (1024 published).
        num_blocks: residual blocks (2 published).
        dropout: dropout probability (0.5 published).

    Shape:
        x: (B, T, J, dim_in). Returns (B, T, J, dim_out).
    """

    def __init__(self, num_joints: int = 17, dim_in: int = 3, dim_out: int = 3, width: int = 1024,
                 num_blocks: int = 2, dropout: float = 0.5):
        super().__init__()
        self.num_joints, self.dim_in, self.dim_out = num_joints, dim_in, dim_out
        self.maxlen = None  # any clip length
        self.inp = nn.Sequential(nn.Linear(num_joints * dim_in, width), nn.BatchNorm1d(width), nn.ReLU(inplace=True),
                                 nn.Dropout(dropout))
        self.blocks = nn.Sequential(*[_ResidualLinear(width, dropout) for _ in range(num_blocks)])
        self.out = nn.Linear(width, num_joints * dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.num_joints, self.dim_in)
        b, t = x.shape[:2]
        y = self.out(self.blocks(self.inp(x.reshape(b * t, -1))))
        return y.view(b, t, self.num_joints, self.dim_out)


class TemporalConvNet(nn.Module):
    """VideoPose3D's dilated temporal convolutional lifter, sequence to sequence (see the module docstring).

    Args:
        num_joints: joints in and out.
        dim_in: channels per input joint.
        dim_out: channels per output joint.
        filter_widths: odd temporal widths; block k is dilated by the product of the widths before it.
        channels: features of every layer (1024 published).
        dropout: dropout probability (0.25 published).
        constant_bones: make the output's bone lengths constant over the clip (:func:`constant_bones`); needs
            the 17 H36M joints.

    Attributes:
        receptive_field: frames one output frame sees.

    Shape:
        x: (B, T, J, dim_in), any T >= 1. Returns (B, T, J, dim_out).
    """

    def __init__(self, num_joints: int = 17, dim_in: int = 3, dim_out: int = 3,
                 filter_widths: Sequence[int] = (3, 3, 3), channels: int = 1024, dropout: float = 0.25,
                 constant_bones: bool = False):
        super().__init__()
        if not isinstance(constant_bones, bool):
            raise ValueError(f"constant_bones must be true or false; got {constant_bones!r}")
        if constant_bones and (num_joints != PATH.shape[0] or dim_out != 3):
            raise ValueError(f"constant_bones needs the {PATH.shape[0]} H36M joints with 3D output; got "
                             f"num_joints={num_joints}, dim_out={dim_out}")
        self.constant_bones = constant_bones
        widths = [int(w) for w in filter_widths]
        if not widths or any(w < 1 or w % 2 == 0 for w in widths):
            raise ValueError(f"filter_widths must be a non-empty list of odd positive ints; got {list(filter_widths)}")
        self.num_joints, self.dim_in, self.dim_out = num_joints, dim_in, dim_out
        self.maxlen = None
        self.receptive_field = math.prod(widths)
        self.expand = nn.Sequential(nn.Conv1d(num_joints * dim_in, channels, widths[0], bias=False),
                                    nn.BatchNorm1d(channels), nn.ReLU(inplace=True), nn.Dropout(dropout))
        blocks, self._pads = [], []
        dilation = widths[0]
        for w in widths[1:]:
            blocks.append(nn.Sequential(
                nn.Conv1d(channels, channels, w, dilation=dilation, bias=False), nn.BatchNorm1d(channels),
                nn.ReLU(inplace=True), nn.Dropout(dropout),
                nn.Conv1d(channels, channels, 1, bias=False), nn.BatchNorm1d(channels), nn.ReLU(inplace=True),
                nn.Dropout(dropout)))
            self._pads.append((w - 1) // 2 * dilation)  # frames trimmed from each end by this block
            dilation *= w
        self.blocks = nn.ModuleList(blocks)
        self.shrink = nn.Conv1d(channels, num_joints * dim_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.num_joints, self.dim_in)
        b, t = x.shape[:2]
        pad = (self.receptive_field - 1) // 2
        y = x.reshape(b, t, -1).transpose(1, 2)  # (B, J*C, T)
        if pad:
            y = torch.cat([y[..., :1].expand(-1, -1, pad), y, y[..., -1:].expand(-1, -1, pad)], dim=-1)
        y = self.expand(y)
        for block, trim in zip(self.blocks, self._pads):
            y = y[..., trim:y.shape[-1] - trim] + block(y)
        y = self.shrink(y)  # (B, J*3, T)
        y = y.transpose(1, 2).reshape(b, t, self.num_joints, self.dim_out)
        return constant_bones(y) if self.constant_bones else y
