// AVX-512 versions of the dense kernels of dense_kernels.h (same scratch layouts, same
// results: unweighted counts are exact integers either way).
//
// The pair test runs on mask registers: two compares on the ground truth and two
// masked compares on the prediction give x (k nearer, violated) and y (l nearer,
// violated). Partner-side sums A_l are vector counters updated under x and y; in the
// row kernel the row's own sum A_k is the popcount of x minus that of y (integer unit,
// no horizontal sums), and R rows share each load of 16 partners.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <limits>

#include "dense_kernels.h"

#define REPOSE_AVX512_INLINE \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,bmi,bmi2,popcnt"), always_inline)) inline

namespace repose {
namespace cpu {
namespace avx512 {

template <typename T>
struct Vec;

template <>
struct Vec<float> {
  static constexpr int L = 16;
  using V = __m512;
  using M = __mmask16;
  using C = __m512i;  // int32 counters
  struct D {          // L doubles
    __m512d lo, hi;
  };
  REPOSE_AVX512_INLINE static V load(const float* p) { return _mm512_loadu_ps(p); }
  REPOSE_AVX512_INLINE static V set1(float x) { return _mm512_set1_ps(x); }
  REPOSE_AVX512_INLINE static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  REPOSE_AVX512_INLINE static V add(V a, V b) { return _mm512_add_ps(a, b); }
  REPOSE_AVX512_INLINE static M lt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  REPOSE_AVX512_INLINE static M lt(M k, V a, V b) { return _mm512_mask_cmp_ps_mask(k, a, b, _CMP_LT_OQ); }
  // a > 0, or a is NaN: the reference's relu passes the gradient unless a <= 0
  REPOSE_AVX512_INLINE static M pos(M k, V a) {
    return _mm512_mask_cmp_ps_mask(k, a, _mm512_setzero_ps(), _CMP_NLE_UQ);
  }
  // not (a <= b): a > b, or either is NaN
  REPOSE_AVX512_INLINE static M nle(M k, V a, V b) { return _mm512_mask_cmp_ps_mask(k, a, b, _CMP_NLE_UQ); }
  REPOSE_AVX512_INLINE static C cload(const int32_t* p) { return _mm512_loadu_si512(p); }
  REPOSE_AVX512_INLINE static void cstore(int32_t* p, C c) { _mm512_storeu_si512(p, c); }
  REPOSE_AVX512_INLINE static C czero() { return _mm512_setzero_si512(); }
  REPOSE_AVX512_INLINE static C cadd(C a, C b) { return _mm512_add_epi32(a, b); }
  REPOSE_AVX512_INLINE static C cinc(C c, M k) { return _mm512_mask_sub_epi32(c, k, c, _mm512_set1_epi32(-1)); }
  REPOSE_AVX512_INLINE static C cdec(C c, M k) { return _mm512_mask_add_epi32(c, k, c, _mm512_set1_epi32(-1)); }
  REPOSE_AVX512_INLINE static void cspill(int32_t* out, C c) { _mm512_storeu_si512(out, c); }
  REPOSE_AVX512_INLINE static int32_t csum(C c) { return _mm512_reduce_add_epi32(c); }
  REPOSE_AVX512_INLINE static D dload(const double* p) { return {_mm512_loadu_pd(p), _mm512_loadu_pd(p + 8)}; }
  REPOSE_AVX512_INLINE static void dstore(double* p, D d) {
    _mm512_storeu_pd(p, d.lo);
    _mm512_storeu_pd(p + 8, d.hi);
  }
  REPOSE_AVX512_INLINE static D dzero() { return {_mm512_setzero_pd(), _mm512_setzero_pd()}; }
  REPOSE_AVX512_INLINE static D dset1(double x) { return {_mm512_set1_pd(x), _mm512_set1_pd(x)}; }
  REPOSE_AVX512_INLINE static D dadd(D a, D b) { return {_mm512_add_pd(a.lo, b.lo), _mm512_add_pd(a.hi, b.hi)}; }
  REPOSE_AVX512_INLINE static D dmul(D a, D b) { return {_mm512_mul_pd(a.lo, b.lo), _mm512_mul_pd(a.hi, b.hi)}; }
  REPOSE_AVX512_INLINE static D dadd(D a, M k, D w) {
    return {_mm512_mask_add_pd(a.lo, __mmask8(k), a.lo, w.lo), _mm512_mask_add_pd(a.hi, __mmask8(k >> 8), a.hi, w.hi)};
  }
  REPOSE_AVX512_INLINE static D dsub(D a, M k, D w) {
    return {_mm512_mask_sub_pd(a.lo, __mmask8(k), a.lo, w.lo), _mm512_mask_sub_pd(a.hi, __mmask8(k >> 8), a.hi, w.hi)};
  }
  // out[k] = number of pivots strictly below g[k] (kBuckets - 1 pivots), or kBuckets if g[k] is NaN.
  template <int kPivots>
  REPOSE_AVX512_INLINE static void bucket_ids(const float* g, int64_t n, const float* pivot, int32_t* out) {
    __m512 pv[kPivots];
    for (int i = 0; i < kPivots; ++i) pv[i] = _mm512_set1_ps(pivot[i]);
    const __m512i one = _mm512_set1_epi32(1), dead = _mm512_set1_epi32(kPivots + 1);
    for (int64_t k = 0; k < n; k += 16) {
      const __mmask16 in = __mmask16(k + 16 <= n ? 0xFFFFu : (1u << (n - k)) - 1u);
      const __m512 gv = _mm512_maskz_loadu_ps(in, g + k);
      __m512i b = _mm512_setzero_si512();
      for (int i = 0; i < kPivots; ++i) b = _mm512_mask_add_epi32(b, _mm512_cmp_ps_mask(pv[i], gv, _CMP_LT_OQ), b, one);
      b = _mm512_mask_mov_epi32(b, _mm512_cmp_ps_mask(gv, gv, _CMP_UNORD_Q), dead);
      _mm512_mask_storeu_epi32(out + k, in, b);
    }
  }
  REPOSE_AVX512_INLINE static double dsum(D a) {  // fixed order
    double t[16];
    _mm512_storeu_pd(t, a.lo);
    _mm512_storeu_pd(t + 8, a.hi);
    double s = 0;
    for (int i = 0; i < 16; ++i) s += t[i];
    return s;
  }
};

template <>
struct Vec<double> {
  static constexpr int L = 8;
  using V = __m512d;
  using M = __mmask8;
  using C = __m512i;  // int64 counters
  struct D {
    __m512d v;
  };
  REPOSE_AVX512_INLINE static V load(const double* p) { return _mm512_loadu_pd(p); }
  REPOSE_AVX512_INLINE static V set1(double x) { return _mm512_set1_pd(x); }
  REPOSE_AVX512_INLINE static V sub(V a, V b) { return _mm512_sub_pd(a, b); }
  REPOSE_AVX512_INLINE static V add(V a, V b) { return _mm512_add_pd(a, b); }
  REPOSE_AVX512_INLINE static M lt(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ); }
  REPOSE_AVX512_INLINE static M lt(M k, V a, V b) { return _mm512_mask_cmp_pd_mask(k, a, b, _CMP_LT_OQ); }
  REPOSE_AVX512_INLINE static M pos(M k, V a) {
    return _mm512_mask_cmp_pd_mask(k, a, _mm512_setzero_pd(), _CMP_NLE_UQ);
  }
  REPOSE_AVX512_INLINE static M nle(M k, V a, V b) { return _mm512_mask_cmp_pd_mask(k, a, b, _CMP_NLE_UQ); }
  REPOSE_AVX512_INLINE static C cload(const int64_t* p) { return _mm512_loadu_si512(p); }
  REPOSE_AVX512_INLINE static void cstore(int64_t* p, C c) { _mm512_storeu_si512(p, c); }
  REPOSE_AVX512_INLINE static C czero() { return _mm512_setzero_si512(); }
  REPOSE_AVX512_INLINE static C cadd(C a, C b) { return _mm512_add_epi64(a, b); }
  REPOSE_AVX512_INLINE static C cinc(C c, M k) { return _mm512_mask_sub_epi64(c, k, c, _mm512_set1_epi64(-1)); }
  REPOSE_AVX512_INLINE static C cdec(C c, M k) { return _mm512_mask_add_epi64(c, k, c, _mm512_set1_epi64(-1)); }
  REPOSE_AVX512_INLINE static void cspill(int64_t* out, C c) { _mm512_storeu_si512(out, c); }
  REPOSE_AVX512_INLINE static int64_t csum(C c) { return _mm512_reduce_add_epi64(c); }
  REPOSE_AVX512_INLINE static D dload(const double* p) { return {_mm512_loadu_pd(p)}; }
  REPOSE_AVX512_INLINE static void dstore(double* p, D d) { _mm512_storeu_pd(p, d.v); }
  REPOSE_AVX512_INLINE static D dzero() { return {_mm512_setzero_pd()}; }
  REPOSE_AVX512_INLINE static D dset1(double x) { return {_mm512_set1_pd(x)}; }
  REPOSE_AVX512_INLINE static D dadd(D a, D b) { return {_mm512_add_pd(a.v, b.v)}; }
  REPOSE_AVX512_INLINE static D dmul(D a, D b) { return {_mm512_mul_pd(a.v, b.v)}; }
  REPOSE_AVX512_INLINE static D dadd(D a, M k, D w) { return {_mm512_mask_add_pd(a.v, k, a.v, w.v)}; }
  REPOSE_AVX512_INLINE static D dsub(D a, M k, D w) { return {_mm512_mask_sub_pd(a.v, k, a.v, w.v)}; }
  template <int kPivots>
  REPOSE_AVX512_INLINE static void bucket_ids(const double* g, int64_t n, const double* pivot, int32_t* out) {
    __m512d pv[kPivots];
    for (int i = 0; i < kPivots; ++i) pv[i] = _mm512_set1_pd(pivot[i]);
    const __m256i one = _mm256_set1_epi32(1), dead = _mm256_set1_epi32(kPivots + 1);
    for (int64_t k = 0; k < n; k += 8) {
      const __mmask8 in = __mmask8(k + 8 <= n ? 0xFFu : (1u << (n - k)) - 1u);
      const __m512d gv = _mm512_maskz_loadu_pd(in, g + k);
      __m256i b = _mm256_setzero_si256();
      for (int i = 0; i < kPivots; ++i) b = _mm256_mask_add_epi32(b, _mm512_cmp_pd_mask(pv[i], gv, _CMP_LT_OQ), b, one);
      b = _mm256_mask_mov_epi32(b, _mm512_cmp_pd_mask(gv, gv, _CMP_UNORD_Q), dead);
      _mm256_mask_storeu_epi32(out + k, in, b);
    }
  }
  REPOSE_AVX512_INLINE static double dsum(D a) {
    double t[8];
    _mm512_storeu_pd(t, a.v);
    double s = 0;
    for (int i = 0; i < 8; ++i) s += t[i];
    return s;
  }
};

// x: k nearer and violated; y: l nearer and violated; near_any: the pair is active.
template <typename T, bool kM>
REPOSE_AVX512_INLINE void pair_masks(typename Vec<T>::V pk, typename Vec<T>::V gk, typename Vec<T>::V pl,
                                     typename Vec<T>::V gl, typename Vec<T>::V m, typename Vec<T>::M& x,
                                     typename Vec<T>::M& y, typename Vec<T>::M& near_any) {
  using X = Vec<T>;
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
  near_any = k_near | l_near;
}

// Bits [lo, hi) of an L-lane mask (clipped to [0, L)).
template <int L>
inline __attribute__((always_inline)) uint32_t lane_range(int64_t lo, int64_t hi) {
  lo = lo < 0 ? 0 : (lo > L ? L : lo);
  hi = hi < 0 ? 0 : (hi > L ? L : hi);
  return hi > lo ? (((uint32_t(1) << hi) - 1u) & ~((uint32_t(1) << lo) - 1u)) : 0u;
}

// Same contract and scratch as dense_lanes.
template <typename T, bool kW, bool kM, bool kA>
REPOSE_AVX512_INLINE void lanes(const SeriesArgs<T>& a, int64_t block_begin, int64_t block_end, void* scratch) {
  using X = Vec<T>;
  constexpr int L = X::L;
  using Acc = DenseAcc<T, kW>;
  using M = typename X::M;
  const int64_t n = a.n;
  T* P = static_cast<T*>(scratch);
  T* G = P + n * L;
  Acc* W = reinterpret_cast<Acc*>(G + n * L);
  Acc* A = W + (kW ? n * L : 0);
  const typename X::V mv = X::set1(a.margin);

  for (int64_t b = block_begin; b < block_end; ++b) {
    const int64_t s0 = b * L;
    const int64_t lanes_used = a.s - s0 < L ? a.s - s0 : L;
    lanes_block_in<T, Acc, L, kW>(a, s0, lanes_used, P, G, W, A);

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
          pair_masks<T, kM>(pk, gk, X::load(P + l * L), X::load(G + l * L), mv, x, y, any);
          const typename X::D wl = X::dload(W + l * L);
          ak = X::dsub(X::dadd(ak, x, wl), y, wl);
          typename X::D al = X::dload(A + l * L);
          al = X::dadd(X::dsub(al, x, wk), y, wk);
          X::dstore(A + l * L, al);
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
          pair_masks<T, kM>(pk, gk, X::load(P + l * L), X::load(G + l * L), mv, x, y, any);
          ak = X::cdec(X::cinc(ak, x), y);
          typename X::C al = X::cload(A + l * L);
          X::cstore(A + l * L, X::cinc(X::cdec(al, x), y));
          if constexpr (kM) vio = X::cinc(vio, M(x | y));
          if constexpr (kA) act = X::cinc(act, any);
        }
        X::cstore(A + k * L, ak);
      }
      Acc v[L], c[L];
      X::cspill(v, vio);
      X::cspill(c, act);
      for (int i = 0; i < L; ++i) vio_lane[i] = double(v[i]), act_lane[i] = double(c[i]);
    }

