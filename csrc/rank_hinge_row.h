// One row of the pairwise rank hinge: element k of a series (depth pk, ground truth gk)
// against the elements l in [lo, hi) of the same series. Plain C++ (no torch), shared by
// every backend that can use it.
//
// For the pair (k, l):
//   k nearer (gk < g_l): loss += w_l * relu(pk - p_l + m),   grad_k += w_l * [not (pk - p_l + m <= 0)]
//   l nearer (g_l < gk): grad_k -= w_l * [not (p_l - pk + m <= 0)]
// The caller multiplies the sums by w_k. The relu subgradient at 0 is 0 (strict >).
//
// The loop is written in float arithmetic only (indicators as float(a < b), products
// instead of selections): branch-free on the GPU, and a NaN prediction still makes the loss
// NaN. Used by the CUDA kernels; the CPU has its own kernels (csrc/cpu/).
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define REPOSE_HOST_DEVICE __host__ __device__ __forceinline__
#else
// always_inline: the loop must be compiled inside each ISA clone of its caller.
#define REPOSE_HOST_DEVICE __attribute__((always_inline)) inline
#endif

namespace repose {

template <typename acc_t>
struct RowSums {
  acc_t loss;    // sum over l of w_l * [gk < g_l] * relu(pk - p_l + m)
  acc_t grad;    // d loss_series / d p_k, before the factor w_k
  acc_t active;  // sum over l of w_l * [gk < g_l]
};

template <typename scalar_t, bool kWeighted, bool kGrad, bool kActive>
REPOSE_HOST_DEVICE RowSums<scalar_t> rank_hinge_row(const scalar_t* p, const scalar_t* g, const scalar_t* w,
                                                    scalar_t pk, scalar_t gk, int64_t lo, int64_t hi,
                                                    scalar_t margin) {
  const scalar_t zero = 0;
  scalar_t loss = 0, grad = 0, active = 0;
  for (int64_t l = lo; l < hi; ++l) {
    const scalar_t wl = kWeighted ? w[l] : scalar_t(1);
    const scalar_t d = pk - p[l] + margin;    // hinge argument with k nearer
    const scalar_t e = margin - (pk - p[l]);  // hinge argument with l nearer
    const scalar_t k_nearer = scalar_t(gk < g[l]);
    const scalar_t l_nearer = scalar_t(g[l] < gk);
    const scalar_t relu_d = d < zero ? zero : d;  // keeps NaN
    loss += wl * (k_nearer * relu_d);
    // !(x <= 0): a NaN difference passes the gradient, as the reference's relu does
    if (kGrad) grad += wl * (k_nearer * scalar_t(!(d <= zero)) - l_nearer * scalar_t(!(e <= zero)));
    if (kActive) active += wl * k_nearer;
  }
  return {loss, grad, active};
}

}  // namespace repose
