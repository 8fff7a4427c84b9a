"""Builds repose_ext._C: the rank-loss ops for CPU, and for CUDA when torch has CUDA.

The CUDA sources are added only when the torch being built against was built with CUDA
(or FORCE_CUDA=1), never by probing for a GPU, and a CUDA toolkit is found (else the CPU ops are
built with a message). REPOSE_SKIP_CUDA=1 builds the CPU ops only.
"""

import glob
import os

from setuptools import setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension
import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def _flag(name):
    return os.environ.get(name, "0") == "1"


def extension():
    cpu_sources = ["csrc/rank_loss.cpp"] + sorted(glob.glob("csrc/cpu/*.cpp"))
    # -g0 overrides the -g that Python's CFLAGS add (debug info triples compile time).
    cxx = ["-O3", "-g0", "-fopenmp", "-std=c++17"]
    with_cuda = (torch.version.cuda is not None or _flag("FORCE_CUDA")) and not _flag("REPOSE_SKIP_CUDA")
    if with_cuda and CUDA_HOME is None and not _flag("FORCE_CUDA"):
        # torch was built with CUDA but this machine has no toolkit: the CPU ops still build and work.
        print(f"repose_ext: torch {torch.__version__} has CUDA {torch.version.cuda} but no CUDA toolkit was found "
              f"(no nvcc, CUDA_HOME unset): building the CPU ops only. Install the toolkit or set CUDA_HOME to "
              f"build the CUDA kernels (the Triton backend needs neither).")
        with_cuda = False
    if with_cuda:
        cuda_sources = sorted(glob.glob("csrc/cuda/*.cu")) + sorted(glob.glob("csrc/cuda/*.cpp"))
        print(f"repose_ext: building CPU and CUDA ops ({len(cuda_sources)} CUDA sources, torch {torch.__version__})")
        return CUDAExtension(
            "repose_ext._C",
            cpu_sources + cuda_sources,
            extra_compile_args={"cxx": cxx + ["-DREPOSE_WITH_CUDA"], "nvcc": ["-O3", "-std=c++17", "-DREPOSE_WITH_CUDA"]},
            extra_link_args=["-fopenmp"],
        )
    print(f"repose_ext: building CPU ops only (torch {torch.__version__} has no CUDA)")
    return CppExtension("repose_ext._C", cpu_sources, extra_compile_args=cxx, extra_link_args=["-fopenmp"])


setup(ext_modules=[extension()], cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)})
