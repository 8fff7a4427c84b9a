"""pytest-benchmark suite: forward+backward of the rank losses on CPU per provider and shape.

Run: ``python -m pytest benchmarks/test_bench_cpu.py`` (the unit tests do not collect it).
The slow baselines run only at the smaller shapes; use benchmarks/run_cpu_table.py for the
full table with memory.
"""

import pytest
import torch

from providers import PROVIDERS, check, make_inputs, step

SHAPES = [(8, 243, 17), (32, 243, 17), (4, 1024, 17), (1, 4096, 17)]
FAST = {"fused-cpu", "fused-cpu (two calls)"}


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_rank_loss_fwd_bwd(benchmark, provider, shape):
    if provider not in FAST and shape not in SHAPES[:2]:
        pytest.skip("baseline too slow/large at this shape; see run_cpu_table.py")
    check(provider)
    pred, gt = make_inputs(*shape)
    step(provider, pred, gt)  # warm-up (and compilation)
    benchmark.extra_info.update(provider=provider, shape=shape, torch=torch.__version__, threads=torch.get_num_threads())
    benchmark.pedantic(step, args=(provider, pred, gt), rounds=5 if provider not in FAST else 50, iterations=1)
