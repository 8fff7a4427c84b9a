// Stand-in for the header that CUDA builds of PyTorch generate and CPU wheels lack, so that
// tests/test_gpu_build.py can compile csrc/cuda/rank_hinge_cuda.cpp against a CPU torch.
// Never used by a real build (setup.py does not add this folder).
#pragma once
#define C10_CUDA_BUILD_SHARED_LIBS
