"""Exponential moving average of a lifter's weights (Polyak averaging), the weights a run evaluates and exports.

With ``train.ema_decay = d`` the trainer keeps, beside the weights the optimiser updates, an average updated after
every optimiser step::

    avg <- avg + (1 - d_t) * (live - avg),    d_t = min(d, (1 + t) / (10 + t))    (t: steps averaged so far)

(the warm-up ``d_t`` keeps the first steps from tying the average to the initial weights; it reaches ``d`` after
about ``9 / (1 - d)`` steps, and until then the average spans roughly the last tenth of the steps taken). Every
floating-point entry of the state dict is averaged, parameters and BatchNorm running statistics alike; integer
entries (batch counters) are copied. Evaluation, ``best.pt`` and the exported ``model.pt`` use the average;
checkpoints also carry the live weights so that a resumed run continues exactly.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, Mapping

import torch
from torch import nn

__all__ = ["WeightAverage"]


class WeightAverage:
    """An exponential moving average of ``model``'s state dict.

    Args:
        model: the live network (unwrapped); the average starts as a copy of it.
        decay: ``d`` in (0, 1); the average spans about ``1 / (1 - d)`` steps.

    Attributes:
        model: a copy of ``model`` holding the averaged weights (eval mode, no gradients).
        steps: optimiser steps averaged so far.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1); got {decay!r}")
        self.decay = float(decay)
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.steps = 0
        entries = list(self.model.state_dict().values())
        self._float = [v for v in entries if v.is_floating_point()]
        self._other = [v for v in entries if not v.is_floating_point()]

    def current_decay(self) -> float:
        """``d_t`` of the next update."""
        return min(self.decay, (1.0 + self.steps) / (10.0 + self.steps))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights (call after every optimiser step)."""
        weight = 1.0 - self.current_decay()
        live = list(model.state_dict().values())
        live_float = [v.detach() for v in live if v.is_floating_point()]
        live_other = [v for v in live if not v.is_floating_point()]
        if len(live_float) != len(self._float) or len(live_other) != len(self._other):
            raise ValueError("the model does not have the averaged model's entries")
        torch._foreach_lerp_(self._float, live_float, weight)
        for avg, value in zip(self._other, live_other):
            avg.copy_(value)
        self.steps += 1

    def state(self) -> Dict[str, Any]:
        """What a checkpoint needs besides the averaged weights (stored as the checkpoint's model)."""
        return {"decay": self.decay, "steps": self.steps}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state` (the averaged weights are loaded into :attr:`model` separately; the
        caller checks that the decays agree)."""
        self.steps = int(state["steps"])
