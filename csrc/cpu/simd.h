// SIMD traits of the dense kernels (dense_simd.h): one kernel template, four traits.
//
//   Avx512<T>      16 floats / 8 doubles; comparisons give mask registers, a row's count
//                  is the popcount of a mask (integer unit, no horizontal sums)
//   VecExt<T, VB>  GCC/Clang vector extensions of VB bytes (32: AVX2, 16: SSE2 or any
//                  16-byte target); comparisons give -1/0 integer lanes, and-ed and summed
//   Scalar<T>      one lane
//
// Every trait offers (X::L lanes of T):
//   V      values: load, set1, add, sub
//   M      lane masks: lt(a, b) = a < b (false on NaN); pos(k, a) = k and not (a <= 0);
//          nle(k, a, b) = k and not (a <= b) (true on NaN: the reference's relu passes the
//          gradient there); all(); range(lo, hi) = lanes [lo, hi); masks combine with & and |
//   C      integer counters, one per lane (Count: int32 for float, int64 for double):
//          cload, cstore, czero, cadd, cinc(c, m) / cdec(c, m) = c + / - 1 where m
//   R      a row's count: count(m) = the number of lanes set, R + R, R - R; rsum(r) -> int64
//   D      L doubles (weighted sums): dload, dstore, dzero, dset1, dadd, dmul, dadd(a, m, w) /
//          dsub(a, m, w) = a + / - w where m, dsum (fixed order)
//   kTileRows: rows of the rows kernel's unweighted tiles (rows that share each partner load)
//   bucket_ids<kPivots>(g, n, pivot, out): out[k] = pivots strictly below g[k], kPivots + 1
//          for a NaN
//
// Trait functions are plain inline functions (the AVX-512 ones carry their target). The
// kernels are plain templates too; each ISA's entry point (dense_cpu.cpp) carries the
// target and `flatten`, which inlines the kernel and, inside it, the trait functions.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define REPOSE_X86_SIMD 1  // the AVX2 and AVX-512 entries and the Avx512 trait
#endif

namespace repose {
namespace cpu {
namespace simd {

template <typename T>
using Count = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;

// out[k] = the number of the kPivots (sorted) pivots strictly below g[k], kPivots + 1 for a
// NaN; vectorised by the compiler for the caller's target.
template <int kPivots, typename T>
inline void bucket_ids_loop(const T* g, int64_t n, const T* pivot, int32_t* out) {
  for (int64_t k = 0; k < n; ++k) {
    int32_t b = 0;
    for (int i = 0; i < kPivots; ++i) b += int32_t(pivot[i] < g[k]);
    out[k] = g[k] != g[k] ? kPivots + 1 : b;
  }
}

// ---------------------------------------------------------------------------------------------
// Vector extensions

template <typename T, int VB>
struct VecExt {
  static constexpr int L = VB / int(sizeof(T));
  static constexpr int kTileRows = 4;
  using Int = Count<T>;
  typedef T V __attribute__((vector_size(VB)));
  typedef Int M __attribute__((vector_size(VB)));  // -1 / 0 lanes
  using C = M;
  using R = M;  // -count per lane; rsum negates
  typedef double DV __attribute__((vector_size(VB)));
  typedef int64_t DM __attribute__((vector_size(VB)));
  static constexpr int kDL = VB / 8;        // doubles per vector
  static constexpr int kDV = L / kDL;       // vectors per D (2 for float, 1 for double)
  struct D {
    DV v[kDV];
  };

  template <typename Vec, typename S>
  static inline Vec splat(S x) {
    Vec v;
    for (int i = 0; i < int(sizeof(Vec) / sizeof(S)); ++i) v[i] = x;
    return v;
  }
  template <typename Vec, typename S>
  static inline Vec loadv(const S* p) {
    Vec v;
    std::memcpy(&v, p, sizeof(Vec));
    return v;
  }
  template <typename Vec, typename S>
  static inline void storev(S* p, Vec v) {
    std::memcpy(p, &v, sizeof(Vec));
  }

  static inline V load(const T* p) { return loadv<V>(p); }
  static inline V set1(T x) { return splat<V>(x); }
  static inline V add(V a, V b) { return a + b; }
  static inline V sub(V a, V b) { return a - b; }
  static inline M lt(V a, V b) { return a < b; }
  static inline M pos(M k, V a) { return k & ~(a <= splat<V>(T(0))); }
  static inline M nle(M k, V a, V b) { return k & ~(a <= b); }
  static inline M all() { return splat<M>(Int(-1)); }
  static inline M range(int64_t lo, int64_t hi) {
    M iota;
    for (int i = 0; i < L; ++i) iota[i] = Int(i);
    return (iota >= splat<M>(Int(lo))) & (iota < splat<M>(Int(hi)));
  }

