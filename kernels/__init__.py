"""``@triton.jit`` kernels of the rank losses (no autograd, no launchers, no device probing).

Importing this package needs nothing; importing :mod:`repose_ext.kernels.rank_hinge` needs
Triton. The launchers and the registered op live in :mod:`repose_ext._triton`.
"""
