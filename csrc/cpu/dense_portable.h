// Unweighted dense kernels for the portable instruction sets (AVX2, baseline x86-64),
// written with GCC vector extensions: a comparison gives -1/0 integer lanes, which are
// and-ed and summed directly (no bool-to-number conversions for the compiler to guess
// at). VB is the register width in bytes (32 for AVX2, 16 for SSE2): wider vector types
// would have their comparisons expanded element by element. Same contracts and scratch
// as dense_lanes / dense_rows (dense_kernels.h); a lanes block of 64 bytes is processed
// as 64 / VB sub-blocks. Counts are exact integers: results equal the other kernels'.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "dense_kernels.h"

namespace repose {
namespace cpu {
namespace portable {

template <typename T, int VB>
struct VecX {
  static constexpr int L = VB / int(sizeof(T));
  using Int = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;
  typedef T V __attribute__((vector_size(VB)));
  typedef Int I __attribute__((vector_size(VB)));
};

template <typename Vec, typename T>
inline __attribute__((always_inline)) Vec load(const T* p) {
  Vec v;
  std::memcpy(&v, p, sizeof(Vec));
  return v;
}

template <typename Vec, typename T>
inline __attribute__((always_inline)) void store(T* p, Vec v) {
  std::memcpy(p, &v, sizeof(Vec));
}

template <typename Vec, typename S>
inline __attribute__((always_inline)) Vec splat(S x) {
  Vec v;
  for (int i = 0; i < int(sizeof(Vec) / sizeof(S)); ++i) v[i] = x;
  return v;
}

// -1 lanes: x (k nearer, violated), y (l nearer, violated), any (active pair).
template <typename T, int VB, bool kM>
inline __attribute__((always_inline)) void pair_masks(typename VecX<T, VB>::V pk, typename VecX<T, VB>::V gk,
                                                      typename VecX<T, VB>::V pl, typename VecX<T, VB>::V gl,
                                                      typename VecX<T, VB>::V m, typename VecX<T, VB>::I& x,
                                                      typename VecX<T, VB>::I& y, typename VecX<T, VB>::I& any) {
  using V = typename VecX<T, VB>::V;
  const auto k_near = gk < gl;
  const auto l_near = gl < gk;
  if constexpr (kM) {
    const V d = pk - pl;
    const V zero = splat<V>(T(0));
    x = k_near & ~(d + m <= zero);  // not (... <= 0): NaN counts as violated, as in the reference's relu
    y = l_near & ~(m - d <= zero);
  } else {
    x = k_near & ~(pk <= pl);
    y = l_near & ~(pl <= pk);
  }
  any = k_near | l_near;
}

template <typename I>
inline __attribute__((always_inline)) int64_t hsum(I v) {
  int64_t s = 0;
  for (int i = 0; i < int(sizeof(I) / sizeof(v[0])); ++i) s += v[i];
  return s;
}

template <typename T, int VB, bool kM, bool kA>
inline __attribute__((always_inline)) void lanes(const SeriesArgs<T>& a, int64_t block_begin, int64_t block_end,
                                                 void* scratch) {
  using X = VecX<T, VB>;
  using V = typename X::V;
  using I = typename X::I;
  constexpr int L = X::L;                              // lanes of one register
  constexpr int kBlock = DenseTraits<T>::kLanes;       // series per block of the caller
  using Acc = DenseAcc<T, false>;
  static_assert(std::is_same_v<Acc, typename X::Int>, "counters match the lanes");
  const int64_t n = a.n;
  T* P = static_cast<T*>(scratch);  // [n][L] per sub-block
  T* G = P + n * L;
  Acc* A = reinterpret_cast<Acc*>(G + n * L);
  const V mv = splat<V>(a.margin);

  for (int64_t b = block_begin * (kBlock / L); b < block_end * (kBlock / L); ++b) {
    const int64_t s0 = b * L;
    if (s0 >= a.s) break;
    const int64_t lanes_used = a.s - s0 < L ? a.s - s0 : L;
    lanes_block_in<T, Acc, L, false>(a, s0, lanes_used, P, G, nullptr, A);
    I vio = splat<I>(Acc(0)), act = splat<I>(Acc(0));
    for (int64_t k = 0; k < n; ++k) {
      const V pk = load<V>(P + k * L), gk = load<V>(G + k * L);
      I ak = load<I>(A + k * L);
      const int64_t hi = a.window < 0 || k + a.window + 1 > n ? n : k + a.window + 1;
      for (int64_t l = k + 1; l < hi; ++l) {
        I x, y, any;
        pair_masks<T, VB, kM>(pk, gk, load<V>(P + l * L), load<V>(G + l * L), mv, x, y, any);
        ak += y - x;  // -1 lanes: A_k gains x and loses y
        store(A + l * L, load<I>(A + l * L) + x - y);
        if constexpr (kM) vio -= x | y;
        if constexpr (kA) act -= any;
      }
      store(A + k * L, ak);
    }
    double vio_d[L], act_d[L];
    for (int i = 0; i < L; ++i) vio_d[i] = double(vio[i]), act_d[i] = double(act[i]);
    finish_lanes<T, Acc, L>(P, nullptr, A, n, lanes_used, vio_d, act_d, a, s0, G);
  }
}

// R rows share every partner load; the window (if any) and the triangle's first vector
// are cut with lane-index masks, the series' end by NaN ground-truth padding.
template <typename T, int VB, bool kM, bool kA, int R>
inline __attribute__((always_inline)) void rows(const SeriesArgs<T>& a, int64_t s_begin, int64_t s_end, void* scratch) {
  using X = VecX<T, VB>;
  using V = typename X::V;
  using I = typename X::I;
  constexpr int L = X::L;
  using Acc = DenseAcc<T, false>;
  const int64_t n = a.n;
  const bool windowed = a.window >= 0;
  const int64_t np = dense_rows_padded<T>(n);
  T* P = static_cast<T*>(scratch);
  T* G = P + np;
  Acc* A = reinterpret_cast<Acc*>(G + np);
  Acc* A_row = A + np;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const V mv = splat<V>(a.margin);
  I iota;
  for (int i = 0; i < L; ++i) iota[i] = Acc(i);

  T* gather = dense_rows_gather<T>(scratch, n);

  for (int64_t s = s_begin; s < s_end; ++s) {
    const T* ps = series_row(a.p, a.lp, s, n, gather);
    std::memcpy(P, ps, sizeof(T) * n);
    std::memcpy(G, series_row(a.g, a.lg, s, n, gather + np), sizeof(T) * n);
    for (int64_t i = n; i < n + L; ++i) P[i] = T(0), G[i] = nan;
    std::memset(A, 0, sizeof(Acc) * (n + L));
    int64_t vio = 0, act = 0;
    for (int64_t k0 = 0; k0 < n; k0 += R) {
      const int rows_live = int(n - k0 < R ? n - k0 : R);
      V pk[R], gk[R];
      I ak[R], lo[R], hi[R];
      for (int r = 0; r < R; ++r) {
        const bool ok = r < rows_live;
        pk[r] = splat<V>(ok ? P[k0 + r] : T(0));
        gk[r] = splat<V>(ok ? G[k0 + r] : nan);
        ak[r] = splat<I>(Acc(0));
        lo[r] = splat<I>(Acc(k0 + r));  // partners l > k
        const int64_t h = !windowed || k0 + r + a.window + 1 > n ? n : k0 + r + a.window + 1;
        hi[r] = splat<I>(Acc(h));  // and l < hi
      }
      const int64_t l_end = windowed ? (k0 + rows_live - 1 + a.window + 1 > n ? n : k0 + rows_live + a.window) : n;
      I vio_v = splat<I>(Acc(0)), act_v = splat<I>(Acc(0));
      for (int64_t l = k0 + 1; l < l_end; l += L) {
        const V pl = load<V>(P + l), gl = load<V>(G + l);
        const I idx = iota + Acc(l);
        const bool cut = windowed || l == k0 + 1;
        I al = splat<I>(Acc(0));
        for (int r = 0; r < R; ++r) {
          I x, y, any;
          pair_masks<T, VB, kM>(pk[r], gk[r], pl, gl, mv, x, y, any);
          if (cut) {
            const I valid = (idx > lo[r]) & (idx < hi[r]);
            x &= valid, y &= valid, any &= valid;
          }
          ak[r] += y - x;
          al += x - y;
          if constexpr (kM) vio_v -= x | y;
          if constexpr (kA) act_v -= any;
        }
        store(A + l, load<I>(A + l) + al);
      }
      for (int r = 0; r < rows_live; ++r) A_row[k0 + r] = Acc(hsum(ak[r]));
      vio += hsum(vio_v);
      act += hsum(act_v);
    }
    for (int64_t k = 0; k < n; ++k) A[k] += A_row[k];
    finish_series<T, Acc>(ps, nullptr, A, 1, n, a.margin, double(vio), double(act), a.grad_of(s), a.loss + s,
                          a.active ? a.active + s : nullptr);
  }
}

// Entries with the signature of dense_lanes / dense_rows for VB-byte registers; weighted
// problems keep the lane-loop kernels of dense_kernels.h.
template <int VB>
struct Portable {
  template <typename T, bool kW, bool kM, bool kA>
  static inline __attribute__((always_inline)) void lanes_entry(const SeriesArgs<T>& a, int64_t b, int64_t e,
                                                                void* scratch) {
    if constexpr (kW) {
      dense_lanes<T, kW, kM, kA>(a, b, e, scratch);
    } else {
      lanes<T, VB, kM, kA>(a, b, e, scratch);
    }
  }
  template <typename T, bool kW, bool kM, bool kA>
  static inline __attribute__((always_inline)) void rows_entry(const SeriesArgs<T>& a, int64_t b, int64_t e,
                                                               void* scratch) {
    if constexpr (kW) {
      dense_rows<T, kW, kM, kA>(a, b, e, scratch);
    } else {
      rows<T, VB, kM, kA, 4>(a, b, e, scratch);
    }
  }
};

template <typename T, bool kW, bool kM, bool kA>
inline __attribute__((always_inline)) void dense_lanes_avx2(const SeriesArgs<T>& a, int64_t b, int64_t e, void* s) {
  Portable<32>::lanes_entry<T, kW, kM, kA>(a, b, e, s);
}
template <typename T, bool kW, bool kM, bool kA>
inline __attribute__((always_inline)) void dense_rows_avx2(const SeriesArgs<T>& a, int64_t b, int64_t e, void* s) {
  Portable<32>::rows_entry<T, kW, kM, kA>(a, b, e, s);
}
template <typename T, bool kW, bool kM, bool kA>
inline __attribute__((always_inline)) void dense_lanes_base(const SeriesArgs<T>& a, int64_t b, int64_t e, void* s) {
  Portable<16>::lanes_entry<T, kW, kM, kA>(a, b, e, s);
}
template <typename T, bool kW, bool kM, bool kA>
inline __attribute__((always_inline)) void dense_rows_base(const SeriesArgs<T>& a, int64_t b, int64_t e, void* s) {
  Portable<16>::rows_entry<T, kW, kM, kA>(a, b, e, s);
}

}  // namespace portable
}  // namespace cpu
}  // namespace repose
