// Runs the CUDA kernel of repose::depth_rank_loss (csrc/cuda/depth_rank_device.cuh) on the CPU, for
// tests/test_gpu_build.py.
//
// The device code is included unchanged, with the CUDA built-ins defined here: each block runs as
// kThreads std::threads that share the kernel's __shared__ arrays (plain statics: blocks run one after
// another) and meet at a std::barrier for __syncthreads; a warp shuffle meets at one barrier per warp;
// atomicAdd takes a lock. The tiling plan (term_tiles) is the one the torch binding uses.
//
// Usage: emulate f|d B T J poses window margin weighted spatial temporal need_grad
// stdin: B*T*J predicted depths, B*T*J ground-truth depths, then B*T*J weights if weighted.
// poses=1 lays the depths out as channel 2 of (B, T, J, 3) poses (channels 0 and 1 hold values that must
// never be read into the result). The factors of the terms are 1 + b for sample b.
// stdout: "status 0", then per sample "loss active_spatial active_temporal", then B*T*J gradients (depths).

#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
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
std::mutex atomic_lock;

// Runs kernel() for every thread of `blocks` blocks of `threads` threads, one block at a time.
void run_grid(int64_t blocks, unsigned int threads, const std::function<void()>& kernel) {
  for (int64_t b = 0; b < blocks; ++b) {
    block_idx.x = static_cast<unsigned int>(b);
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

template <typename T>
T __shfl_xor_sync(unsigned int, T value, int lane_mask) {
  const unsigned int t = emu::thread_idx.x, warp = t / emu::kWarp;
  emu::warp_exchange[t] = static_cast<double>(value);
  emu::warp_barriers[warp]->arrive_and_wait();
  const T result = static_cast<T>(emu::warp_exchange[t ^ static_cast<unsigned int>(lane_mask)]);
  emu::warp_barriers[warp]->arrive_and_wait();
  return result;
}

template <typename T>
T atomicAdd(T* address, T value) {
  std::lock_guard<std::mutex> lock(emu::atomic_lock);
  const T old = *address;
  *address = old + value;
  return old;
}

#include "depth_rank_device.cuh"

// The next whitespace-separated number of stdin ("nan" and "inf" too, which operator>> does not read).
double next_number() {
  std::string token;
  std::cin >> token;
  return std::strtod(token.c_str(), nullptr);
}

template <typename scalar_t>
int run(char** argv) {
  using repose::cuda::DepthRankProblem;
  const int64_t B = std::atoll(argv[2]), T = std::atoll(argv[3]), J = std::atoll(argv[4]);
  const bool poses = std::atoi(argv[5]) != 0;
  const int64_t window = std::atoll(argv[6]);
  const double margin = std::atof(argv[7]);
  const bool weighted = std::atoi(argv[8]) != 0, spatial = std::atoi(argv[9]) != 0,
             temporal = std::atoi(argv[10]) != 0, need_grad = std::atoi(argv[11]) != 0;
  const int64_t n = B * T * J, c = poses ? 3 : 1;
  std::vector<scalar_t> p(n * c, scalar_t(1e30)), g(n * c, scalar_t(-1e30)), w(weighted ? n : 0);
  for (auto* v : {&p, &g}) {
    for (int64_t e = 0; e < n; ++e) (*v)[e * c + c - 1] = static_cast<scalar_t>(next_number());
  }
  for (auto& x : w) x = static_cast<scalar_t>(next_number());
  std::vector<double> scale(B);
  for (int64_t b = 0; b < B; ++b) scale[b] = 1.0 + static_cast<double>(b);
  std::vector<scalar_t> grad(need_grad ? n * c : 0, scalar_t(0));

  DepthRankProblem<scalar_t> P;
  P.pred = p.data();
  P.gt = g.data();
  P.weight = weighted ? w.data() : nullptr;
  P.grad = need_grad ? grad.data() : nullptr;
  P.spatial_scale = scale.data();
  P.temporal_scale = scale.data();
  P.B = B, P.T = T, P.J = J;
  P.p_off = P.g_off = P.d_off = c - 1;
  P.p_sb = P.g_sb = P.d_sb = T * J * c;
  P.p_st = P.g_st = P.d_st = J * c;
  P.p_sj = P.g_sj = P.d_sj = c;
  P.w_sb = T * J, P.w_st = J, P.w_sj = 1;
  P.margin = static_cast<scalar_t>(margin);
  P.spatial = repose::cuda::term_tiles(J, -1, spatial);
  P.temporal = repose::cuda::term_tiles(T, window, temporal);
  const int64_t per_sample = P.blocks_per_sample();
  std::vector<scalar_t> block_loss(B * per_sample, scalar_t(-7)), block_active(2 * B * per_sample, scalar_t(-7));
  P.block_loss = block_loss.data();
  P.block_active = block_active.data();
  emu::run_grid(B * per_sample, repose::cuda::kThreads, [&] { repose::cuda::depth_rank_loss_kernel<scalar_t>(P); });

  std::printf("status 0\n");
  for (int64_t b = 0; b < B; ++b) {
    double loss = 0, active[2] = {0, 0};
    for (int64_t q = 0; q < per_sample; ++q) {
      loss += block_loss[b * per_sample + q];
      for (int k = 0; k < 2; ++k) active[k] += block_active[2 * (b * per_sample + q) + k];
    }
    std::printf("%.17g %.17g %.17g\n", loss, active[0], active[1]);
  }
  for (int64_t e = 0; need_grad && e < n; ++e) {
    for (int64_t k = 0; k + 1 < c; ++k) {
      if (grad[e * c + k] != scalar_t(0)) {
        std::fprintf(stderr, "gradient written outside the depth channel\n");
        return 1;
      }
    }
    std::printf("%.17g\n", static_cast<double>(grad[e * c + c - 1]));
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 12) {
    std::fprintf(stderr, "usage: %s f|d B T J poses window margin weighted spatial temporal need_grad\n", argv[0]);
    return 2;
  }
  return argv[1][0] == 'f' ? run<float>(argv) : run<double>(argv);
}
