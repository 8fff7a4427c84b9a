// One row of the pairwise rank hinge: element k of a series against the elements
// l in [lo, hi) of the same series. Plain C++ (no torch), shared by every backend
// that can use it; branch-free so that the compiler vectorises the loop.
//
// For the pair (k, l):
//   k nearer (gt_k < gt_l): loss += w_l * relu(p_k - p_l + m), grad_k += w_l * [p_k - p_l + m > 0]
//   l nearer (gt_l < gt_k): grad_k -= w_l * [p_l - p_k + m > 0]
// The caller multiplies the sums by w_k. The relu subgradient at 0 is 0 (strict >).
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define REPOSE_HOST_DEVICE __host__ __device__
#else
#define REPOSE_HOST_DEVICE
#endif

namespace repose {

template <typename acc_t>
struct RowSums {
  acc_t loss;    // sum over l of w_l * [gt_k < gt_l] * relu(p_k - p_l + m)
  acc_t grad;    // d loss_series / d p_k, before the factor w_k
  acc_t active;  // sum over l of w_l * [gt_k < gt_l]
};

template <typename scalar_t, bool kWeighted, bool kGrad, bool kActive>
REPOSE_HOST_DEVICE inline RowSums<scalar_t> rank_hinge_row(
    const scalar_t* p, const scalar_t* g, const scalar_t* w, int64_t k, int64_t lo, int64_t hi,
    scalar_t margin) {
  const scalar_t pk = p[k];
  const scalar_t gk = g[k];
  scalar_t loss = 0, grad = 0, active = 0;
  for (int64_t l = lo; l < hi; ++l) {
    const scalar_t wl = kWeighted ? w[l] : scalar_t(1);
    const scalar_t d = pk - p[l] + margin;  // hinge argument with k nearer
    const scalar_t e = margin - (pk - p[l]);  // hinge argument with l nearer
    const bool k_nearer = gk < g[l];
    const bool l_nearer = g[l] < gk;
    // max idiom that keeps NaN (compiles to maxps); multiplying, not selecting,
    // below keeps a NaN prediction visible in the loss.
    const scalar_t relu_d = d < scalar_t(0) ? scalar_t(0) : d;
    loss += wl * scalar_t(k_nearer) * relu_d;
    if (kGrad) grad += wl * (scalar_t(k_nearer & (d > scalar_t(0))) - scalar_t(l_nearer & (e > scalar_t(0))));
    if (kActive) active += wl * scalar_t(k_nearer);
  }
  return {loss, grad, active};
}

}  // namespace repose
