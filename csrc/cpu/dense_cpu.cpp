// ISA-specific instances of the dense kernels (dense_kernels.h) and their parallel
// driver. Each entry is compiled for one instruction set with everything it calls
// inlined into it (flatten); the entry for the CPU is picked at run time, so a portable
// build runs at the machine's speed.

// The kernels evaluate the reference's float expressions as written (the margin test
// fl(fl(p_k - p_l) + m) > 0, -0 == +0): whatever flags the build passes, no reassociation
// and signed zeros are kept in this file.
#pragma GCC optimize("no-associative-math", "signed-zeros")

#include <ATen/Parallel.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "dense_avx512.h"
#include "dense_kernels.h"
#include "dense_portable.h"
#include "rank_hinge_cpu.h"

namespace repose {
namespace cpu {

Isa active_isa() {
  __builtin_cpu_init();
  Isa best = Isa::kBase;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
    best = Isa::kAvx512;
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    best = Isa::kAvx2;
  }
  const char* env = std::getenv("REPOSE_CPU_ISA");
  if (env != nullptr) {
    Isa asked = best;
    if (std::strcmp(env, "base") == 0) asked = Isa::kBase;
    if (std::strcmp(env, "avx2") == 0) asked = Isa::kAvx2;
    if (std::strcmp(env, "avx512") == 0) asked = Isa::kAvx512;
    if (static_cast<int>(asked) < static_cast<int>(best)) best = asked;
  }
  return best;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx2:
      return "avx2";
    default:
      return "base";
  }
}

namespace {

#define REPOSE_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,bmi,bmi2,popcnt"), flatten))
#define REPOSE_TARGET_AVX2 __attribute__((target("avx2,fma,bmi,bmi2,popcnt"), flatten))
#define REPOSE_TARGET_BASE __attribute__((flatten))

template <typename T>
using KernelFn = void (*)(const SeriesArgs<T>&, int64_t, int64_t, void*);

// kernel x ISA x dtype x (weighted, margin, active): one entry each.
#define REPOSE_ENTRY(KERNEL, ISA, T, W, M, A)                                                         \
  REPOSE_TARGET_##ISA void KERNEL##_##ISA##_##T##_##W##M##A(const SeriesArgs<T>& a, int64_t b, int64_t e, \
                                                            void* s) {                                \
    KERNEL<T, W, M, A>(a, b, e, s);                                                                   \
  }
#define REPOSE_ENTRIES(KERNEL, ISA, T)               \
  REPOSE_ENTRY(KERNEL, ISA, T, false, false, false)  \
  REPOSE_ENTRY(KERNEL, ISA, T, false, false, true)   \
  REPOSE_ENTRY(KERNEL, ISA, T, false, true, false)   \
  REPOSE_ENTRY(KERNEL, ISA, T, false, true, true)    \
  REPOSE_ENTRY(KERNEL, ISA, T, true, false, false)   \
  REPOSE_ENTRY(KERNEL, ISA, T, true, false, true)    \
  REPOSE_ENTRY(KERNEL, ISA, T, true, true, false)    \
  REPOSE_ENTRY(KERNEL, ISA, T, true, true, true)     \
  const KernelFn<T> KERNEL##_##ISA##_##T[8] = {      \
      KERNEL##_##ISA##_##T##_falsefalsefalse, KERNEL##_##ISA##_##T##_falsefalsetrue, \
      KERNEL##_##ISA##_##T##_falsetruefalse,  KERNEL##_##ISA##_##T##_falsetruetrue,  \
      KERNEL##_##ISA##_##T##_truefalsefalse,  KERNEL##_##ISA##_##T##_truefalsetrue,  \
      KERNEL##_##ISA##_##T##_truetruefalse,   KERNEL##_##ISA##_##T##_truetruetrue};
// AVX-512: hand-written mask-register kernels; AVX2 and baseline: vector-extension
// kernels (dense_portable.h), compiled for each target.
using avx512::dense_lanes_avx512;
using avx512::dense_rows_avx512;
using portable::dense_lanes_avx2;
using portable::dense_lanes_base;
using portable::dense_rows_avx2;
using portable::dense_rows_base;
REPOSE_ENTRIES(dense_lanes_avx512, AVX512, float)
REPOSE_ENTRIES(dense_lanes_avx512, AVX512, double)
REPOSE_ENTRIES(dense_rows_avx512, AVX512, float)
REPOSE_ENTRIES(dense_rows_avx512, AVX512, double)
REPOSE_ENTRIES(dense_lanes_avx2, AVX2, float)
REPOSE_ENTRIES(dense_lanes_avx2, AVX2, double)
REPOSE_ENTRIES(dense_rows_avx2, AVX2, float)
REPOSE_ENTRIES(dense_rows_avx2, AVX2, double)
REPOSE_ENTRIES(dense_lanes_base, BASE, float)
REPOSE_ENTRIES(dense_lanes_base, BASE, double)
REPOSE_ENTRIES(dense_rows_base, BASE, float)
REPOSE_ENTRIES(dense_rows_base, BASE, double)

template <typename T>
KernelFn<T> pick(bool lanes, Isa isa, int variant) {
  if constexpr (std::is_same_v<T, float>) {
    switch (isa) {
      case Isa::kAvx512:
        return lanes ? dense_lanes_avx512_AVX512_float[variant] : dense_rows_avx512_AVX512_float[variant];
      case Isa::kAvx2:
        return lanes ? dense_lanes_avx2_AVX2_float[variant] : dense_rows_avx2_AVX2_float[variant];
      default:
        return lanes ? dense_lanes_base_BASE_float[variant] : dense_rows_base_BASE_float[variant];
    }
  } else {
    switch (isa) {
      case Isa::kAvx512:
        return lanes ? dense_lanes_avx512_AVX512_double[variant] : dense_rows_avx512_AVX512_double[variant];
      case Isa::kAvx2:
        return lanes ? dense_lanes_avx2_AVX2_double[variant] : dense_rows_avx2_AVX2_double[variant];
      default:
        return lanes ? dense_lanes_base_BASE_double[variant] : dense_rows_base_BASE_double[variant];
    }
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
  KernelFn<T> fn = pick<T>(lanes, isa, variant);
  constexpr int64_t L = DenseTraits<T>::kLanes;
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
