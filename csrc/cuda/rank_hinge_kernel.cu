// CUDA kernels of repose::rank_hinge (see rank_hinge_kernel.cuh for the contract).
//
// Pair kernel: one thread per row r of the flattened (S * N) problem (element k of series s),
// kRowThreads consecutive rows per block. A row's columns are a contiguous range of the
// flattened input, [s*N + max(0, k - window), s*N + min(N, k + window + 1)), and the ranges
// of consecutive rows never move backwards, so the columns a block needs are one contiguous
// range too (about N elements for a long series, kRowThreads + N for short ones, which pack
// many series into a block). The block stages that range in shared memory tile by tile and
// every thread runs the shared row loop (csrc/rank_hinge_row.h) over its part of each tile.
//
// Reduction kernel: one warp per series sums the row buffers in a fixed order (strided lane
// sums in double, then a fixed shuffle tree), so the stats are deterministic.

#include "rank_hinge_kernel.cuh"

#include <climits>

#include "../rank_hinge_row.h"

namespace repose {
namespace cuda {
namespace {

constexpr int kRowThreads = 256;     // rows per block of the pair kernel
constexpr int kTile = 256;           // columns staged in shared memory at a time
constexpr int kReduceThreads = 256;  // 8 warps per block, one series per warp
constexpr int kWarp = 32;

// Columns [lo, hi) of row r, in flattened (S * N) coordinates; 0 <= window <= N.
__device__ __forceinline__ void row_columns(int64_t r, int64_t N, int64_t window, int64_t& lo, int64_t& hi) {
  const int64_t s = r / N;
  const int64_t k = r - s * N;
  lo = s * N + (k > window ? k - window : 0);
  hi = s * N + (k + window + 1 < N ? k + window + 1 : N);
}

template <typename scalar_t, bool kWeighted, bool kGrad, bool kActive>
__global__ void __launch_bounds__(kRowThreads)
    rank_hinge_rows_kernel(const scalar_t* __restrict__ pred,    // (S * N)
                           const scalar_t* __restrict__ gt,      // (S * N)
                           const scalar_t* __restrict__ weight,  // (S * N), read only if kWeighted
                           int64_t total,                        // S * N
                           int64_t N, int64_t window, scalar_t margin,
                           scalar_t* __restrict__ row_loss,    // (S * N) out: w_k * hinge sum of row k
                           scalar_t* __restrict__ row_active,  // (S * N) out if kActive: w_k * active weight
                           scalar_t* __restrict__ grad) {      // (S * N) out if kGrad
  __shared__ scalar_t tile_p[kTile];
  __shared__ scalar_t tile_g[kTile];
  __shared__ scalar_t tile_w[kWeighted ? kTile : 1];

  const int64_t first = static_cast<int64_t>(blockIdx.x) * kRowThreads;
  const int64_t last = (first + kRowThreads < total ? first + kRowThreads : total) - 1;
  const int64_t r = first + threadIdx.x;
  const bool live = r < total;

  int64_t block_lo, block_hi, unused;
  row_columns(first, N, window, block_lo, unused);
  row_columns(last, N, window, unused, block_hi);
  int64_t lo = 0, hi = 0;  // empty for threads past the end
  if (live) row_columns(r, N, window, lo, hi);
  const scalar_t pk = live ? pred[r] : scalar_t(0);
  const scalar_t gk = live ? gt[r] : scalar_t(0);

  scalar_t loss = 0, grad_k = 0, active = 0;
  for (int64_t t0 = block_lo; t0 < block_hi; t0 += kTile) {
    const int n_tile = static_cast<int>(block_hi - t0 < kTile ? block_hi - t0 : kTile);
    __syncthreads();  // everyone is done with the previous tile
    for (int i = threadIdx.x; i < n_tile; i += kRowThreads) {
      tile_p[i] = pred[t0 + i];
      tile_g[i] = gt[t0 + i];
      if (kWeighted) tile_w[i] = weight[t0 + i];
    }
    __syncthreads();
    const int64_t a = lo > t0 ? lo : t0;
    const int64_t b = hi < t0 + n_tile ? hi : t0 + n_tile;
    if (a < b) {
      const RowSums<scalar_t> part = rank_hinge_row<scalar_t, kWeighted, kGrad, kActive>(
          tile_p, tile_g, tile_w, pk, gk, a - t0, b - t0, margin);
      loss += part.loss;
      if (kGrad) grad_k += part.grad;
      if (kActive) active += part.active;
    }
  }
  if (!live) return;
  const scalar_t wk = kWeighted ? weight[r] : scalar_t(1);
  row_loss[r] = wk * loss;
  if (kActive) row_active[r] = wk * active;
  if (kGrad) grad[r] = wk * grad_k;
}

template <typename scalar_t>
__global__ void __launch_bounds__(kReduceThreads)
    series_sums_kernel(const scalar_t* __restrict__ row_loss,    // (S * N)
                       const scalar_t* __restrict__ row_active,  // (S * N), or null: active = 0
                       int64_t S, int64_t N,
                       scalar_t* __restrict__ stats) {  // (S, 2) out
  const int64_t s = (static_cast<int64_t>(blockIdx.x) * kReduceThreads + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (s >= S) return;  // the whole warp leaves together
  double loss = 0, active = 0;
  for (int64_t k = lane; k < N; k += kWarp) {
    loss += static_cast<double>(row_loss[s * N + k]);
    if (row_active != nullptr) active += static_cast<double>(row_active[s * N + k]);
  }
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    loss += __shfl_down_sync(0xffffffffu, loss, offset);
    active += __shfl_down_sync(0xffffffffu, active, offset);
  }
  if (lane == 0) {
    stats[2 * s] = static_cast<scalar_t>(loss);
    stats[2 * s + 1] = static_cast<scalar_t>(active);
  }
}

// BEGIN LAUNCHES: the only <<<>>> launches. tests/test_gpu_build.py replaces this block to run
// the kernels above on the CPU, one std::thread per CUDA thread.
template <typename scalar_t, bool kWeighted, bool kGrad, bool kActive>
void launch_rows(const scalar_t* pred, const scalar_t* gt, const scalar_t* weight, int64_t total, int64_t N,
                 int64_t window, scalar_t margin, scalar_t* row_loss, scalar_t* row_active, scalar_t* grad,
                 unsigned int blocks, cudaStream_t stream) {
  rank_hinge_rows_kernel<scalar_t, kWeighted, kGrad, kActive><<<blocks, kRowThreads, 0, stream>>>(
      pred, gt, weight, total, N, window, margin, row_loss, row_active, grad);
}

template <typename scalar_t>
void launch_series_sums(const scalar_t* row_loss, const scalar_t* row_active, int64_t S, int64_t N,
                        scalar_t* stats, unsigned int blocks, cudaStream_t stream) {
  series_sums_kernel<scalar_t><<<blocks, kReduceThreads, 0, stream>>>(row_loss, row_active, S, N, stats);
}
// END LAUNCHES

}  // namespace

size_t rank_hinge_workspace_bytes(int64_t S, int64_t N, size_t scalar_size) {
  if (S <= 0 || N <= 0) return 0;
  return 2 * static_cast<size_t>(S) * static_cast<size_t>(N) * scalar_size;
}

template <typename scalar_t>
cudaError_t launch_rank_hinge(const scalar_t* pred, const scalar_t* gt, const scalar_t* weight, int64_t S,
                              int64_t N, scalar_t margin, int64_t window, bool need_active, scalar_t* stats,
                              scalar_t* grad, void* workspace, cudaStream_t stream) {
  if (S <= 0) return cudaSuccess;
  if (N <= 0) return cudaMemsetAsync(stats, 0, 2 * static_cast<size_t>(S) * sizeof(scalar_t), stream);
  const int64_t total = S * N;
  const int64_t blocks = (total + kRowThreads - 1) / kRowThreads;
  const int64_t reduce_blocks = (S + kReduceThreads / kWarp - 1) / (kReduceThreads / kWarp);
  if (blocks > INT_MAX || reduce_blocks > INT_MAX) return cudaErrorInvalidConfiguration;
  window = window < 0 || window > N ? N : window;

  scalar_t* row_loss = static_cast<scalar_t*>(workspace);
  scalar_t* row_active = row_loss + total;
  const auto b = static_cast<unsigned int>(blocks);
  const int variant = (weight != nullptr ? 4 : 0) | (grad != nullptr ? 2 : 0) | (need_active ? 1 : 0);
  switch (variant) {
    case 0: launch_rows<scalar_t, false, false, false>(pred, gt, weight, total, N, window, margin, row_loss, row_active, grad, b, stream); break;
    case 1: launch_rows<scalar_t, false, false, true>(pred, gt, weight, total, N, window, margin, row_loss, row_active, grad, b, stream); break;
    case 2: launch_rows<scalar_t, false, true, false>(pred, gt, weight, total, N, window, margin, row_loss, row_active, grad, b, stream); break;
    case 3: launch_rows<scalar_t, false, true, true>(pred, gt, weight, total, N, window, margin, row_loss, row_active, grad, b, stream); break;
    case 4: launch_rows<scalar_t, true, false, false>(pred, gt, weight, total, N, window, margin, row_loss, row_active, grad, b, stream); break;
    case 5: launch_rows<scalar_t, true, false, true>(pred, gt, weight, total, N, window, margin, row_loss, row_active, grad, b, stream); break;
    case 6: launch_rows<scalar_t, true, true, false>(pred, gt, weight, total, N, window, margin, row_loss, row_active, grad, b, stream); break;
    default: launch_rows<scalar_t, true, true, true>(pred, gt, weight, total, N, window, margin, row_loss, row_active, grad, b, stream); break;
  }
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  launch_series_sums<scalar_t>(row_loss, need_active ? row_active : nullptr, S, N, stats,
                               static_cast<unsigned int>(reduce_blocks), stream);
  return cudaGetLastError();
}

template cudaError_t launch_rank_hinge<float>(const float*, const float*, const float*, int64_t, int64_t, float,
                                              int64_t, bool, float*, float*, void*, cudaStream_t);
template cudaError_t launch_rank_hinge<double>(const double*, const double*, const double*, int64_t, int64_t,
                                               double, int64_t, bool, double*, double*, void*, cudaStream_t);

}  // namespace cuda
}  // namespace repose