  static inline C cload(const Int* p) { return loadv<C>(p); }
  static inline void cstore(Int* p, C c) { storev(p, c); }
  static inline C czero() { return splat<C>(Int(0)); }
  static inline C cadd(C a, C b) { return a + b; }
  static inline C cinc(C c, M k) { return c - k; }
  static inline C cdec(C c, M k) { return c + k; }

  static inline R count(M m) { return m; }  // -1 per lane set
  static inline int64_t rsum(R r) {
    int64_t s = 0;
    for (int i = 0; i < L; ++i) s -= r[i];
    return s;
  }

  // The double-lane masks of lanes [h * kDL, (h + 1) * kDL) of m: each 32-bit lane duplicated (one shuffle)
  // and read as 64-bit lanes.
  template <int h, size_t... I>
  static inline DM dmask(M m, std::index_sequence<I...>) {
    if constexpr (kDV == 1) {
      return DM(m);
    } else {
      const M dup = __builtin_shufflevector(m, m, (h * kDL + int(I) / 2)...);
      return (DM)dup;
    }
  }
  template <int h>
  static inline DM dmask(M m) {
    return dmask<h>(m, std::make_index_sequence<L>());
  }
  static inline D dload(const double* p) {
    D d;
    for (int h = 0; h < kDV; ++h) d.v[h] = loadv<DV>(p + h * kDL);
    return d;
  }
  static inline void dstore(double* p, D d) {
    for (int h = 0; h < kDV; ++h) storev(p + h * kDL, d.v[h]);
  }
  static inline D dzero() { return dset1(0.0); }
  static inline D dset1(double x) {
    D d;
    for (int h = 0; h < kDV; ++h) d.v[h] = splat<DV>(x);
    return d;
  }
  static inline D dadd(D a, D b) {
    for (int h = 0; h < kDV; ++h) a.v[h] += b.v[h];
    return a;
  }
  static inline D dmul(D a, D b) {
    for (int h = 0; h < kDV; ++h) a.v[h] *= b.v[h];
    return a;
  }
  // w where the mask is set, +0 elsewhere: a bitwise and (a vector ?: would compare 64-bit lanes, which
  // SSE2 has no instruction for).
  static inline DV masked(DV w, DM m) { return (DV)((DM)w & m); }
  static inline D dadd(D a, M k, D w) {
    a.v[0] += masked(w.v[0], dmask<0>(k));
    if constexpr (kDV == 2) a.v[1] += masked(w.v[1], dmask<1>(k));
    return a;
  }
  static inline D dsub(D a, M k, D w) {
    a.v[0] -= masked(w.v[0], dmask<0>(k));
    if constexpr (kDV == 2) a.v[1] -= masked(w.v[1], dmask<1>(k));
    return a;
  }
  static inline double dsum(D a) {  // lane order
    double s = 0;
    for (int h = 0; h < kDV; ++h)
      for (int i = 0; i < kDL; ++i) s += a.v[h][i];
    return s;
  }

  template <int kPivots>
  static inline void bucket_ids(const T* g, int64_t n, const T* pivot, int32_t* out) {
    bucket_ids_loop<kPivots>(g, n, pivot, out);
  }
};

// ---------------------------------------------------------------------------------------------
// Scalar

template <typename T>
struct Scalar {
  static constexpr int L = 1;
  static constexpr int kTileRows = 4;
  using Int = Count<T>;
  using V = T;
  using M = bool;
  using C = Int;
  using R = int64_t;
  using D = double;

  static inline V load(const T* p) { return *p; }
  static inline V set1(T x) { return x; }
  static inline V add(V a, V b) { return a + b; }
  static inline V sub(V a, V b) { return a - b; }
  static inline M lt(V a, V b) { return a < b; }
  static inline M pos(M k, V a) { return k & !(a <= T(0)); }
  static inline M nle(M k, V a, V b) { return k & !(a <= b); }
  static inline M all() { return true; }
  static inline M range(int64_t lo, int64_t hi) { return lo <= 0 && 0 < hi; }

  static inline C cload(const Int* p) { return *p; }
  static inline void cstore(Int* p, C c) { *p = c; }
  static inline C czero() { return 0; }
  static inline C cadd(C a, C b) { return a + b; }
  static inline C cinc(C c, M k) { return c + Int(k); }
  static inline C cdec(C c, M k) { return c - Int(k); }

  static inline R count(M m) { return R(m); }
  static inline int64_t rsum(R r) { return r; }

