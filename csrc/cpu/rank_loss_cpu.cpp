// CPU implementation of repose::rank_hinge: loss and gradient in one pass over the
// pairs, nothing of size O(pairs) allocated. Rows (one element of one series against
// its series) are independent and are spread over threads; each row and each series
// is summed in a fixed order, so results are bit-identical from run to run.

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>

#include "../rank_hinge_row.h"

namespace repose {
namespace {

template <typename scalar_t>
struct RowArgs {
  const scalar_t* p;
  const scalar_t* g;
  const scalar_t* w;
  int64_t n;
  int64_t window;  // < 0: all pairs
  scalar_t margin;
  scalar_t* row_loss;    // (S * N)
  scalar_t* row_active;  // (S * N) or nullptr
  scalar_t* grad;        // (S * N) or nullptr
};

// Rows [begin, end) of the flattened (S * N) problem. Compiled for several ISAs and
// picked at load time, so a portable build runs at the speed of the machine.
template <typename scalar_t, bool kWeighted, bool kGrad, bool kActive>
__attribute__((always_inline)) inline void rows(const RowArgs<scalar_t>& a, int64_t begin, int64_t end) {
  for (int64_t r = begin; r < end; ++r) {
    const int64_t s = r / a.n, k = r % a.n;
    const int64_t lo = a.window < 0 ? 0 : std::max<int64_t>(0, k - a.window);
    const int64_t hi = a.window < 0 ? a.n : std::min<int64_t>(a.n, k + a.window + 1);
    const int64_t off = s * a.n;
    const scalar_t* w = kWeighted ? a.w + off : nullptr;
    RowSums<scalar_t> sums = rank_hinge_row<scalar_t, kWeighted, kGrad, kActive>(
        a.p + off, a.g + off, w, a.p[off + k], a.g[off + k], lo, hi, a.margin);
    const scalar_t wk = kWeighted ? w[k] : scalar_t(1);
    a.row_loss[r] = wk * sums.loss;
    if (kGrad) a.grad[r] = wk * sums.grad;
    if (kActive) a.row_active[r] = wk * sums.active;
  }
}

#define REPOSE_ISA_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

#define REPOSE_DEFINE_ROWS(NAME, T, W, G, A) \
  REPOSE_ISA_CLONES void NAME(const RowArgs<T>& a, int64_t b, int64_t e) { rows<T, W, G, A>(a, b, e); }

// One ISA-dispatched entry per (dtype, weighted, grad, active).
#define REPOSE_DEFINE_DTYPE(T, SUFFIX)                          \
  REPOSE_DEFINE_ROWS(rows_##SUFFIX##_000, T, false, false, false) \
  REPOSE_DEFINE_ROWS(rows_##SUFFIX##_001, T, false, false, true)  \
  REPOSE_DEFINE_ROWS(rows_##SUFFIX##_010, T, false, true, false)  \
  REPOSE_DEFINE_ROWS(rows_##SUFFIX##_011, T, false, true, true)   \
  REPOSE_DEFINE_ROWS(rows_##SUFFIX##_100, T, true, false, false)  \
  REPOSE_DEFINE_ROWS(rows_##SUFFIX##_101, T, true, false, true)   \
  REPOSE_DEFINE_ROWS(rows_##SUFFIX##_110, T, true, true, false)   \
  REPOSE_DEFINE_ROWS(rows_##SUFFIX##_111, T, true, true, true)    \
  using RowsFn_##SUFFIX = void (*)(const RowArgs<T>&, int64_t, int64_t); \
  const RowsFn_##SUFFIX kRows_##SUFFIX[8] = {rows_##SUFFIX##_000, rows_##SUFFIX##_001, \
      rows_##SUFFIX##_010, rows_##SUFFIX##_011, rows_##SUFFIX##_100, rows_##SUFFIX##_101, \
      rows_##SUFFIX##_110, rows_##SUFFIX##_111};

REPOSE_DEFINE_DTYPE(float, f32)
REPOSE_DEFINE_DTYPE(double, f64)

template <typename scalar_t>
void (*rows_fn(bool weighted, bool grad, bool active))(const RowArgs<scalar_t>&, int64_t, int64_t) {
  const int idx = (weighted ? 4 : 0) | (grad ? 2 : 0) | (active ? 1 : 0);
  if constexpr (std::is_same_v<scalar_t, float>) {
    return kRows_f32[idx];
  } else {
    return kRows_f64[idx];
  }
}

void check_series(const at::Tensor& t, const char* name, const at::Tensor& pred) {
  TORCH_CHECK(t.device().is_cpu(), "repose::rank_hinge (cpu): ", name, " must be a CPU tensor; got ", t.device());
  TORCH_CHECK(t.dim() == 2, "repose::rank_hinge: ", name, " must have shape (S, N); got ", t.sizes());
  TORCH_CHECK(t.sizes() == pred.sizes(), "repose::rank_hinge: ", name, " must have the shape of pred ",
              pred.sizes(), "; got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == pred.scalar_type(), "repose::rank_hinge: ", name, " must have dtype ",
              pred.scalar_type(), " like pred; got ", t.scalar_type());
  TORCH_CHECK(t.is_contiguous(), "repose::rank_hinge: ", name, " must be contiguous");
}

std::tuple<at::Tensor, at::Tensor> rank_hinge_cpu(const at::Tensor& pred, const at::Tensor& gt,
                                                  const std::optional<at::Tensor>& weight, double margin,
                                                  int64_t window, bool need_grad, bool need_active) {
  TORCH_CHECK(pred.scalar_type() == at::kFloat || pred.scalar_type() == at::kDouble,
              "repose::rank_hinge (cpu): pred must be float32 or float64; got ", pred.scalar_type());
  check_series(pred, "pred", pred);
  check_series(gt, "gt", pred);
  if (weight.has_value()) check_series(*weight, "weight", pred);
  const int64_t S = pred.size(0), N = pred.size(1);

  at::Tensor stats = at::zeros({S, 2}, pred.options());
  at::Tensor grad = at::empty(need_grad ? at::IntArrayRef{S, N} : at::IntArrayRef{0}, pred.options());
  if (S == 0 || N == 0) {
    if (need_grad) grad.zero_();
    return {stats, grad};
  }
  at::Tensor row_loss = at::empty({S, N}, pred.options());
  at::Tensor row_active = need_active ? at::empty({S, N}, pred.options()) : at::Tensor();

  AT_DISPATCH_FLOATING_TYPES(pred.scalar_type(), "rank_hinge_cpu", [&] {
    RowArgs<scalar_t> args{pred.data_ptr<scalar_t>(),
                           gt.data_ptr<scalar_t>(),
                           weight.has_value() ? weight->data_ptr<scalar_t>() : nullptr,
                           N,
                           window,
                           static_cast<scalar_t>(margin),
                           row_loss.data_ptr<scalar_t>(),
                           need_active ? row_active.data_ptr<scalar_t>() : nullptr,
                           need_grad ? grad.data_ptr<scalar_t>() : nullptr};
    auto fn = rows_fn<scalar_t>(weight.has_value(), need_grad, need_active);
    // About 32k pairs per task keeps the scheduling cost small for short series.
    const int64_t pairs_per_row = window < 0 ? N : std::min<int64_t>(N, 2 * window + 1);
    const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, pairs_per_row));
    at::parallel_for(0, S * N, grain, [&](int64_t b, int64_t e) { fn(args, b, e); });

    // Series sums in double, each in row order: deterministic for any thread count.
    scalar_t* out = stats.data_ptr<scalar_t>();
    const scalar_t* rl = row_loss.data_ptr<scalar_t>();
    const scalar_t* ra = need_active ? row_active.data_ptr<scalar_t>() : nullptr;
    at::parallel_for(0, S, std::max<int64_t>(1, 32768 / N), [&](int64_t b, int64_t e) {
      for (int64_t s = b; s < e; ++s) {
        double loss = 0, active = 0;
        for (int64_t k = 0; k < N; ++k) {
          loss += rl[s * N + k];
          if (ra) active += ra[s * N + k];
        }
        out[2 * s] = static_cast<scalar_t>(loss);
        out[2 * s + 1] = static_cast<scalar_t>(active);
      }
    });
  });
  return {stats, grad};
}

}  // namespace

TORCH_LIBRARY_IMPL(repose, CPU, m) { m.impl("rank_hinge", &rank_hinge_cpu); }

}  // namespace repose
