"""What the benchmarks compare: one forward+backward of spatial + temporal rank loss per provider.

Every provider computes the same number (the paper's default losses); ``check`` verifies that
before anything is timed.
"""

from __future__ import annotations

import torch

import repose_ext
from repose_ext import reference


def _authors(pred, gt):
    return reference.authors_spatial_rank_loss(pred, gt) + reference.authors_temporal_rank_loss(pred, gt)


def _broadcast(pred, gt):
    return reference.spatial_depth_rank_loss(pred, gt) + reference.temporal_depth_rank_loss(pred, gt)


def backend_loss(name):
    """Spatial + temporal through the public functions, one call each, on backend `name`."""

    def loss(pred, gt):
        return repose_ext.spatial_depth_rank_loss(pred, gt, backend=name) + repose_ext.temporal_depth_rank_loss(
            pred, gt, backend=name
        )

    return loss


_compiled = None


def _compiled_broadcast(pred, gt):
    global _compiled
    if _compiled is None:
        _compiled = torch.compile(_broadcast, dynamic=False)
    return _compiled(pred, gt)


def _fused_cpu(pred, gt):
    return repose_ext.depth_rank_loss(pred, gt, backend="cpu")  # both terms in one op


PROVIDERS = {
    "authors": _authors,
    "broadcast": _broadcast,
    "compile(broadcast)": _compiled_broadcast,
    "fused-cpu": _fused_cpu,
    "fused-cpu (two calls)": backend_loss("cpu"),
}


def make_inputs(b, t, j, device="cpu", dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    pred = torch.randn(b, t, j, 3, generator=gen, dtype=dtype).to(device).requires_grad_(True)
    gt = torch.randn(b, t, j, 3, generator=gen, dtype=dtype).to(device)
    return pred, gt


def step(provider, pred, gt):
    """One forward + backward; returns the loss."""
    pred.grad = None
    loss = PROVIDERS[provider](pred, gt)
    loss.backward()
    return loss


def check(provider, b=2, t=33, j=17):
    """Raise if the provider disagrees with the reference (loss and gradient)."""
    pred, gt = make_inputs(b, t, j, dtype=torch.float64)
    expected = step("broadcast", pred, gt).detach()
    expected_grad = pred.grad.clone()
    got = step(provider, pred, gt).detach()
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(pred.grad, expected_grad, rtol=1e-6, atol=1e-9)