  static inline D dload(const double* p) { return *p; }
  static inline void dstore(double* p, D d) { *p = d; }
  static inline D dzero() { return 0.0; }
  static inline D dset1(double x) { return x; }
  static inline D dadd(D a, D b) { return a + b; }
  static inline D dmul(D a, D b) { return a * b; }
  static inline D dadd(D a, M k, D w) { return k ? a + w : a; }
  static inline D dsub(D a, M k, D w) { return k ? a - w : a; }
  static inline double dsum(D a) { return a; }

  template <int kPivots>
  static inline void bucket_ids(const T* g, int64_t n, const T* pivot, int32_t* out) {
    bucket_ids_loop<kPivots>(g, n, pivot, out);
  }
};

// ---------------------------------------------------------------------------------------------
// AVX-512 (F, BW, VL, DQ)

#ifdef REPOSE_X86_SIMD
#define REPOSE_AVX512_TARGET "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,bmi,bmi2,popcnt"
#define REPOSE_AVX512 __attribute__((target(REPOSE_AVX512_TARGET))) static inline

template <typename T>
struct Avx512;

template <>
struct Avx512<float> {
  static constexpr int L = 16;
  static constexpr int kTileRows = 8;  // masks live in mask registers: the vector registers hold 8 rows
  using Int = int32_t;
  using V = __m512;
  using M = __mmask16;
  using C = __m512i;
  using R = int64_t;
  struct D {
    __m512d lo, hi;
  };