    finish_lanes<T, Acc, L>(P, kW ? W : nullptr, A, n, lanes_used, vio_lane, act_lane, a, s0, G);
  }
}

// Accumulators of one tile of R rows.
template <typename T, bool kW, int R>
struct TileSums;

template <typename T, int R>
struct TileSums<T, false, R> {  // exact integer counts: the row side by popcount
  int64_t ak[R] = {};
  int64_t vio = 0, act = 0;
};

template <typename T, int R>
struct TileSums<T, true, R> {  // weighted: double vectors, reduced once per tile
  typename Vec<T>::D ak[R], vio[R], act[R];
  REPOSE_AVX512_INLINE TileSums() {
    for (int r = 0; r < R; ++r) ak[r] = vio[r] = act[r] = Vec<T>::dzero();
  }
};

// Full pair test (ground truth and prediction) of R rows k0.. against the columns
// [l_begin, l_end), whole vectors. valid(r, l) gives the lanes of row r to keep.
template <typename T, bool kW, bool kM, bool kA, int R, typename Valid>
REPOSE_AVX512_INLINE void tile_full(const T* P, const T* G, const DenseAcc<T, kW>* W, DenseAcc<T, kW>* A,
                                    const typename Vec<T>::V* pk, const typename Vec<T>::V* gk,
                                    const typename Vec<T>::D* wk, typename Vec<T>::V mv, int64_t l_begin,
                                    int64_t l_end, Valid valid, TileSums<T, kW, R>& t) {
  using X = Vec<T>;
  constexpr int L = X::L;
  using M = typename X::M;
  for (int64_t l = l_begin; l < l_end; l += L) {
    const typename X::V pl = X::load(P + l), gl = X::load(G + l);
    if constexpr (kW) {
      const typename X::D wl = X::dload(W + l);
      typename X::D al = X::dzero();
      for (int r = 0; r < R; ++r) {
        M x, y, any;
        pair_masks<T, kM>(pk[r], gk[r], pl, gl, mv, x, y, any);
        const M v = valid(r, l);
        x &= v, y &= v, any &= v;
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
        pair_masks<T, kM>(pk[r], gk[r], pl, gl, mv, x, y, any);
        const M v = valid(r, l);
        x &= v, y &= v, any &= v;
        const int nx = __builtin_popcount(uint32_t(x)), ny = __builtin_popcount(uint32_t(y));
        t.ak[r] += nx - ny;
        al[r & 1] = X::cinc(X::cdec(al[r & 1], x), y);
        if constexpr (kM) t.vio += nx + ny;
        if constexpr (kA) t.act += __builtin_popcount(uint32_t(any));
      }
      X::cstore(A + l, X::cadd(X::cload(A + l), X::cadd(al[0], al[1])));
    }
  }
}

