// Plain C++ (no torch) description of one repose::rank_hinge problem on the CPU, and
// the per-series epilogue shared by the dense and the sorted kernels.
//
// Every kernel computes, for each element j of a series, the weighted count of the
// violated pairs in which j is the ground-truth-nearer element minus those in which it
// is the farther one:
//   A_j = sum_{l: g_j < g_l, viol(j, l)} w_l  -  sum_{k: g_k < g_j, viol(k, j)} w_k,
//   viol(k, l) = fl(fl(p_k - p_l) + m) > 0      (the reference's float expression),
// so that d loss / d p_j = w_j * A_j. The hinge is piecewise linear, so the loss follows
// from the gradient (Euler's identity for the violated set):
//   loss = sum_{violated (k, l)} w_k w_l (p_k - p_l + m) = sum_j (p_j - c) w_j A_j + m * V,
// with V the weighted number of violated pairs and any constant c (sum_j w_j A_j = 0).
// Taking c = the midrange of p keeps the products small; the sum runs in double. Without weights
// A_j and V are exact integers. A NaN or infinite prediction makes c, hence the loss,
// NaN, as in the reference (whose diagonal pair evaluates inf - inf).
//
// Without weights A_j are exact integers, so gradients are identical for every kernel
// and instruction set; the loss may differ in the last bit between instruction sets
// (fused multiply-adds), never between runs.
#pragma once

#include <cstdint>

namespace repose {
namespace cpu {

// Where series s of a buffer lives. Row-major (S, N) by default; otherwise series
// s = q * inner + r starts at q * outer + r * inner_stride and its elements are `step`
// apart: e.g. the joints of each frame or the frames of each joint read straight out of
// a strided (B, T, J) depth view (the z channel of (B, T, J, 3) poses).
struct SeriesLayout {
  int64_t inner = 0;  // 0: row-major (S, N); the fields below are then unused
  int64_t outer = 0, inner_stride = 0, step = 1;
  int64_t start(int64_t s, int64_t n) const {
    return inner == 0 ? s * n : (s / inner) * outer + (s % inner) * inner_stride;
  }
  int64_t stride() const { return inner == 0 ? 1 : step; }
  // out[i] = base + start(s0 + i, n) for i < count, without a division per series.
  template <typename T>
  void starts(int64_t s0, int64_t count, int64_t n, const T* base, const T** out) const {
    if (inner == 0) {
      for (int64_t i = 0; i < count; ++i) out[i] = base + (s0 + i) * n;
      return;
    }
    int64_t q = s0 / inner, r = s0 % inner;
    for (int64_t i = 0; i < count; ++i) {
      out[i] = base + q * outer + r * inner_stride;
      if (++r == inner) r = 0, ++q;
    }
  }
};

// Where a kernel writes the gradient of one series: element k goes to p[k * step] as
// scale * (its d loss / d p), added to what is there when `add` (the second term of a
// one-pass op writing into the same gradient).
template <typename T>
struct GradSink {
  T* p = nullptr;  // nullptr: no gradient
  int64_t step = 1;
  double scale = 1;
  bool add = false;
  void put(int64_t k, double v) const {
    const T x = static_cast<T>(scale * v);
    p[k * step] = add ? T(p[k * step] + x) : x;
  }
};

template <typename T>
struct SeriesArgs {
  const T* p;        // (S, N) predicted depths (layout lp)
  const T* g;        // (S, N) ground-truth depths (layout lg)
  const T* w;        // (S, N) weights (layout lw), or nullptr
  int64_t s;         // number of series
  int64_t n;         // elements per series
  int64_t window;    // < 0: every pair; else only pairs with |k - l| <= window
  T margin;
  T* grad;           // (S, N) d loss_s / d p (layout lgrad; written as grad_of says), or nullptr
  double* loss;      // (S) weighted hinge sum of each series
  double* active;    // (S) weighted count of pairs with g_k < g_l, or nullptr
  SeriesLayout lp = {}, lg = {}, lw = {}, lgrad = {};
  const double* grad_scale = nullptr;  // series s's gradient is scaled by grad_scale[s / scale_every]
  int64_t scale_every = 1;
  bool grad_add = false;  // add the gradient to what the buffer holds

