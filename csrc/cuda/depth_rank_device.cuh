// Device code of repose::depth_rank_loss (see depth_rank_kernel.cuh for the tiling). Included by
// depth_rank_kernel.cu and, with the CUDA built-ins emulated on CPU threads, by tests/cuda_emulation.
#pragma once

#include <cmath>
#include <cstdint>

#include "depth_rank_kernel.cuh"

namespace repose {
namespace cuda {

// The tile (i, i + o) of tile number q of a series, q < t.tiles; offsets come in order, nt - o tiles each.
__device__ inline void tile_of(const TermTiles& t, int64_t q, int64_t& i, int64_t& o) {
  // tiles before offset o: o * nt - o (o - 1) / 2; solve for the largest o with that <= q
  const double a = 2.0 * static_cast<double>(t.nt) + 1.0;
  int64_t guess = static_cast<int64_t>((a - sqrt(a * a - 8.0 * static_cast<double>(q))) / 2.0);
  auto before = [&](int64_t x) { return x * t.nt - x * (x - 1) / 2; };
  if (guess < 0) guess = 0;
  if (guess > t.band) guess = t.band;
  while (guess > 0 && before(guess) > q) --guess;
  while (guess < t.band && before(guess + 1) <= q) ++guess;
  o = guess;
  i = q - before(guess);
}

// relu that keeps NaN (the reference's relu(NaN) is NaN)
template <typename scalar_t>
__device__ inline scalar_t relu_nan(scalar_t x) {
  return x < scalar_t(0) ? scalar_t(0) : x;
}

template <typename scalar_t>
__device__ inline scalar_t warp_sum(scalar_t v) {
  for (int offset = kTile / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

template <typename scalar_t>
__global__ void __launch_bounds__(kThreads) depth_rank_loss_kernel(const DepthRankProblem<scalar_t> P) {
  __shared__ scalar_t s_p[2][kTile];  // [rows, columns] of the tile: prediction, ground truth, weight
  __shared__ scalar_t s_g[2][kTile];
  __shared__ scalar_t s_w[2][kTile];
  __shared__ scalar_t s_row[kTile];          // gradient sum of each row
  __shared__ scalar_t s_col[kWarps][kTile];  // each warp's gradient sums of the columns
  __shared__ scalar_t s_red[2][kWarps];      // each warp's loss and active sums

  const int64_t per_sample = P.blocks_per_sample();
  const int64_t block = static_cast<int64_t>(blockIdx.x);
  const int64_t b = block / per_sample;
  int64_t q = block % per_sample;
  const int lane = static_cast<int>(threadIdx.x) % kTile, warp = static_cast<int>(threadIdx.x) / kTile;

  // Which series and which tile: spatial series are frames (elements are joints), temporal ones joints.
  const bool spatial = q < P.T * P.spatial.tiles;
  const TermTiles& term = spatial ? P.spatial : P.temporal;
  if (!spatial) q -= P.T * P.spatial.tiles;
  const int64_t series = q / term.tiles;
  int64_t i, o;
  tile_of(term, q % term.tiles, i, o);
  const int64_t p0 = P.p_off + b * P.p_sb + series * (spatial ? P.p_st : P.p_sj), p_es = spatial ? P.p_sj : P.p_st;
  const int64_t g0 = P.g_off + b * P.g_sb + series * (spatial ? P.g_st : P.g_sj), g_es = spatial ? P.g_sj : P.g_st;
  const int64_t w0 = b * P.w_sb + series * (spatial ? P.w_st : P.w_sj), w_es = spatial ? P.w_sj : P.w_st;
  const int64_t d0 = P.d_off + b * P.d_sb + series * (spatial ? P.d_st : P.d_sj), d_es = spatial ? P.d_sj : P.d_st;
  const int64_t first[2] = {i * kTile, (i + o) * kTile};  // first row, first column
  const scalar_t scale = static_cast<scalar_t>(spatial ? P.spatial_scale[b] : P.temporal_scale[b]);

  if (threadIdx.x < 2 * kTile) {  // stage the rows and the columns
    const int side = static_cast<int>(threadIdx.x) / kTile;
    const int64_t e = first[side] + lane;
    const bool ok = e < term.n;
    s_p[side][lane] = ok ? P.pred[p0 + e * p_es] : scalar_t(0);
    s_g[side][lane] = ok ? P.gt[g0 + e * g_es] : scalar_t(0);
    s_w[side][lane] = ok ? (P.weight != nullptr ? P.weight[w0 + e * w_es] : scalar_t(1)) : scalar_t(0);
  }
  __syncthreads();

  const int64_t l = first[1] + lane;
  const scalar_t pl = s_p[1][lane], gl = s_g[1][lane], wl = s_w[1][lane];
  scalar_t loss = 0, active = 0, col = 0;
  for (int r = warp; r < kTile; r += kWarps) {
    const int64_t k = first[0] + r;
    const scalar_t pk = s_p[0][r], gk = s_g[0][r], wk = s_w[0][r];
    // the unordered pair {k, l}, k < l, once; on the diagonal tile only the columns right of the row
    const bool valid = k < term.n && l < term.n && (o > 0 || lane > r) && l - k <= term.window;
    scalar_t row = 0;
    if (valid) {
      const scalar_t wkl = wk * wl;
      const scalar_t d = (pk - pl) + P.margin;  // hinge argument when k is nearer
      const scalar_t e = (pl - pk) + P.margin;  // hinge argument when l is nearer
      const bool k_nearer = gk < gl, l_nearer = gl < gk;
      // multiplying (not selecting) by the order keeps a NaN prediction visible in the loss
      loss += wkl * (scalar_t(k_nearer) * relu_nan(d) + scalar_t(l_nearer) * relu_nan(e));
      active += wkl * scalar_t(k_nearer || l_nearer);
      // "> 0 or NaN" (not <= 0): a NaN difference passes the gradient, as the reference's relu does
      row = wkl * (scalar_t(k_nearer && !(d <= scalar_t(0))) - scalar_t(l_nearer && !(e <= scalar_t(0))));
      col -= row;
    } else if (o == 0 && lane == r && k < term.n) {
      // the pair (k, k): never ordered, but 0 * relu(NaN) is NaN in the reference
      loss += wk * wk * scalar_t(0) * relu_nan((pk - pk) + P.margin);
    }
    row = warp_sum(row);
    if (lane == 0) s_row[r] = row;
  }
  s_col[warp][lane] = col;
  loss = warp_sum(loss);
  active = warp_sum(active);
  if (lane == 0) {
    s_red[0][warp] = loss;
    s_red[1][warp] = active;
  }
  __syncthreads();

  if (threadIdx.x < 2 * kTile && P.grad != nullptr) {  // rows, then columns: one atomic add per element
    const int side = static_cast<int>(threadIdx.x) / kTile;
    const int64_t e = first[side] + lane;
    scalar_t sum = 0;
    if (side == 0) {
      sum = s_row[lane];
    } else {
      for (int w = 0; w < kWarps; ++w) sum += s_col[w][lane];
    }
    if (e < term.n && sum != scalar_t(0)) atomicAdd(P.grad + d0 + e * d_es, scale * sum);
  }
  if (threadIdx.x == 0) {
    scalar_t block_loss = 0, block_active = 0;
    for (int w = 0; w < kWarps; ++w) {
      block_loss += s_red[0][w];
      block_active += s_red[1][w];
    }
    P.block_loss[block] = scale * block_loss;
    P.block_active[2 * block + (spatial ? 0 : 1)] = block_active;
    P.block_active[2 * block + (spatial ? 1 : 0)] = scalar_t(0);
  }
}

}  // namespace cuda
}  // namespace repose
