// Runs csrc/cuda/rank_hinge_kernel.cu on the CPU, for tests/test_gpu_build.py.
//
// The test copies the .cu with its BEGIN/END LAUNCHES block replaced by emulated launches
// (launches.inc below) and compiles it into this file with g++. Each CUDA block runs as
// blockDim std::threads that share the kernel's __shared__ arrays (plain statics: blocks run
// one after another) and meet at a std::barrier for __syncthreads; warp shuffles meet at one
// barrier per warp. The kernels' own code, the launcher's host logic and the row loop of
// csrc/rank_hinge_row.h run unchanged.
//
// Usage: emulate f|d S N window margin weighted need_grad need_active
// stdin: S*N predictions, S*N ground truths, then S*N weights if weighted (whitespace separated).
// stdout: "status <cuda error code>", S lines of stats, then S*N gradients if need_grad.

#include <barrier>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include <cuda_runtime_api.h>

namespace emu {
struct Dim3 {
  unsigned int x = 0, y = 0, z = 0;
};
thread_local Dim3 thread_idx;
Dim3 block_idx;
std::barrier<>* block_barrier = nullptr;
constexpr int kWarp = 32;
std::vector<std::unique_ptr<std::barrier<>>> warp_barriers;
std::vector<double> warp_exchange;

// Runs kernel() for every thread of `blocks` blocks of `threads` threads, one block at a time.
void run_grid(unsigned int blocks, unsigned int threads, const std::function<void()>& kernel) {
  for (unsigned int b = 0; b < blocks; ++b) {
    block_idx.x = b;
    std::barrier<> barrier(threads);
    block_barrier = &barrier;
    warp_barriers.clear();
    for (unsigned int w = 0; w < (threads + kWarp - 1) / kWarp; ++w)
      warp_barriers.push_back(std::make_unique<std::barrier<>>(kWarp));
    warp_exchange.assign(threads, 0.0);
    std::vector<std::thread> pool;
    for (unsigned int t = 0; t < threads; ++t) {
      pool.emplace_back([t, &kernel] {
        thread_idx.x = t;
        kernel();
      });
    }
    for (auto& th : pool) th.join();
  }
}
}  // namespace emu

// The CUDA headers define these for host compilers too: replace them.
#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __launch_bounds__
#undef __shared__
#define threadIdx emu::thread_idx
#define blockIdx emu::block_idx
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__ static

inline void __syncthreads() { emu::block_barrier->arrive_and_wait(); }

inline double __shfl_down_sync(unsigned int, double value, int offset) {
  const unsigned int t = emu::thread_idx.x, lane = t % emu::kWarp, warp = t / emu::kWarp;
  emu::warp_exchange[t] = value;
  emu::warp_barriers[warp]->arrive_and_wait();
  const double result = lane + offset < emu::kWarp ? emu::warp_exchange[t + offset] : value;
  emu::warp_barriers[warp]->arrive_and_wait();
  return result;
}

extern "C" {
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t count, cudaStream_t) {
  std::memset(ptr, value, count);
  return cudaSuccess;
}
}

#include "kernel_under_test.inc"

template <typename scalar_t>
int run(int argc, char** argv) {
  const int64_t S = std::atoll(argv[2]), N = std::atoll(argv[3]), window = std::atoll(argv[4]);
  const double margin = std::atof(argv[5]);
  const bool weighted = std::atoi(argv[6]) != 0, need_grad = std::atoi(argv[7]) != 0,
             need_active = std::atoi(argv[8]) != 0;
  std::vector<scalar_t> p(S * N), g(S * N), w(weighted ? S * N : 0);
  for (auto* v : {&p, &g, &w})
    for (auto& x : *v) {
      double d;
      std::cin >> d;
      x = static_cast<scalar_t>(d);
    }
  std::vector<scalar_t> stats(2 * S, scalar_t(-7)), grad(need_grad ? S * N : 0, scalar_t(-7));
  std::vector<unsigned char> workspace(repose::cuda::rank_hinge_workspace_bytes(S, N, sizeof(scalar_t)) + 1);
  const cudaError_t status = repose::cuda::launch_rank_hinge<scalar_t>(
      p.data(), g.data(), weighted ? w.data() : nullptr, S, N, static_cast<scalar_t>(margin), window, need_active,
      stats.data(), need_grad ? grad.data() : nullptr, workspace.data(), nullptr);
  std::printf("status %d\n", static_cast<int>(status));
  for (int64_t s = 0; s < S; ++s) std::printf("%.17g %.17g\n", double(stats[2 * s]), double(stats[2 * s + 1]));
  for (const auto& x : grad) std::printf("%.17g\n", double(x));
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 9) {
    std::fprintf(stderr, "usage: %s f|d S N window margin weighted need_grad need_active\n", argv[0]);
    return 2;
  }
  return argv[1][0] == 'f' ? run<float>(argc, argv) : run<double>(argc, argv);
}