  GradSink<T> grad_of(int64_t s) const {
    if (grad == nullptr) return {};
    return {grad + lgrad.start(s, n), lgrad.stride(), grad_scale ? grad_scale[s / scale_every] : 1.0, grad_add};
  }
};

// Series s of `base` (layout l) as a contiguous row of n: the row itself when its
// elements are adjacent, else a copy in `buf`.
template <typename T>
inline const T* series_row(const T* base, const SeriesLayout& l, int64_t s, int64_t n, T* buf) {
  const T* src = base + l.start(s, n);
  const int64_t step = l.stride();
  if (step == 1) return src;
  for (int64_t k = 0; k < n; ++k) buf[k] = src[k * step];
  return buf;
}

// Writes the gradient (to `grad`), loss and active count of one series from its A_j
// (stride `stride` apart in `a`), V and active count. p and w point at the series' row.
template <typename T, typename Acc>
inline void finish_series(const T* p, const T* w, const Acc* a, int64_t stride, int64_t n, T margin,
                          double violated, double active, const GradSink<T>& grad, double* loss_out,
                          double* active_out) {
  // c = the midrange: exact for float inputs, and |p - c| is as small as it gets. The
  // extremes are taken in T over 16 interleaved partial ranges (vectorised; the order
  // is fixed, and c only has to be some constant, see above).
  constexpr int kMinMax = 16;
  T lo16[kMinMax], hi16[kMinMax];
  for (int i = 0; i < kMinMax; ++i) lo16[i] = hi16[i] = n > 0 ? p[0] : T(0);
  int64_t k0 = 0;
  for (; k0 + kMinMax <= n; k0 += kMinMax) {
    for (int i = 0; i < kMinMax; ++i) {
      const T x = p[k0 + i];
      lo16[i] = x < lo16[i] ? x : lo16[i];
      hi16[i] = x > hi16[i] ? x : hi16[i];
    }
  }
  for (int64_t k = k0; k < n; ++k) {
    lo16[0] = p[k] < lo16[0] ? p[k] : lo16[0];
    hi16[0] = p[k] > hi16[0] ? p[k] : hi16[0];
  }
  T lo = lo16[0], hi = hi16[0];
  for (int i = 1; i < kMinMax; ++i) lo = lo16[i] < lo ? lo16[i] : lo, hi = hi16[i] > hi ? hi16[i] : hi;
  const double c = 0.5 * static_cast<double>(lo) + 0.5 * static_cast<double>(hi);
  // Eight partial sums (element k goes to k % 8), combined in a fixed order: short
  // dependency chains, and the same result for every kernel.
  constexpr int kParts = 8;
  double part[kParts] = {};
  for (int64_t k = 0; k < n; ++k) {
    double gk = static_cast<double>(a[k * stride]);
    if (w != nullptr) gk *= static_cast<double>(w[k]);
    part[k % kParts] += (static_cast<double>(p[k]) - c) * gk;
    if (grad.p != nullptr) grad.put(k, gk);
  }
  double loss = 0;
  for (int i = 0; i < kParts; ++i) loss += part[i];
  *loss_out = loss + static_cast<double>(margin) * violated;
  if (active_out != nullptr) *active_out = active;
}

// finish_series for the L series of a lanes block at once: P, W, A are [n][L] (W may be
// nullptr), lane i is series s0 + i of `out` (its gradient, loss and active count are
// written). Lanes are independent, so each sums its k in order.
template <typename T, typename Acc, int L>
inline void finish_lanes(const T* P, const Acc* W, const Acc* A, int64_t n, int64_t lanes,
                         const double* violated, const double* active, const SeriesArgs<T>& out, int64_t s0,
                         T* scratch /* [n][L] */) {
  const T margin = out.margin;
  double* loss_out = out.loss + s0;
  double* active_out = out.active ? out.active + s0 : nullptr;
  T lo[L], hi[L];  // extremes in T: exact, and vectorised
  double c[L], loss[L];
  for (int i = 0; i < L; ++i) lo[i] = hi[i] = n > 0 ? P[i] : T(0);
  for (int64_t k = 1; k < n; ++k) {
    for (int i = 0; i < L; ++i) {
      const T x = P[k * L + i];
      lo[i] = x < lo[i] ? x : lo[i];
      hi[i] = x > hi[i] ? x : hi[i];
    }
  }
  for (int i = 0; i < L; ++i) c[i] = 0.5 * static_cast<double>(lo[i]) + 0.5 * static_cast<double>(hi[i]), loss[i] = 0;
  for (int64_t k = 0; k < n; ++k) {
    for (int i = 0; i < L; ++i) {
      double gk = static_cast<double>(A[k * L + i]);
      if (W != nullptr) gk *= static_cast<double>(W[k * L + i]);
      loss[i] += (static_cast<double>(P[k * L + i]) - c[i]) * gk;
      scratch[k * L + i] = static_cast<T>(gk);
    }
  }
  for (int64_t i = 0; i < lanes; ++i) {
    loss_out[i] = loss[i] + static_cast<double>(margin) * violated[i];
    if (active_out != nullptr) active_out[i] = active[i];
    const GradSink<T> grad = out.grad_of(s0 + i);
    if (grad.p != nullptr) {
      for (int64_t k = 0; k < n; ++k) grad.put(k, scratch[k * L + i]);
    }
  }
}

}  // namespace cpu
}  // namespace repose