  REPOSE_AVX512 V load(const float* p) { return _mm512_loadu_ps(p); }
  REPOSE_AVX512 V set1(float x) { return _mm512_set1_ps(x); }
  REPOSE_AVX512 V add(V a, V b) { return _mm512_add_ps(a, b); }
  REPOSE_AVX512 V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  REPOSE_AVX512 M lt(V a, V b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  REPOSE_AVX512 M pos(M k, V a) { return _mm512_mask_cmp_ps_mask(k, a, _mm512_setzero_ps(), _CMP_NLE_UQ); }
  REPOSE_AVX512 M nle(M k, V a, V b) { return _mm512_mask_cmp_ps_mask(k, a, b, _CMP_NLE_UQ); }
  REPOSE_AVX512 M all() { return M(0xFFFFu); }
  REPOSE_AVX512 M range(int64_t lo, int64_t hi) {
    lo = lo < 0 ? 0 : (lo > L ? L : lo);
    hi = hi < 0 ? 0 : (hi > L ? L : hi);
    return hi > lo ? M(((uint32_t(1) << hi) - 1u) & ~((uint32_t(1) << lo) - 1u)) : M(0);
  }

  REPOSE_AVX512 C cload(const int32_t* p) { return _mm512_loadu_si512(p); }
  REPOSE_AVX512 void cstore(int32_t* p, C c) { _mm512_storeu_si512(p, c); }
  REPOSE_AVX512 C czero() { return _mm512_setzero_si512(); }
  REPOSE_AVX512 C cadd(C a, C b) { return _mm512_add_epi32(a, b); }
  REPOSE_AVX512 C cinc(C c, M k) { return _mm512_mask_sub_epi32(c, k, c, _mm512_set1_epi32(-1)); }
  REPOSE_AVX512 C cdec(C c, M k) { return _mm512_mask_add_epi32(c, k, c, _mm512_set1_epi32(-1)); }

  REPOSE_AVX512 R count(M m) { return __builtin_popcount(uint32_t(m)); }
  REPOSE_AVX512 int64_t rsum(R r) { return r; }

  REPOSE_AVX512 D dload(const double* p) { return {_mm512_loadu_pd(p), _mm512_loadu_pd(p + 8)}; }
  REPOSE_AVX512 void dstore(double* p, D d) {
    _mm512_storeu_pd(p, d.lo);
    _mm512_storeu_pd(p + 8, d.hi);
  }
  REPOSE_AVX512 D dzero() { return {_mm512_setzero_pd(), _mm512_setzero_pd()}; }
  REPOSE_AVX512 D dset1(double x) { return {_mm512_set1_pd(x), _mm512_set1_pd(x)}; }
  REPOSE_AVX512 D dadd(D a, D b) { return {_mm512_add_pd(a.lo, b.lo), _mm512_add_pd(a.hi, b.hi)}; }
  REPOSE_AVX512 D dmul(D a, D b) { return {_mm512_mul_pd(a.lo, b.lo), _mm512_mul_pd(a.hi, b.hi)}; }
  REPOSE_AVX512 D dadd(D a, M k, D w) {
    return {_mm512_mask_add_pd(a.lo, __mmask8(k), a.lo, w.lo), _mm512_mask_add_pd(a.hi, __mmask8(k >> 8), a.hi, w.hi)};
  }
  REPOSE_AVX512 D dsub(D a, M k, D w) {
    return {_mm512_mask_sub_pd(a.lo, __mmask8(k), a.lo, w.lo), _mm512_mask_sub_pd(a.hi, __mmask8(k >> 8), a.hi, w.hi)};
  }
  REPOSE_AVX512 double dsum(D a) {  // lane order
    double t[16];
    _mm512_storeu_pd(t, a.lo);
    _mm512_storeu_pd(t + 8, a.hi);
    double s = 0;
    for (int i = 0; i < 16; ++i) s += t[i];
    return s;
  }

  template <int kPivots>
  REPOSE_AVX512 void bucket_ids(const float* g, int64_t n, const float* pivot, int32_t* out) {
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
};

template <>
struct Avx512<double> {
  static constexpr int L = 8;
  static constexpr int kTileRows = 8;
  using Int = int64_t;
  using V = __m512d;
  using M = __mmask8;
  using C = __m512i;
  using R = int64_t;
  struct D {
    __m512d v;
  };

  REPOSE_AVX512 V load(const double* p) { return _mm512_loadu_pd(p); }
  REPOSE_AVX512 V set1(double x) { return _mm512_set1_pd(x); }
  REPOSE_AVX512 V add(V a, V b) { return _mm512_add_pd(a, b); }
  REPOSE_AVX512 V sub(V a, V b) { return _mm512_sub_pd(a, b); }
  REPOSE_AVX512 M lt(V a, V b) { return _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ); }
  REPOSE_AVX512 M pos(M k, V a) { return _mm512_mask_cmp_pd_mask(k, a, _mm512_setzero_pd(), _CMP_NLE_UQ); }
  REPOSE_AVX512 M nle(M k, V a, V b) { return _mm512_mask_cmp_pd_mask(k, a, b, _CMP_NLE_UQ); }
  REPOSE_AVX512 M all() { return M(0xFFu); }
  REPOSE_AVX512 M range(int64_t lo, int64_t hi) {
    lo = lo < 0 ? 0 : (lo > L ? L : lo);
    hi = hi < 0 ? 0 : (hi > L ? L : hi);
    return hi > lo ? M(((uint32_t(1) << hi) - 1u) & ~((uint32_t(1) << lo) - 1u)) : M(0);
  }

  REPOSE_AVX512 C cload(const int64_t* p) { return _mm512_loadu_si512(p); }
  REPOSE_AVX512 void cstore(int64_t* p, C c) { _mm512_storeu_si512(p, c); }
  REPOSE_AVX512 C czero() { return _mm512_setzero_si512(); }
  REPOSE_AVX512 C cadd(C a, C b) { return _mm512_add_epi64(a, b); }
  REPOSE_AVX512 C cinc(C c, M k) { return _mm512_mask_sub_epi64(c, k, c, _mm512_set1_epi64(-1)); }
  REPOSE_AVX512 C cdec(C c, M k) { return _mm512_mask_add_epi64(c, k, c, _mm512_set1_epi64(-1)); }

  REPOSE_AVX512 R count(M m) { return __builtin_popcount(uint32_t(m)); }
  REPOSE_AVX512 int64_t rsum(R r) { return r; }

  REPOSE_AVX512 D dload(const double* p) { return {_mm512_loadu_pd(p)}; }
  REPOSE_AVX512 void dstore(double* p, D d) { _mm512_storeu_pd(p, d.v); }
  REPOSE_AVX512 D dzero() { return {_mm512_setzero_pd()}; }
  REPOSE_AVX512 D dset1(double x) { return {_mm512_set1_pd(x)}; }
  REPOSE_AVX512 D dadd(D a, D b) { return {_mm512_add_pd(a.v, b.v)}; }
  REPOSE_AVX512 D dmul(D a, D b) { return {_mm512_mul_pd(a.v, b.v)}; }
  REPOSE_AVX512 D dadd(D a, M k, D w) { return {_mm512_mask_add_pd(a.v, k, a.v, w.v)}; }
  REPOSE_AVX512 D dsub(D a, M k, D w) { return {_mm512_mask_sub_pd(a.v, k, a.v, w.v)}; }
  REPOSE_AVX512 double dsum(D a) {  // lane order
    double t[8];
    _mm512_storeu_pd(t, a.v);
    double s = 0;
    for (int i = 0; i < 8; ++i) s += t[i];
    return s;
  }

  template <int kPivots>
  REPOSE_AVX512 void bucket_ids(const double* g, int64_t n, const double* pivot, int32_t* out) {
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
};

#undef REPOSE_AVX512
#endif  // REPOSE_X86_SIMD

}  // namespace simd
}  // namespace cpu
}  // namespace repose