// Prediction-only test of R rows against columns [l_begin, l_end) whose ground truth is
// known to be strictly larger than every row's (rows nearer): x = viol(k, l).
template <typename T, bool kW, bool kM, int R>
REPOSE_AVX512_INLINE void tile_ordered(const T* P, const DenseAcc<T, kW>* W, DenseAcc<T, kW>* A,
                                       const typename Vec<T>::V* pk, const typename Vec<T>::D* wk,
                                       typename Vec<T>::V mv, int64_t l_begin, int64_t l_end,
                                       TileSums<T, kW, R>& t) {
  using X = Vec<T>;
  constexpr int L = X::L;
  using M = typename X::M;
  const M full = M(~0u);
  for (int64_t l = l_begin; l < l_end; l += L) {
    const typename X::V pl = X::load(P + l);
    if constexpr (kW) {
      const typename X::D wl = X::dload(W + l);
      typename X::D al = X::dzero();
      for (int r = 0; r < R; ++r) {
        const M x = kM ? X::pos(full, X::add(X::sub(pk[r], pl), mv)) : X::nle(full, pk[r], pl);
        t.ak[r] = X::dadd(t.ak[r], x, wl);
        al = X::dsub(al, x, wk[r]);
        if constexpr (kM) t.vio[r] = X::dadd(t.vio[r], x, wl);
      }
      X::dstore(A + l, X::dadd(X::dload(A + l), al));
    } else {
      typename X::C al[2] = {X::czero(), X::czero()};
      for (int r = 0; r < R; ++r) {
        const M x = kM ? X::pos(full, X::add(X::sub(pk[r], pl), mv)) : X::nle(full, pk[r], pl);
        const int nx = __builtin_popcount(uint32_t(x));
        t.ak[r] += nx;
        al[r & 1] = X::cdec(al[r & 1], x);
        if constexpr (kM) t.vio += nx;
      }
      X::cstore(A + l, X::cadd(X::cload(A + l), X::cadd(al[0], al[1])));
    }
  }
}

