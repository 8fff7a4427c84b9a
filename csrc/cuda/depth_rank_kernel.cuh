// CUDA implementation of repose::depth_rank_loss (schema and meaning in csrc/rank_loss.cpp) behind a
// torch-free interface: the problem as pointers, sizes and strides, the tiling plan, the launcher.
//
// Work is cut into pair tiles: a tile holds kTile rows k and kTile columns l of one series (the J joints
// of a frame, or the T frames of a joint), and only tiles on or above the diagonal of the series' pair
// matrix exist, so each unordered pair {k, l} is visited once and contributes to both k and l. A block
// takes one tile of one series (blocks never straddle series), and the blocks of one sample are numbered
// consecutively, so each block writes its loss and active weights to its own slot and the caller sums a
// sample's slots. Gradients of a tile's rows and columns are summed in shared memory in a fixed order and
// added to grad with one atomic add per element and tile.
//
// This header is plain C++ (no device code, no torch) so that the torch binding and the CPU emulation of
// the kernel (tests/cuda_emulation) can include it.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace repose {
namespace cuda {

constexpr int kTile = 32;                    // rows and columns of a pair tile
constexpr int kWarps = 8;                    // warp w takes rows w, w + kWarps, ...; its lanes are the columns
constexpr int kThreads = kWarps * kTile;     // threads per block

// The tiles of one term: a series of n elements has nt = ceil(n / kTile) row (and column) tiles; the tile
// (i, i + o) exists for 0 <= o <= band, band = the largest tile offset that holds a pair within the window.
struct TermTiles {
  int64_t n = 0;       // series length
  int64_t window = 0;  // largest |k - l| of a pair, 0 <= window <= n
  int64_t nt = 0;      // tiles per side
  int64_t band = 0;    // largest tile offset
  int64_t tiles = 0;   // tiles per series (0: the term is off or has no pairs)
};

inline TermTiles term_tiles(int64_t n, int64_t window, bool on) {
  TermTiles t;
  t.n = n;
  t.window = window < 0 || window > n ? n : window;
  if (!on || n == 0) return t;
  t.nt = (n + kTile - 1) / kTile;
  const int64_t band = (t.window + kTile - 1) / kTile;
  t.band = band < t.nt - 1 ? band : t.nt - 1;
  // offsets 0..band, nt - o tiles each
  t.tiles = (t.band + 1) * t.nt - t.band * (t.band + 1) / 2;
  return t;
}

template <typename scalar_t>
struct DepthRankProblem {
  const scalar_t* pred;   // depth of (b, t, j) at pred[p_off + b * p_sb + t * p_st + j * p_sj]
  const scalar_t* gt;     // likewise with g_*
  const scalar_t* weight;  // (B, T, J) with strides w_*, or null (all ones)
  scalar_t* grad;          // zero-filled on entry; d loss.sum() / d pred added at d_off + d_* strides, or null
  const double* spatial_scale;   // (B,) factor of the spatial term
  const double* temporal_scale;  // (B,) factor of the temporal term
  scalar_t* block_loss;          // (B * blocks_per_sample) out: scale x hinge sum of each block's pairs
  scalar_t* block_active;        // (B * blocks_per_sample, 2) out: their [spatial, temporal] active weight
  int64_t B = 0, T = 0, J = 0;
  int64_t p_off = 0, p_sb = 0, p_st = 0, p_sj = 0;
  int64_t g_off = 0, g_sb = 0, g_st = 0, g_sj = 0;
  int64_t w_sb = 0, w_st = 0, w_sj = 0;
  int64_t d_off = 0, d_sb = 0, d_st = 0, d_sj = 0;
  scalar_t margin = 0;
  TermTiles spatial;   // series of J joints, one per frame
  TermTiles temporal;  // series of T frames, one per joint

  // Blocks of one sample: the spatial tiles of its T frames, then the temporal tiles of its J joints.
  __host__ __device__ int64_t blocks_per_sample() const { return T * spatial.tiles + J * temporal.tiles; }
};

// Launches the kernel for problem (grid B * blocks_per_sample, which must be below 2^31) on `stream`;
// returns the launch status (cudaGetLastError), not the completion status. scalar_t is float or double.
template <typename scalar_t>
cudaError_t launch_depth_rank_loss(const DepthRankProblem<scalar_t>& problem, cudaStream_t stream);

}  // namespace cuda
}  // namespace repose
