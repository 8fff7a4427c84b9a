"""Shared test set-up: Triton runs under its CPU interpreter when there is no GPU, seeded RNG."""

import os

import torch

if not torch.cuda.is_available():
    # Must be set before any @triton.jit kernel module is imported.
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