// Stores a finished tile's row sums (A_row: the row side of A, kept apart from the
// vector-updated column side so that scalar and vector accesses never overlap) and adds
// to the series totals.
template <typename T, bool kW, int R>
REPOSE_AVX512_INLINE void tile_flush(const TileSums<T, kW, R>& t, const DenseAcc<T, kW>* W, DenseAcc<T, kW>* A_row,
                                     int64_t k0, int rows_live, double& vio, double& act) {
  using X = Vec<T>;
  if constexpr (kW) {
    for (int r = 0; r < rows_live; ++r) {
      A_row[k0 + r] = X::dsum(t.ak[r]);
      vio += W[k0 + r] * X::dsum(t.vio[r]);
      act += W[k0 + r] * X::dsum(t.act[r]);
    }
  } else {
    for (int r = 0; r < rows_live; ++r) {
      A_row[k0 + r] = DenseAcc<T, kW>(t.ak[r]);
      // One store per row: vectorised, these stores reloaded the row sums from the stack
      // right after spilling them one by one (a store-forwarding stall per tile).
      asm volatile("" ::: "memory");
    }
    vio += double(t.vio);
    act += double(t.act);
  }
}

// Loads the R rows k0.. of a tile (rows past `live` get NaN: they pair with nothing).
template <typename T, bool kW, int R>
REPOSE_AVX512_INLINE void tile_rows(const T* P, const T* G, const DenseAcc<T, kW>* W, int64_t k0, int64_t live,
                                    typename Vec<T>::V* pk, typename Vec<T>::V* gk, typename Vec<T>::D* wk) {
  using X = Vec<T>;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  for (int r = 0; r < R; ++r) {
    const bool ok = k0 + r < live;
    pk[r] = X::set1(ok ? P[k0 + r] : nan);
    gk[r] = X::set1(ok ? G[k0 + r] : nan);
    if constexpr (kW) wk[r] = X::dset1(ok ? double(W[k0 + r]) : 0.0);
  }
}

