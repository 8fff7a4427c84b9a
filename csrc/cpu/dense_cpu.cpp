// The dense kernels (dense_simd.h) instantiated for each instruction set, and their
// parallel driver. An ISA's entry point carries its target and `flatten`, so the kernel
// template and its trait's functions are all inlined into it and compiled for that ISA;
// the entry for the CPU is picked at run time, so a portable build runs at the machine's
// speed.

// The kernels evaluate the reference's float expressions as written (the margin test
// fl(fl(p_k - p_l) + m) > 0, -0 == +0): whatever flags the build passes, no reassociation
// and signed zeros are kept in this file.
#pragma GCC optimize("no-associative-math", "signed-zeros")
// Vectors passed by value between the (always inlined) trait functions: no ABI concern.
#pragma GCC diagnostic ignored "-Wpsabi"

#include <ATen/Parallel.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <utility>

#include "dense_simd.h"
#include "rank_hinge_cpu.h"

namespace repose {
namespace cpu {

Isa active_isa() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  Isa best = Isa::kBase;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
    best = Isa::kAvx512;
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    best = Isa::kAvx2;
  }
#else
  Isa best = Isa::kBase;  // 16-byte vectors of the target (e.g. NEON)
#endif
  const char* env = std::getenv("REPOSE_CPU_ISA");
  if (env != nullptr) {
    Isa asked = best;
    if (std::strcmp(env, "scalar") == 0) asked = Isa::kScalar;
    if (std::strcmp(env, "base") == 0) asked = Isa::kBase;
    if (std::strcmp(env, "avx2") == 0) asked = Isa::kAvx2;
    if (std::strcmp(env, "avx512") == 0) asked = Isa::kAvx512;
    if (static_cast<int>(asked) < static_cast<int>(best)) best = asked;
  }
  return best;
}

namespace {

template <typename T>
using KernelFn = void (*)(const SeriesArgs<T>&, int64_t, int64_t, void*);

// kernel (lanes / rows) x (weighted, margin, active) for trait X. Rows per tile: weighted 2,
// else the trait's kTileRows.
template <class X, typename T, bool kRows, bool kW, bool kM, bool kA>
inline void dense_kernel(const SeriesArgs<T>& a, int64_t b, int64_t e, void* scratch) {
  if constexpr (kRows) {
    rows<X, T, kW, kM, kA, (kW ? 2 : X::kTileRows)>(a, b, e, scratch);
  } else {
    lanes<X, T, kW, kM, kA>(a, b, e, scratch);
  }
}

// One entry per instruction set: its target, and its trait for T.
struct ScalarEntry {
  template <typename T, bool kRows, bool kW, bool kM, bool kA>
  __attribute__((flatten)) static void run(const SeriesArgs<T>& a, int64_t b, int64_t e, void* s) {
    dense_kernel<simd::Scalar<T>, T, kRows, kW, kM, kA>(a, b, e, s);
  }
};
struct BaseEntry {  // 16-byte vectors: SSE2 on x86-64
  template <typename T, bool kRows, bool kW, bool kM, bool kA>
  __attribute__((flatten)) static void run(const SeriesArgs<T>& a, int64_t b, int64_t e, void* s) {
    dense_kernel<simd::VecExt<T, 16>, T, kRows, kW, kM, kA>(a, b, e, s);
  }
};
#if defined(REPOSE_X86_SIMD)
struct Avx2Entry {
  template <typename T, bool kRows, bool kW, bool kM, bool kA>
  __attribute__((target("avx2,fma,bmi,bmi2,popcnt"), flatten)) static void run(const SeriesArgs<T>& a, int64_t b,
                                                                               int64_t e, void* s) {
    dense_kernel<simd::VecExt<T, 32>, T, kRows, kW, kM, kA>(a, b, e, s);
  }
};
struct Avx512Entry {
  template <typename T, bool kRows, bool kW, bool kM, bool kA>
  __attribute__((target(REPOSE_AVX512_TARGET), flatten)) static void run(const SeriesArgs<T>& a, int64_t b,
                                                                         int64_t e, void* s) {
    dense_kernel<simd::Avx512<T>, T, kRows, kW, kM, kA>(a, b, e, s);
  }
};
#endif

// The 8 variants (weighted, margin, active as bits 2, 1, 0) of one entry and kernel.
template <class Entry, typename T, bool kRows, size_t... V>
constexpr std::array<KernelFn<T>, 8> variants(std::index_sequence<V...>) {
  return {&Entry::template run<T, kRows, bool(V & 4), bool(V & 2), bool(V & 1)>...};
}

template <class Entry, typename T>
KernelFn<T> pick_in(bool rows_kernel, int variant) {
  static constexpr auto lanes_table = variants<Entry, T, false>(std::make_index_sequence<8>());
  static constexpr auto rows_table = variants<Entry, T, true>(std::make_index_sequence<8>());
  return rows_kernel ? rows_table[variant] : lanes_table[variant];
}

template <typename T>
KernelFn<T> pick(bool rows, Isa isa, int variant) {
  switch (isa) {
#if defined(REPOSE_X86_SIMD)
    case Isa::kAvx512:
      return pick_in<Avx512Entry, T>(rows, variant);
    case Isa::kAvx2:
      return pick_in<Avx2Entry, T>(rows, variant);
#endif
    case Isa::kBase:
      return pick_in<BaseEntry, T>(rows, variant);
    default:
      return pick_in<ScalarEntry, T>(rows, variant);
  }
}

struct AlignedFree {
  void operator()(void* p) const { ::operator delete[](p, std::align_val_t(64)); }
};

std::unique_ptr<char[], AlignedFree> aligned_scratch(int64_t bytes) {
  return std::unique_ptr<char[], AlignedFree>(
      static_cast<char*>(::operator new[](static_cast<size_t>(bytes), std::align_val_t(64))));
}

}  // namespace

template <typename T>
void dense_rank_hinge(const SeriesArgs<T>& a, Isa isa) {
  if (a.s == 0 || a.n == 0) return;
  const bool weighted = a.w != nullptr;
  const bool margin = a.margin != T(0);
  const bool active = a.active != nullptr;
  const int variant = (weighted ? 4 : 0) | (margin ? 2 : 0) | (active ? 1 : 0);
  const int64_t n = a.n;
  const int64_t pairs_per_series =
      a.window < 0 ? n * (n - 1) / 2 : n * (a.window < n ? a.window : n);  // upper bound
  const bool lanes = n <= kLanesMaxN;
  KernelFn<T> fn = pick<T>(!lanes, isa, variant);
  constexpr int64_t L = kBlockSeries<T>;
  const int64_t scratch = weighted ? (lanes ? dense_lanes_scratch<T, true>(n) : dense_rows_scratch<T, true>(n))
                                   : (lanes ? dense_lanes_scratch<T, false>(n) : dense_rows_scratch<T, false>(n));
  // Tasks of about 256k pairs (~0.1 ms): small enough to balance, large enough that
  // thread hand-offs stay rare.
  const int64_t per_item = lanes ? pairs_per_series * L : pairs_per_series;
  const int64_t items = lanes ? (a.s + L - 1) / L : a.s;
  const int64_t grain = per_item >= 262144 ? 1 : 262144 / (per_item > 0 ? per_item : 1);
  at::parallel_for(0, items, grain, [&](int64_t b, int64_t e) {
    auto buf = aligned_scratch(scratch);
    fn(a, b, e, buf.get());
  });
}

template void dense_rank_hinge<float>(const SeriesArgs<float>&, Isa);
template void dense_rank_hinge<double>(const SeriesArgs<double>&, Isa);

}  // namespace cpu
}  // namespace repose
