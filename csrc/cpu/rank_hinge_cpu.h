// The CPU algorithms of repose::rank_hinge on (S, N) series (plain C++ entry points;
// the torch glue is rank_loss_cpu.cpp).
#pragma once

#include <cstdint>

#include "series.h"

namespace repose {
namespace cpu {

// Instruction sets the dense kernels are compiled for (one template, simd.h traits): scalar,
// base (16-byte vectors: SSE2 on x86-64), AVX2, AVX-512. The best one the CPU supports is
// used unless the environment variable REPOSE_CPU_ISA ("avx512", "avx2", "base" or
// "scalar") asks for a lower one (for tests and benchmarks).
enum class Isa { kScalar = 0, kBase = 1, kAvx2 = 2, kAvx512 = 3 };
Isa active_isa();

// Series at most this long use the lanes-across-series dense kernel.
constexpr int64_t kLanesMaxN = 48;

// O(N^2) pair loop (any window, weights, margin), parallel over series.
template <typename T>
void dense_rank_hinge(const SeriesArgs<T>& a, Isa isa);

// O(N log N) sweep with a Fenwick tree (weights, margin, ties; window < 0 only),
// parallel over series. Series with a NaN or infinite prediction or a NaN ground
// truth go through the dense loop.
template <typename T>
void sorted_rank_hinge(const SeriesArgs<T>& a, Isa isa);

}  // namespace cpu
}  // namespace repose
