// CUDA kernels of repose::rank_hinge behind a torch-free launcher (pointers, sizes, stream).
//
// Input: S series of length N, row-major and contiguous (pred, gt, optional weight). For
// every series s it computes
//   stats[s, 0] = sum over pairs (k, l) with gt_k < gt_l of w_k w_l relu(p_k - p_l + margin)
//   stats[s, 1] = sum over the same pairs of w_k w_l        (0 unless need_active)
//   grad[s, k]  = d stats[s, 0] / d p_k                      (skipped when grad is null)
// over the pairs with |k - l| <= window (window < 0: all pairs). See csrc/rank_loss.cpp and
// repose_ext/reference.py for the definition, csrc/rank_hinge_row.h for the pair loop.
//
// One thread owns one row (element k against its series), so it writes grad[s, k] and a row
// sum without atomics; a second kernel sums the rows of each series in a fixed order. The
// results are bit-identical from run to run. Nothing of size O(pairs) is stored: the scratch
// is two (S * N) row buffers.
//
// This header is plain C++ (no device code, no torch) so that the torch binding can include it.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace repose {
namespace cuda {

// Bytes of device scratch that launch_rank_hinge needs for S series of length N.
size_t rank_hinge_workspace_bytes(int64_t S, int64_t N, size_t scalar_size);

// Computes stats (S, 2) and, when grad is not null, grad (S, N); scalar_t is float or double.
// weight may be null (all ones). workspace must hold rank_hinge_workspace_bytes(S, N,
// sizeof(scalar_t)) bytes, aligned like cudaMalloc. Launches on `stream`; returns the
// launch status (cudaGetLastError), not the completion status.
template <typename scalar_t>
cudaError_t launch_rank_hinge(const scalar_t* pred, const scalar_t* gt, const scalar_t* weight, int64_t S,
                              int64_t N, scalar_t margin, int64_t window, bool need_active, scalar_t* stats,
                              scalar_t* grad, void* workspace, cudaStream_t stream);

}  // namespace cuda
}  // namespace repose