constexpr int kBuckets = 16;          // ground-truth buckets of the no-window row kernel
constexpr int64_t kBucketMinN = 64;   // shorter series take the full test everywhere

// Same contract as dense_rows (scratch: rows_scratch bytes).
//
// With a window, rows keep their order and every pair takes the full test. Without one,
// the elements are first grouped by ground truth into buckets: bucket(g) = the number
// of 15 sampled pivots strictly below g, a non-decreasing function of g, so two elements
// in different buckets are strictly ordered. A tile of R rows takes the full test up to
// the end of its last row's bucket; all later partners lie in higher buckets and need
// the prediction test only (one compare instead of four). Ground-truth NaNs pair with
// nothing and are left out.
template <typename T, bool kW, bool kM, bool kA, int R>
REPOSE_AVX512_INLINE void rows(const SeriesArgs<T>& a, int64_t s_begin, int64_t s_end, void* scratch) {
  using X = Vec<T>;
  constexpr int L = X::L;
  using Acc = DenseAcc<T, kW>;
  using M = typename X::M;
  const int64_t n = a.n;
  const bool windowed = a.window >= 0;
  const bool bucketed = !windowed && n >= kBucketMinN;
  const T nan = std::numeric_limits<T>::quiet_NaN();
  const T inf = std::numeric_limits<T>::infinity();
  const M full = M(~0u);
  // Scratch (dense_rows_scratch bytes): arrays of np = n + L rounded up to L elements.
  const int64_t np = dense_rows_padded<T>(n);
  T* P = static_cast<T*>(scratch);             // series (bucket order when bucketed) + padding
  T* G = P + np;
  Acc* W = reinterpret_cast<Acc*>(G + np);
  Acc* A = W + np;
  Acc* A_row = A + np;  // row side of A; the final A goes here, in the series' own order
  double* suffix_w = reinterpret_cast<double*>(A_row + np);  // weight of positions >= i
  int32_t* order = reinterpret_cast<int32_t*>(suffix_w + np + 1 + L);
  int32_t* bucket = order + np;
  const typename X::V mv = X::set1(a.margin);

  T* gather = dense_rows_gather<T>(scratch, n);

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
    }
    if (bucketed) {
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
      tile_rows<T, kW, R>(P, G, W, k0, live, pk, gk, wk);
      TileSums<T, kW, R> t;
      if (windowed) {
        int64_t hi[R];
        for (int r = 0; r < R; ++r) hi[r] = k0 + r + a.window + 1 > n ? n : k0 + r + a.window + 1;
        const int64_t l_end = hi[rows_live - 1];
        tile_full<T, kW, kM, kA, R>(P, G, W, A, pk, gk, wk, mv, k0 + 1, l_end,
                                    [&](int r, int64_t l) { return M(lane_range<L>(k0 + r + 1 - l, hi[r] - l)); },
                                    t);
      } else {
        // Full test up to the end of the last row's bucket (whole vectors), then ordered.
        const int64_t last = k0 + rows_live - 1;
        const int64_t mixed_end = bucketed ? bucket_start[bucket[order[last]] + 1] : live;
        const int64_t split = k0 + 1 + ((mixed_end - k0 - 1 + L - 1) / L) * L;
        tile_full<T, kW, kM, kA, R>(P, G, W, A, pk, gk, wk, mv, k0 + 1, split,
                                    [&](int r, int64_t l) { return l == k0 + 1 ? M(full << r) : full; }, t);
        if (split < live) {
          tile_ordered<T, kW, kM, R>(P, W, A, pk, wk, mv, split, live, t);
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
      tile_flush<T, kW, R>(t, W, A_row, k0, rows_live, vio, act);
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

template <typename T, bool kW, bool kM, bool kA>
REPOSE_AVX512_INLINE void dense_rows_avx512(const SeriesArgs<T>& a, int64_t b, int64_t e, void* scratch) {
  rows<T, kW, kM, kA, (kW ? 2 : 8)>(a, b, e, scratch);
}

template <typename T, bool kW, bool kM, bool kA>
REPOSE_AVX512_INLINE void dense_lanes_avx512(const SeriesArgs<T>& a, int64_t b, int64_t e, void* scratch) {
  lanes<T, kW, kM, kA>(a, b, e, scratch);
}

}  // namespace avx512
}  // namespace cpu
}  // namespace repose
