// The dense O(N^2) kernels of repose::rank_hinge on the CPU, written once over a SIMD
// trait X (simd.h: AVX-512, vector extensions for AVX2 / SSE2, scalar). Plain C++, no torch.
//
// Each unordered pair {k, l} of a series is visited once and updates both A_k and A_l
// (see series.h). Two kernels:
// * lanes: X::L different series side by side, element k of each in one register (short
//   series such as the J joints of a frame: no horizontal sums, no partial vectors);
// * rows:  one series at a time, R rows k against X::L partners l per step (long series).
//   Without a window the elements are first grouped by ground truth into buckets, so that
//   most pairs need only the prediction test (see rows()).
// Unweighted counts are exact integers (every trait gives the same gradient); weighted sums
// run in double in a fixed order. Results do not depend on threads or scheduling.
//
// The functions here are plain templates: an ISA's entry point (dense_cpu.cpp) carries the
// target attribute and `flatten`, which inlines them and the trait functions into it.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "series.h"
#include "simd.h"

namespace repose {
namespace cpu {

// Series per block of the lanes kernel (one 64-byte line of T), for every trait: a trait
// with fewer lanes runs a block as several sub-blocks.
template <typename T>
constexpr int kBlockSeries = 64 / sizeof(T);

template <typename T, bool kW>
using DenseAcc = std::conditional_t<kW, double, simd::Count<T>>;

// Bytes of scratch the lanes kernel needs for series of n elements: P, G, (W), A as [n][block].
template <typename T, bool kW>
constexpr int64_t dense_lanes_scratch(int64_t n) {
  constexpr int64_t L = kBlockSeries<T>;
  return n * L * (2 * int64_t(sizeof(T)) + (kW ? int64_t(sizeof(double)) : 0) + int64_t(sizeof(DenseAcc<T, kW>)));
}

// n + one block, rounded up to a block: the rows kernel's array length (its padding holds
// whole vectors of any trait).
template <typename T>
constexpr int64_t dense_rows_padded(int64_t n) {
  constexpr int64_t L = kBlockSeries<T>;
  return (n + 2 * L - 1) / L * L;
}

// Bytes of the rows kernel's own arrays for series of n elements.
template <typename T>
constexpr int64_t dense_rows_arrays(int64_t n) {
  constexpr int64_t L = kBlockSeries<T>;
  const int64_t np = dense_rows_padded<T>(n);
  const int64_t bytes = np * (2 * int64_t(sizeof(T)) + 4 * int64_t(sizeof(double)) + 2 * int64_t(sizeof(int32_t))) +
                        (L + 1) * int64_t(sizeof(double)) + 64;
  return (bytes + 63) / 64 * 64;
}

// Bytes of scratch the rows kernel needs: its arrays, then three rows of np elements that
// series_row gathers strided series into (p, g, w).
template <typename T, bool kW>
constexpr int64_t dense_rows_scratch(int64_t n) {
  return dense_rows_arrays<T>(n) + 3 * dense_rows_padded<T>(n) * int64_t(sizeof(T));
}

// out[k * L + i] = element k of series s0 + i (layout l of base) for the first `lanes`
// series, 0 for the other lanes (a zero ground truth everywhere: an unused lane has no pairs).
template <typename T, typename Out, int L>
inline void transpose_in(const T* base, const SeriesLayout& l, int64_t s0, int64_t n, int64_t lanes, Out* out) {
  const int64_t step = l.stride();
  const T* src[L];
  l.starts(s0, lanes, n, base, src);
  for (int64_t k = 0; k < n; ++k) {
    for (int64_t i = 0; i < lanes; ++i) out[k * L + i] = Out(src[i][k * step]);
    for (int64_t i = lanes; i < L; ++i) out[k * L + i] = Out(0);
  }
}

// x: k nearer and violated; y: l nearer and violated; any: the pair is active.
template <class X, bool kM>
inline void pair_masks(typename X::V pk, typename X::V gk, typename X::V pl, typename X::V gl, typename X::V m,
                       typename X::M& x, typename X::M& y, typename X::M& any) {
  const typename X::M k_near = X::lt(gk, gl);
  const typename X::M l_near = X::lt(gl, gk);
  if constexpr (kM) {
    const typename X::V d = X::sub(pk, pl);
    x = X::pos(k_near, X::add(d, m));  // not (fl(p_k - p_l) + m <= 0)
    y = X::pos(l_near, X::sub(m, d));  // not (fl(p_l - p_k) + m <= 0)
  } else {
    x = X::nle(k_near, pk, pl);  // not (p_k <= p_l): also NaN
    y = X::nle(l_near, pl, pk);
  }
  any = typename X::M(k_near | l_near);
}

// ---------------------------------------------------------------------------------------------
// lanes: series blocks [block_begin, block_end) of kBlockSeries<T> series each (the last one
// may be short); scratch: dense_lanes_scratch bytes, 64-byte aligned.

template <class X, typename T, bool kW, bool kM, bool kA>
inline void lanes(const SeriesArgs<T>& a, int64_t block_begin, int64_t block_end, void* scratch) {
  constexpr int L = X::L;
  using Acc = DenseAcc<T, kW>;
  using M = typename X::M;
  const int64_t n = a.n;
  T* P = static_cast<T*>(scratch);  // [n][L]
  T* G = P + n * L;
  Acc* W = reinterpret_cast<Acc*>(G + n * L);  // only when kW
  Acc* A = W + (kW ? n * L : 0);
  const typename X::V mv = X::set1(a.margin);

  for (int64_t b = block_begin * (kBlockSeries<T> / L); b < block_end * (kBlockSeries<T> / L); ++b) {
    const int64_t s0 = b * L;
    if (s0 >= a.s) break;
    const int64_t used = a.s - s0 < L ? a.s - s0 : L;
    // Transpose the block in; unused lanes get zeros (equal ground truth: no pairs).
    transpose_in<T, T, L>(a.p, a.lp, s0, n, used, P);
    transpose_in<T, T, L>(a.g, a.lg, s0, n, used, G);
    if constexpr (kW) transpose_in<T, Acc, L>(a.w, a.lw, s0, n, used, W);
    std::memset(A, 0, sizeof(Acc) * n * L);

    double vio_lane[L], act_lane[L];
    if constexpr (kW) {
      typename X::D vio = X::dzero(), act = X::dzero();
      for (int64_t k = 0; k < n; ++k) {
        const typename X::V pk = X::load(P + k * L), gk = X::load(G + k * L);
        const typename X::D wk = X::dload(W + k * L);
        typename X::D ak = X::dload(A + k * L);
        const int64_t hi = a.window < 0 || k + a.window + 1 > n ? n : k + a.window + 1;
        for (int64_t l = k + 1; l < hi; ++l) {
          M x, y, any;
          pair_masks<X, kM>(pk, gk, X::load(P + l * L), X::load(G + l * L), mv, x, y, any);
          const typename X::D wl = X::dload(W + l * L);
          ak = X::dsub(X::dadd(ak, x, wl), y, wl);
          X::dstore(A + l * L, X::dadd(X::dsub(X::dload(A + l * L), x, wk), y, wk));
          if constexpr (kM || kA) {
            const typename X::D wkl = X::dmul(wk, wl);
            if constexpr (kM) vio = X::dadd(vio, M(x | y), wkl);
            if constexpr (kA) act = X::dadd(act, any, wkl);
          }
        }
        X::dstore(A + k * L, ak);
      }
      X::dstore(vio_lane, vio);
      X::dstore(act_lane, act);
    } else {
      typename X::C vio = X::czero(), act = X::czero();
      for (int64_t k = 0; k < n; ++k) {
        const typename X::V pk = X::load(P + k * L), gk = X::load(G + k * L);
        typename X::C ak = X::cload(A + k * L);
        const int64_t hi = a.window < 0 || k + a.window + 1 > n ? n : k + a.window + 1;
        for (int64_t l = k + 1; l < hi; ++l) {
          M x, y, any;
          pair_masks<X, kM>(pk, gk, X::load(P + l * L), X::load(G + l * L), mv, x, y, any);
          ak = X::cdec(X::cinc(ak, x), y);
          X::cstore(A + l * L, X::cinc(X::cdec(X::cload(A + l * L), x), y));
          if constexpr (kM) vio = X::cinc(vio, M(x | y));
          if constexpr (kA) act = X::cinc(act, any);
        }
        X::cstore(A + k * L, ak);
      }
      Acc v[L], c[L];
      X::cstore(v, vio);
      X::cstore(c, act);
      for (int i = 0; i < L; ++i) vio_lane[i] = double(v[i]), act_lane[i] = double(c[i]);
    }

    finish_lanes<T, Acc, L>(P, kW ? W : nullptr, A, n, used, vio_lane, act_lane, a, s0, G);
  }
}

// ---------------------------------------------------------------------------------------------
// rows

// Accumulators of one tile of R rows.
template <class X, bool kW, int R>
struct TileSums;

template <class X, int R>
struct TileSums<X, false, R> {  // exact integer counts
  typename X::R ak[R], vio, act;
  TileSums() {
    for (int r = 0; r < R; ++r) ak[r] = typename X::R{};
    vio = act = typename X::R{};
  }
};

template <class X, int R>
struct TileSums<X, true, R> {  // weighted: double vectors, reduced once per tile
  typename X::D ak[R], vio[R], act[R];
  TileSums() {
    for (int r = 0; r < R; ++r) ak[r] = vio[r] = act[r] = X::dzero();
  }
};

// Full pair test (ground truth and prediction) of R rows k0.. against the columns
// [l_begin, l_end), whole vectors. valid(r, l) gives the lanes of row r to keep.
template <class X, typename T, bool kW, bool kM, bool kA, int R, typename Valid>
inline void tile_full(const T* P, const T* G, const DenseAcc<T, kW>* W, DenseAcc<T, kW>* A, const typename X::V* pk,
                      const typename X::V* gk, const typename X::D* wk, typename X::V mv, int64_t l_begin,
                      int64_t l_end, Valid valid, TileSums<X, kW, R>& t) {
  constexpr int L = X::L;
  using M = typename X::M;
  for (int64_t l = l_begin; l < l_end; l += L) {
    const typename X::V pl = X::load(P + l), gl = X::load(G + l);
    if constexpr (kW) {
      const typename X::D wl = X::dload(W + l);
      typename X::D al = X::dzero();
      for (int r = 0; r < R; ++r) {
        M x, y, any;
        pair_masks<X, kM>(pk[r], gk[r], pl, gl, mv, x, y, any);
        const M v = valid(r, l);
        x = M(x & v), y = M(y & v), any = M(any & v);
        t.ak[r] = X::dsub(X::dadd(t.ak[r], x, wl), y, wl);
        al = X::dadd(X::dsub(al, x, wk[r]), y, wk[r]);
        if constexpr (kM) t.vio[r] = X::dadd(t.vio[r], M(x | y), wl);
        if constexpr (kA) t.act[r] = X::dadd(t.act[r], any, wl);
      }
      X::dstore(A + l, X::dadd(X::dload(A + l), al));
    } else {
      typename X::C al[2] = {X::czero(), X::czero()};  // two chains
      for (int r = 0; r < R; ++r) {
        M x, y, any;
        pair_masks<X, kM>(pk[r], gk[r], pl, gl, mv, x, y, any);
        const M v = valid(r, l);
        x = M(x & v), y = M(y & v), any = M(any & v);
        const typename X::R nx = X::count(x), ny = X::count(y);
        t.ak[r] = t.ak[r] + nx - ny;
        al[r & 1] = X::cinc(X::cdec(al[r & 1], x), y);
        if constexpr (kM) t.vio = t.vio + nx + ny;
        if constexpr (kA) t.act = t.act + X::count(any);
      }
      X::cstore(A + l, X::cadd(X::cload(A + l), X::cadd(al[0], al[1])));
    }
  }
}

// Prediction-only test of R rows against columns [l_begin, l_end) whose ground truth is
// known to be strictly larger than every row's (rows nearer): x = viol(k, l). The padding
// past l_end holds +inf predictions, never violated by a finite row; with kTail (the series
// has a NaN or infinite prediction) the last vector's lanes past l_end are masked off.
template <class X, typename T, bool kW, bool kM, bool kTail, int R>
inline void tile_ordered(const T* P, const DenseAcc<T, kW>* W, DenseAcc<T, kW>* A, const typename X::V* pk,
                         const typename X::D* wk, typename X::V mv, int64_t l_begin, int64_t l_end,
                         TileSums<X, kW, R>& t) {
  constexpr int L = X::L;
  using M = typename X::M;
  for (int64_t l = l_begin; l < l_end; l += L) {
    const typename X::V pl = X::load(P + l);
    const M in = kTail && l + L > l_end ? X::range(0, l_end - l) : X::all();
    if constexpr (kW) {
      const typename X::D wl = X::dload(W + l);
      typename X::D al = X::dzero();
      for (int r = 0; r < R; ++r) {
        const M x = kM ? X::pos(in, X::add(X::sub(pk[r], pl), mv)) : X::nle(in, pk[r], pl);
        t.ak[r] = X::dadd(t.ak[r], x, wl);
        al = X::dsub(al, x, wk[r]);
        if constexpr (kM) t.vio[r] = X::dadd(t.vio[r], x, wl);
      }
      X::dstore(A + l, X::dadd(X::dload(A + l), al));
    } else {
      typename X::C al[2] = {X::czero(), X::czero()};
      for (int r = 0; r < R; ++r) {
        const M x = kM ? X::pos(in, X::add(X::sub(pk[r], pl), mv)) : X::nle(in, pk[r], pl);
        const typename X::R nx = X::count(x);
        t.ak[r] = t.ak[r] + nx;
        al[r & 1] = X::cdec(al[r & 1], x);
        if constexpr (kM) t.vio = t.vio + nx;
      }
      X::cstore(A + l, X::cadd(X::cload(A + l), X::cadd(al[0], al[1])));
    }
  }
}

// Stores a finished tile's row sums (A_row: the row side of A, kept apart from the
// vector-updated column side so that scalar and vector accesses never overlap) and adds
// to the series totals.
template <class X, bool kW, int R, typename Acc>
inline void tile_flush(const TileSums<X, kW, R>& t, const Acc* W, Acc* A_row, int64_t k0, int rows_live,
                       double& vio, double& act) {
  if constexpr (kW) {
    for (int r = 0; r < rows_live; ++r) {
      A_row[k0 + r] = X::dsum(t.ak[r]);
      vio += W[k0 + r] * X::dsum(t.vio[r]);
      act += W[k0 + r] * X::dsum(t.act[r]);
    }
  } else {
    for (int r = 0; r < rows_live; ++r) {
      A_row[k0 + r] = Acc(X::rsum(t.ak[r]));
      // One store per row: vectorised, these stores reloaded the row sums from the stack
      // right after spilling them one by one (a store-forwarding stall per tile).
      asm volatile("" ::: "memory");
    }
    vio += double(X::rsum(t.vio));
    act += double(X::rsum(t.act));
  }
}

// Loads the R rows k0.. of a tile (rows past `live` get NaN: they pair with nothing).
template <class X, typename T, bool kW, int R>
inline void tile_rows(const T* P, const T* G, const DenseAcc<T, kW>* W, int64_t k0, int64_t live,
                      typename X::V* pk, typename X::V* gk, typename X::D* wk) {
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (int r = 0; r < R; ++r) {
    const bool ok = k0 + r < live;
    pk[r] = X::set1(ok ? P[k0 + r] : nan);
    gk[r] = X::set1(ok ? G[k0 + r] : nan);
    if constexpr (kW) wk[r] = X::dset1(ok ? double(W[k0 + r]) : 0.0);
  }
}

constexpr int kBuckets = 16;         // ground-truth buckets of the no-window rows kernel
constexpr int64_t kBucketMinN = 64;  // shorter series take the full test everywhere

// Series [s_begin, s_end), one at a time; scratch: dense_rows_scratch bytes.
//
// With a window, rows keep their order and every pair takes the full test. Without one,
// the elements are first grouped by ground truth into buckets: bucket(g) = the number
// of 15 sampled pivots strictly below g, a non-decreasing function of g, so two elements
// in different buckets are strictly ordered. A tile of R rows takes the full test up to
// the end of its last row's bucket; all later partners lie in higher buckets and need
// the prediction test only (one compare instead of four). Ground-truth NaNs pair with
// nothing and are left out.
template <class X, typename T, bool kW, bool kM, bool kA, int R>
inline void rows(const SeriesArgs<T>& a, int64_t s_begin, int64_t s_end, void* scratch) {
  constexpr int L = X::L;
  using Acc = DenseAcc<T, kW>;
  using M = typename X::M;
  const int64_t n = a.n;
  const bool windowed = a.window >= 0;
  const bool bucketed = !windowed && n >= kBucketMinN;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const T inf = std::numeric_limits<T>::infinity();
  const M full = X::all();
  const int64_t np = dense_rows_padded<T>(n);
  T* P = static_cast<T*>(scratch);  // series (bucket order when bucketed) + padding
  T* G = P + np;
  Acc* W = reinterpret_cast<Acc*>(G + np);
  Acc* A = W + np;
  Acc* A_row = A + np;  // row side of A; the final A goes here, in the series' own order
  double* suffix_w = reinterpret_cast<double*>(A_row + np);  // weight of positions >= i
  int32_t* order = reinterpret_cast<int32_t*>(suffix_w + np + 1 + kBlockSeries<T>);
  int32_t* bucket = order + np;
  const typename X::V mv = X::set1(a.margin);
  T* gather = reinterpret_cast<T*>(static_cast<char*>(scratch) + dense_rows_arrays<T>(n));

  for (int64_t s = s_begin; s < s_end; ++s) {
    const T* ps = series_row(a.p, a.lp, s, n, gather);
    const T* gs = series_row(a.g, a.lg, s, n, gather + np);
    const T* ws = kW ? series_row(a.w, a.lw, s, n, gather + 2 * np) : nullptr;
    int32_t bucket_start[kBuckets + 2] = {};
    int64_t live = n;  // elements that take part (all but ground-truth NaNs when bucketed)
    if (bucketed) {
      T pivot[kBuckets - 1];
      for (int i = 0; i < kBuckets - 1; ++i) pivot[i] = gs[((i + 1) * n) / kBuckets];
      X::template bucket_ids<kBuckets - 1>(gs, n, pivot, bucket);
      int32_t count4[4][kBuckets + 1] = {};  // four histograms: no store-to-load chains
      int64_t k = 0;
      for (; k + 4 <= n; k += 4) {
        ++count4[0][bucket[k]], ++count4[1][bucket[k + 1]], ++count4[2][bucket[k + 2]], ++count4[3][bucket[k + 3]];
      }
      for (; k < n; ++k) ++count4[0][bucket[k]];
      int32_t count[kBuckets + 1];
      for (int b = 0; b <= kBuckets; ++b) count[b] = count4[0][b] + count4[1][b] + count4[2][b] + count4[3][b];
      for (int b = 0; b <= kBuckets; ++b) bucket_start[b + 1] = bucket_start[b] + count[b];
      live = bucket_start[kBuckets];
      // Scatter with one fill pointer per histogram (element k: histogram k % 4), so that
      // equal buckets in a row do not wait on each other's increment. The order inside a
      // bucket does not matter: every pair of a bucket takes the full test.
      int32_t fill4[4][kBuckets + 1];
      for (int b = 0; b <= kBuckets; ++b) {
        fill4[0][b] = bucket_start[b];
        for (int q = 1; q < 4; ++q) fill4[q][b] = fill4[q - 1][b] + count4[q - 1][b];
      }
      k = 0;
      for (; k + 4 <= n; k += 4) {
        order[fill4[0][bucket[k]]++] = int32_t(k), order[fill4[1][bucket[k + 1]]++] = int32_t(k + 1);
        order[fill4[2][bucket[k + 2]]++] = int32_t(k + 2), order[fill4[3][bucket[k + 3]]++] = int32_t(k + 3);
      }
      for (; k < n; ++k) order[fill4[0][bucket[k]]++] = int32_t(k);
      for (int64_t i = 0; i < live; ++i) P[i] = ps[order[i]], G[i] = gs[order[i]];
      if constexpr (kW) {
        for (int64_t i = 0; i < live; ++i) W[i] = Acc(ws[order[i]]);
      }
    } else {
      std::memcpy(P, ps, sizeof(T) * n);
      std::memcpy(G, gs, sizeof(T) * n);
      if constexpr (kW) {
        for (int64_t i = 0; i < n; ++i) W[i] = Acc(ws[i]);
      }
    }
    int not_finite = 0;  // a NaN or infinite prediction (x - x is NaN exactly then); int: vectorised
    for (int64_t i = 0; i < live; ++i) not_finite |= int(!(P[i] - P[i] == T(0)));
    const bool finite = not_finite == 0;
    for (int64_t i = live; i < live + L; ++i) P[i] = inf, G[i] = nan, W[i] = Acc(0);
    std::memset(A, 0, sizeof(Acc) * (live + L));
    if (kW && kA) {
      suffix_w[live + L] = 0;
      for (int64_t i = live + L - 1; i >= 0; --i) suffix_w[i] = suffix_w[i + 1] + double(W[i]);
    }
    double vio = 0, act = 0;

    for (int64_t k0 = 0; k0 < live; k0 += R) {
      const int rows_live = int(live - k0 < R ? live - k0 : R);
      typename X::V pk[R], gk[R];
      typename X::D wk[R];
      tile_rows<X, T, kW, R>(P, G, W, k0, live, pk, gk, wk);
      TileSums<X, kW, R> t;
      if (windowed) {
        int64_t hi[R];
        for (int r = 0; r < R; ++r) hi[r] = k0 + r + a.window + 1 > n ? n : k0 + r + a.window + 1;
        const int64_t l_end = hi[rows_live - 1];
        tile_full<X, T, kW, kM, kA, R>(P, G, W, A, pk, gk, wk, mv, k0 + 1, l_end,
                                       [&](int r, int64_t l) { return X::range(k0 + r + 1 - l, hi[r] - l); }, t);
      } else {
        // Full test up to the end of the last row's bucket (whole vectors), then ordered.
        const int64_t last = k0 + rows_live - 1;
        const int64_t mixed_end = bucketed ? bucket_start[bucket[order[last]] + 1] : live;
        const int64_t split = k0 + 1 + ((mixed_end - k0 - 1 + L - 1) / L) * L;
        // Row r pairs with columns past k0 + r only: lanes of the vectors that start before k0 + R are cut.
        tile_full<X, T, kW, kM, kA, R>(
            P, G, W, A, pk, gk, wk, mv, k0 + 1, split,
            [&](int r, int64_t l) { return l < k0 + R ? X::range(k0 + r + 1 - l, L) : full; }, t);
        if (split < live) {
          if (finite) {
            tile_ordered<X, T, kW, kM, false, R>(P, W, A, pk, wk, mv, split, live, t);
          } else {
            tile_ordered<X, T, kW, kM, true, R>(P, W, A, pk, wk, mv, split, live, t);
          }
          if constexpr (kA) {  // every one of these pairs is active
            if constexpr (kW) {
              double w_rows = 0;
              for (int r = 0; r < rows_live; ++r) w_rows += double(W[k0 + r]);
              act += w_rows * suffix_w[split];
            } else {
              act += double(rows_live) * double(live - split);
            }
          }
        }
      }
      tile_flush<X, kW, R>(t, W, A_row, k0, rows_live, vio, act);
    }

    // A = row side + column side, back in the series' order (ground-truth NaNs: 0).
    for (int64_t i = 0; i < live; ++i) A[i] += A_row[i];
    if (bucketed) {
      for (int64_t k = 0; k < n; ++k) A_row[k] = Acc(0);
      for (int64_t i = 0; i < live; ++i) A_row[order[i]] = A[i];
    } else {
      for (int64_t k = 0; k < n; ++k) A_row[k] = A[k];
    }
    finish_series<T, Acc>(ps, ws, A_row, 1, n, a.margin, vio, act, a.grad_of(s), a.loss + s,
                          a.active ? a.active + s : nullptr);
  }
}

}  // namespace cpu
}  // namespace repose
