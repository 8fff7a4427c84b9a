"""The CPU series ops ``repose::rank_hinge_dense`` and ``repose::rank_hinge_sorted`` (for tests and benchmarks):
registration of their fake impls and autograd (those of ``repose::rank_hinge``), and the CPU crossover.

``repose::rank_hinge`` on CPU already picks the faster of the two for each call: the sorted
O(N log N) sweep for series with no window of at least :func:`sorted_min_n` elements, the dense
pair loop otherwise. These ops fix the algorithm (so does
the environment variable ``REPOSE_CPU_ALGO=dense|sorted`` for ``rank_hinge``), for
benchmarks and tests. ``REPOSE_CPU_ISA=avx2|base|scalar`` caps the dense kernels' instruction set.
"""

from __future__ import annotations

import torch

from . import _ops

DENSE_OP = "repose::rank_hinge_dense"
SORTED_OP = "repose::rank_hinge_sorted"
#: The dense kernels' instruction sets, by their code in csrc/cpu/rank_hinge_cpu.h (``cpu::Isa``).
ISAS = ("scalar", "base", "avx2", "avx512")


def _has_op(name: str) -> bool:
    namespace, op = name.split("::")
    return _ops._C is not None and hasattr(getattr(torch.ops, namespace), op)


if _has_op(DENSE_OP):
    for _name in (DENSE_OP, SORTED_OP):
        _ops.register_series_op(_name)


def sorted_min_n(isa: str, weighted: bool) -> int:
    """The shortest series (no window) ``repose::rank_hinge`` computes with the sorted sweep on CPU, for the dense
    kernels' instruction set ``isa`` (one of :data:`ISAS`), without or with weights; read from the C++ rule."""
    return int(torch.ops.repose.cpu_sorted_min_n(ISAS.index(isa), bool(weighted)))


def rank_hinge_dense(pred, gt, weight, margin, window, need_grad, need_active):
    """``repose::rank_hinge`` computed by the O(N^2) pair loop. See csrc/rank_loss.cpp."""
    return torch.ops.repose.rank_hinge_dense(pred, gt, weight, margin, window, need_grad, need_active)


def rank_hinge_sorted(pred, gt, weight, margin, window, need_grad, need_active):
    """``repose::rank_hinge`` computed by the O(N log N) sorted sweep (dense band with a window)."""
    return torch.ops.repose.rank_hinge_sorted(pred, gt, weight, margin, window, need_grad, need_active)
