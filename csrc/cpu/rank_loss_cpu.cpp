// CPU implementations of the repose rank-hinge ops (schemas in ../rank_loss.cpp):
//   rank_hinge         picks the faster exact algorithm for the problem (rule below;
//                      REPOSE_CPU_ALGO=dense|sorted fixes it);
//   rank_hinge_dense   the O(N^2) pair loop (dense_kernels.h), any option;
//   rank_hinge_sorted  the O(N log N) Fenwick sweep (sorted_cpu.cpp); with a window
//                      shorter than the series it runs the dense band instead.
// All three give the reference's loss and gradient (same violated pairs, ties and
// margin included) and are deterministic: per-series results do not depend on threads.

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "rank_hinge_cpu.h"

namespace repose {
namespace {

// rank_hinge takes the sorted algorithm for series with no window at least this long,
// per instruction set of the dense kernels and without / with weights (the dense loop's
// weighted sums are slower). Crossovers measured on a Zen 4 machine with each kernel
// (benchmarks/bench_long_clips.py --crossover for the AVX-512 one).
int64_t sorted_min_n(cpu::Isa isa, bool weighted) {
  switch (isa) {
    case cpu::Isa::kAvx512:
      return weighted ? 256 : 1536;
    case cpu::Isa::kAvx2:
      return weighted ? 64 : 512;
    default:
      return weighted ? 64 : 256;
  }
}

enum class Algo { kAuto, kDense, kSorted };

// rank_hinge's choice can be fixed with REPOSE_CPU_ALGO=dense|sorted (benchmarks, tests).
Algo algo_from_env() {
  const char* env = std::getenv("REPOSE_CPU_ALGO");
  if (env == nullptr) return Algo::kAuto;
  if (std::strcmp(env, "dense") == 0) return Algo::kDense;
  if (std::strcmp(env, "sorted") == 0) return Algo::kSorted;
  return Algo::kAuto;
}

void check_series(const at::Tensor& t, const char* op, const char* name, const at::Tensor& pred) {
  TORCH_CHECK(t.device().is_cpu(), op, " (cpu): ", name, " must be a CPU tensor; got ", t.device());
  TORCH_CHECK(t.dim() == 2, op, ": ", name, " must have shape (S, N); got ", t.sizes());
  TORCH_CHECK(t.sizes() == pred.sizes(), op, ": ", name, " must have the shape of pred ", pred.sizes(), "; got ",
              t.sizes());
  TORCH_CHECK(t.scalar_type() == pred.scalar_type(), op, ": ", name, " must have dtype ", pred.scalar_type(),
              " like pred; got ", t.scalar_type());
  TORCH_CHECK(t.is_contiguous(), op, ": ", name, " must be contiguous");
}

template <Algo kAlgo>
std::tuple<at::Tensor, at::Tensor> rank_hinge_cpu(const at::Tensor& pred, const at::Tensor& gt,
                                                  const std::optional<at::Tensor>& weight, double margin,
                                                  int64_t window, bool need_grad, bool need_active) {
  const char* op = kAlgo == Algo::kAuto    ? "repose::rank_hinge"
                   : kAlgo == Algo::kDense ? "repose::rank_hinge_dense"
                                           : "repose::rank_hinge_sorted";
  TORCH_CHECK(pred.scalar_type() == at::kFloat || pred.scalar_type() == at::kDouble, op,
              " (cpu): pred must be float32 or float64; got ", pred.scalar_type());
  check_series(pred, op, "pred", pred);
  check_series(gt, op, "gt", pred);
  if (weight.has_value()) check_series(*weight, op, "weight", pred);
  const int64_t S = pred.size(0), N = pred.size(1);
  TORCH_CHECK(N < (int64_t(1) << 31), op, ": series must have fewer than 2^31 elements; got ", N);

  at::Tensor stats = at::zeros({S, 2}, pred.options());
  at::Tensor grad = need_grad ? at::empty({S, N}, pred.options()) : at::empty({0}, pred.options());
  if (S == 0 || N == 0) {
    if (need_grad) grad.zero_();
    return {stats, grad};
  }
  std::vector<double> loss(S), active(need_active ? S : 0);
  const bool no_window = window < 0 || window >= N - 1;
  const Algo algo = kAlgo == Algo::kAuto ? algo_from_env() : kAlgo;
  const cpu::Isa isa = cpu::active_isa();
  const bool sorted =
      algo == Algo::kSorted || (algo == Algo::kAuto && no_window && N >= sorted_min_n(isa, weight.has_value()));

  AT_DISPATCH_FLOATING_TYPES(pred.scalar_type(), "rank_hinge_cpu", [&] {
    cpu::SeriesArgs<scalar_t> args{pred.data_ptr<scalar_t>(),
                                   gt.data_ptr<scalar_t>(),
                                   weight.has_value() ? weight->data_ptr<scalar_t>() : nullptr,
                                   S,
                                   N,
                                   no_window ? -1 : window,
                                   static_cast<scalar_t>(margin),
                                   need_grad ? grad.data_ptr<scalar_t>() : nullptr,
                                   loss.data(),
                                   need_active ? active.data() : nullptr};
    if (sorted) {
      cpu::sorted_rank_hinge<scalar_t>(args, isa);
    } else {
      cpu::dense_rank_hinge<scalar_t>(args, isa);
    }
    scalar_t* out = stats.data_ptr<scalar_t>();
    for (int64_t s = 0; s < S; ++s) {
      out[2 * s] = static_cast<scalar_t>(loss[s]);
      if (need_active) out[2 * s + 1] = static_cast<scalar_t>(active[s]);
    }
  });
  return {stats, grad};
}

}  // namespace

TORCH_LIBRARY_IMPL(repose, CPU, m) {
  m.impl("rank_hinge", &rank_hinge_cpu<Algo::kAuto>);
  m.impl("rank_hinge_dense", &rank_hinge_cpu<Algo::kDense>);
  m.impl("rank_hinge_sorted", &rank_hinge_cpu<Algo::kSorted>);
}

}  // namespace repose
