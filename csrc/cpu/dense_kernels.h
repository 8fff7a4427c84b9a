// Dense O(N^2) kernels of repose::rank_hinge on the CPU (plain C++, no torch).
//
// Each unordered pair {k, l} of a series is visited once and updates both A_k and A_l
// (see series.h). The per-pair work is written as a loop over L independent lanes, which
// the compiler turns into SIMD code for the ISA the caller is compiled for:
// * dense_lanes: lanes = L different series (element k of 16 series side by side). For
//   short series (the J joints of a frame): no horizontal sums, no partial vectors.
// * dense_rows:  lanes = L consecutive partners l of one element k of one series. For
//   long series and for few series.
// Unweighted counts are integers (exact, order-free); weighted sums run in double in a
// fixed order. Either way the result does not depend on threads or scheduling.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "series.h"

namespace repose {
namespace cpu {

template <typename T>
struct DenseTraits {
  static constexpr int kLanes = 64 / sizeof(T);  // one 512-bit register of T
  using Count = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
};

template <typename T, bool kW>
using DenseAcc = std::conditional_t<kW, double, typename DenseTraits<T>::Count>;

// One lane of one pair (k, l): updates A_k (ak), A_l (al), V and the active count.
template <typename T, typename Acc, bool kW, bool kM, bool kA>
inline __attribute__((always_inline)) void pair_lane(T pk, T gk, Acc wk, T pl, T gl, Acc wl, T m, Acc& ak,
                                                     Acc& al, Acc& vio, Acc& act) {
  const T d = pk - pl;
  const bool k_near = gk < gl;
  const bool l_near = gl < gk;
  // not (fl(p_k - p_l) + m <= 0) and not (fl(p_l - p_k) + m <= 0); with m = 0 the signs of d. "Not <=" makes a
  // NaN difference count as violated, as the reference's relu passes the gradient there.
  const bool x = k_near & (kM ? !(d + m <= T(0)) : !(d <= T(0)));
  const bool y = l_near & (kM ? !(m - d <= T(0)) : !(d >= T(0)));
  const Acc t = Acc(x) - Acc(y);
  if constexpr (kW) {
    ak += t * wl;
    al -= t * wk;
    if constexpr (kM) vio += Acc(x | y) * (wk * wl);
    if constexpr (kA) act += Acc(k_near | l_near) * (wk * wl);
  } else {
    ak += t;
    al -= t;
    if constexpr (kM) vio += Acc(x | y);
    if constexpr (kA) act += Acc(k_near | l_near);
  }
}

// out[k * L + i] = element k of series s0 + i (layout l of base) for the first `lanes`
// series, 0 for the other lanes (a zero ground truth everywhere: an unused lane has no pairs).
template <typename T, typename Out, int L>
inline __attribute__((always_inline)) void transpose_in(const T* base, const SeriesLayout& l, int64_t s0, int64_t n,
                                                        int64_t lanes, Out* out) {
  const int64_t step = l.stride();
  const T* src[L];
  l.starts(s0, lanes, n, base, src);
  for (int64_t k = 0; k < n; ++k) {
    for (int64_t i = 0; i < lanes; ++i) out[k * L + i] = Out(src[i][k * step]);
    for (int64_t i = lanes; i < L; ++i) out[k * L + i] = Out(0);
  }
}

// Loads the block of series s0 .. s0 + lanes - 1 for a lanes kernel: P, G (and W when kW)
// transposed to [n][L], the accumulators A zeroed.
template <typename T, typename Acc, int L, bool kW>
inline __attribute__((always_inline)) void lanes_block_in(const SeriesArgs<T>& a, int64_t s0, int64_t lanes, T* P,
                                                          T* G, Acc* W, Acc* A) {
  transpose_in<T, T, L>(a.p, a.lp, s0, a.n, lanes, P);
  transpose_in<T, T, L>(a.g, a.lg, s0, a.n, lanes, G);
  if constexpr (kW) transpose_in<T, Acc, L>(a.w, a.lw, s0, a.n, lanes, W);
  std::memset(A, 0, sizeof(Acc) * a.n * L);
}

// Bytes of scratch dense_lanes needs for series of n elements.
template <typename T, bool kW>
constexpr int64_t dense_lanes_scratch(int64_t n) {
  constexpr int64_t L = DenseTraits<T>::kLanes;
  return n * L * (2 * int64_t(sizeof(T)) + (kW ? int64_t(sizeof(double)) : 0) + int64_t(sizeof(DenseAcc<T, kW>)));
}

// Series blocks [block_begin, block_end): block b holds series [b*L, min(S, (b+1)*L)).
// scratch: dense_lanes_scratch bytes, 64-byte aligned.
template <typename T, bool kW, bool kM, bool kA>
inline __attribute__((always_inline)) void dense_lanes(const SeriesArgs<T>& a, int64_t block_begin,
                                                       int64_t block_end, void* scratch) {
  constexpr int L = DenseTraits<T>::kLanes;
  using Acc = DenseAcc<T, kW>;
  const int64_t n = a.n;
  const T m = a.margin;
  T* P = static_cast<T*>(scratch);  // [n][L]
  T* G = P + n * L;                  // [n][L]
  Acc* W = reinterpret_cast<Acc*>(G + n * L);  // [n][L], only when kW
  Acc* A = W + (kW ? n * L : 0);               // [n][L]

  for (int64_t b = block_begin; b < block_end; ++b) {
    const int64_t s0 = b * L;
    const int64_t lanes = a.s - s0 < L ? a.s - s0 : L;
    // Transpose the block in; unused lanes get zeros (equal ground truth: no pairs).
    lanes_block_in<T, Acc, L, kW>(a, s0, lanes, P, G, W, A);
    Acc vio[L] = {}, act[L] = {};

    for (int64_t k = 0; k < n; ++k) {
      T pk[L], gk[L];
      Acc wk[L], ak[L];
      for (int i = 0; i < L; ++i) {
        pk[i] = P[k * L + i];
        gk[i] = G[k * L + i];
        wk[i] = kW ? W[k * L + i] : Acc(1);
        ak[i] = A[k * L + i];
      }
      const int64_t hi = a.window < 0 || k + a.window + 1 > n ? n : k + a.window + 1;
      for (int64_t l = k + 1; l < hi; ++l) {
        const T* pl = P + l * L;
        const T* gl = G + l * L;
        const Acc* wl = W + l * L;
        Acc* al = A + l * L;
        for (int i = 0; i < L; ++i) {
          pair_lane<T, Acc, kW, kM, kA>(pk[i], gk[i], wk[i], pl[i], gl[i], kW ? wl[i] : Acc(1), m, ak[i], al[i],
                                        vio[i], act[i]);
        }
      }
      for (int i = 0; i < L; ++i) A[k * L + i] = ak[i];
    }

    double vio_d[L], act_d[L];
    for (int i = 0; i < L; ++i) vio_d[i] = double(vio[i]), act_d[i] = double(act[i]);
    finish_lanes<T, Acc, L>(P, kW ? W : nullptr, A, n, lanes, vio_d, act_d, a, s0, G);
  }
}

// n + L rounded up to a multiple of L.
template <typename T>
constexpr int64_t dense_rows_padded(int64_t n) {
  constexpr int64_t L = DenseTraits<T>::kLanes;
  return (n + 2 * L - 1) / L * L;
}

// Bytes of the row kernels' (portable and AVX-512) own arrays for series of n elements.
template <typename T>
constexpr int64_t dense_rows_arrays(int64_t n) {
  constexpr int64_t L = DenseTraits<T>::kLanes;
  const int64_t np = dense_rows_padded<T>(n);
  const int64_t bytes = np * (2 * int64_t(sizeof(T)) + 4 * int64_t(sizeof(double)) + 2 * int64_t(sizeof(int32_t))) +
                        (L + 1) * int64_t(sizeof(double)) + 64;
  return (bytes + 63) / 64 * 64;
}

// Bytes of scratch the row kernels need: their arrays, then three rows of np elements
// that series_row gathers strided series into (p, g, w).
template <typename T, bool kW>
constexpr int64_t dense_rows_scratch(int64_t n) {
  return dense_rows_arrays<T>(n) + 3 * dense_rows_padded<T>(n) * int64_t(sizeof(T));
}

// The three gather rows of a row kernel's scratch: [0, np) p, [np, 2 np) g, [2 np, 3 np) w.
template <typename T>
inline T* dense_rows_gather(void* scratch, int64_t n) {
  return reinterpret_cast<T*>(static_cast<char*>(scratch) + dense_rows_arrays<T>(n));
}

// Series [s_begin, s_end), one at a time; lanes run over the partners l of element k.
template <typename T, bool kW, bool kM, bool kA>
inline __attribute__((always_inline)) void dense_rows(const SeriesArgs<T>& a, int64_t s_begin, int64_t s_end,
                                                      void* scratch) {
  constexpr int L = DenseTraits<T>::kLanes;
  using Acc = DenseAcc<T, kW>;
  const int64_t n = a.n;
  const T m = a.margin;
  T* P = static_cast<T*>(scratch);  // [n + L]
  T* G = P + n + L;                  // [n + L]; the padding is NaN: never nearer nor farther
  Acc* W = reinterpret_cast<Acc*>(G + n + L);  // [n + L], only when kW
  Acc* A = W + (kW ? n + L : 0);               // [n + L]

  T* gather = dense_rows_gather<T>(scratch, n);
  const int64_t np = dense_rows_padded<T>(n);

  for (int64_t s = s_begin; s < s_end; ++s) {
    const T* ps = series_row(a.p, a.lp, s, n, gather);
    const T* gs = series_row(a.g, a.lg, s, n, gather + np);
    const T* ws = kW ? series_row(a.w, a.lw, s, n, gather + 2 * np) : nullptr;
    for (int64_t k = 0; k < n; ++k) {
      P[k] = ps[k];
      G[k] = gs[k];
      if constexpr (kW) W[k] = Acc(ws[k]);
    }
    for (int64_t k = n; k < n + L; ++k) {
      P[k] = T(0);
      G[k] = std::numeric_limits<T>::quiet_NaN();
      if constexpr (kW) W[k] = Acc(0);
    }
    std::memset(A, 0, sizeof(Acc) * (n + L));
    double v = 0, c = 0;  // totals of V and of the active count, flushed row by row

    for (int64_t k = 0; k < n; ++k) {
      const T pk = P[k], gk = G[k];
      const Acc wk = kW ? W[k] : Acc(1);
      const int64_t hi = a.window < 0 || k + a.window + 1 > n ? n : k + a.window + 1;
      Acc ak[L] = {}, vio[L] = {}, act[L] = {};
      int64_t l = k + 1;
      for (; l + L <= hi; l += L) {
        for (int i = 0; i < L; ++i) {
          pair_lane<T, Acc, kW, kM, kA>(pk, gk, wk, P[l + i], G[l + i], kW ? W[l + i] : Acc(1), m, ak[i],
                                        A[l + i], vio[i], act[i]);
        }
      }
      if (l < hi) {  // last partial vector: lanes past hi see a NaN ground truth
        const int64_t rem = hi - l;
        for (int i = 0; i < L; ++i) {
          const T gl = i < rem ? G[l + i] : std::numeric_limits<T>::quiet_NaN();
          pair_lane<T, Acc, kW, kM, kA>(pk, gk, wk, P[l + i], gl, kW ? W[l + i] : Acc(1), m, ak[i], A[l + i],
                                        vio[i], act[i]);
        }
      }
      Acc sum = 0;
      for (int i = 0; i < L; ++i) sum += ak[i];
      A[k] += sum;
      if constexpr (kM) {
        Acc row = 0;
        for (int i = 0; i < L; ++i) row += vio[i];
        v += double(row);
      }
      if constexpr (kA) {
        Acc row = 0;
        for (int i = 0; i < L; ++i) row += act[i];
        c += double(row);
      }
    }

    finish_series<T, Acc>(ps, ws, A, 1, n, m, v, c, a.grad_of(s), a.loss + s, a.active ? a.active + s : nullptr);
  }
}

}  // namespace cpu
}  // namespace repose
