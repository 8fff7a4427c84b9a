// CPU implementations of the repose rank-hinge ops (schemas in ../rank_loss.cpp):
//   rank_hinge         picks the faster exact algorithm for the problem (rule below;
//                      REPOSE_CPU_ALGO=dense|sorted fixes it);
//   rank_hinge_dense   the O(N^2) pair loop (dense_kernels.h), any option;
//   rank_hinge_sorted  the O(N log N) Fenwick sweep (sorted_cpu.cpp); with a window
//                      shorter than the series it runs the dense band instead.
// All three give the reference's loss and gradient (same violated pairs, ties and
// margin included) and are deterministic: per-series results do not depend on threads.

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
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

// Where run_series reads its series and writes their gradient.
struct Layouts {
  cpu::SeriesLayout p, g, w, grad;
  std::vector<int64_t> grad_shape;  // of the gradient tensor (S * N elements)
};

// S series of N elements read through layouts of the data of p, g and w (w may be
// undefined): runs the algorithm `algo` picks and returns rank_hinge's (stats, grad),
// with the stats summed over `groups` equal runs of consecutive series (in order, in
// double): (groups, 2); groups = S keeps one row per series.
std::tuple<at::Tensor, at::Tensor> run_series(Algo algo, const at::Tensor& p, const at::Tensor& g,
                                              const at::Tensor& w, const Layouts& l, int64_t S, int64_t N,
                                              int64_t groups, double margin, int64_t window, bool need_grad,
                                              bool need_active) {
  at::Tensor stats = at::zeros({groups, 2}, p.options());
  at::Tensor grad = need_grad ? at::empty(l.grad_shape, p.options()) : at::empty({0}, p.options());
  if (S == 0 || N == 0) {
    if (need_grad) grad.zero_();
    return {stats, grad};
  }
  std::vector<double> loss(S), active(need_active ? S : 0);
  const bool no_window = window < 0 || window >= N - 1;
  if (algo == Algo::kAuto) algo = algo_from_env();
  const cpu::Isa isa = cpu::active_isa();
  const bool sorted =
      algo == Algo::kSorted || (algo == Algo::kAuto && no_window && N >= sorted_min_n(isa, w.defined()));

  AT_DISPATCH_FLOATING_TYPES(p.scalar_type(), "rank_hinge_cpu", [&] {
    cpu::SeriesArgs<scalar_t> args{p.data_ptr<scalar_t>(),
                                   g.data_ptr<scalar_t>(),
                                   w.defined() ? w.data_ptr<scalar_t>() : nullptr,
                                   S,
                                   N,
                                   no_window ? -1 : window,
                                   static_cast<scalar_t>(margin),
                                   need_grad ? grad.data_ptr<scalar_t>() : nullptr,
                                   loss.data(),
                                   need_active ? active.data() : nullptr,
                                   l.p,
                                   l.g,
                                   l.w,
                                   l.grad};
    if (sorted) {
      cpu::sorted_rank_hinge<scalar_t>(args, isa);
    } else {
      cpu::dense_rank_hinge<scalar_t>(args, isa);
    }
    scalar_t* out = stats.data_ptr<scalar_t>();
    const int64_t per_group = S / groups;
    for (int64_t q = 0; q < groups; ++q) {
      double l = 0, c = 0;
      for (int64_t s = q * per_group; s < (q + 1) * per_group; ++s) {
        l += loss[s];
        if (need_active) c += active[s];
      }
      out[2 * q] = static_cast<scalar_t>(l);
      out[2 * q + 1] = static_cast<scalar_t>(c);
    }
  });
  return {stats, grad};
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
  return run_series(kAlgo, pred, gt, weight.has_value() ? *weight : at::Tensor(), Layouts{{}, {}, {}, {}, {S, N}}, S,
                    N, S, margin, window, need_grad, need_active);
}

// The depths of a (B, T, J, 3) pose tensor (a strided view of channel 2), or the
// (B, T, J) depth tensor itself.
at::Tensor depth_of(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.dim() == 3 || (t.dim() == 4 && t.size(3) == 3), "repose::depth_rank_hinge: ", name,
              " must have shape (B, T, J, 3) or depths (B, T, J); got ", t.sizes());
  return t.dim() == 4 ? t.select(3, 2) : t;
}

// Series of a strided (B, T, J) tensor: along J (spatial, series b*T + t) or along T
// (temporal, series b*J + j).
cpu::SeriesLayout along_joints(const at::Tensor& t) { return {t.size(1), t.stride(0), t.stride(1), t.stride(2)}; }
cpu::SeriesLayout along_frames(const at::Tensor& t) { return {t.size(2), t.stride(0), t.stride(2), t.stride(1)}; }

// Both terms of the RePOSE loss straight from the poses: the kernels read the series
// through strided layouts of the depth views (no copies of pred or gt).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> depth_rank_hinge_cpu(
    const at::Tensor& pred, const at::Tensor& gt, const std::optional<at::Tensor>& weight, double margin,
    int64_t window, bool spatial, bool temporal, bool need_grad, bool need_active) {
  const char* op = "repose::depth_rank_hinge";
  TORCH_CHECK(pred.device().is_cpu() && gt.device().is_cpu(), op, " (cpu): pred and gt must be CPU tensors; got ",
              pred.device(), " and ", gt.device());
  TORCH_CHECK(pred.scalar_type() == at::kFloat || pred.scalar_type() == at::kDouble, op,
              " (cpu): pred must be float32 or float64; got ", pred.scalar_type());
  TORCH_CHECK(gt.sizes() == pred.sizes(), op, ": gt must have the shape of pred ", pred.sizes(), "; got ",
              gt.sizes());
  TORCH_CHECK(gt.scalar_type() == pred.scalar_type(), op, ": gt must have dtype ", pred.scalar_type(),
              " like pred; got ", gt.scalar_type());
  const at::Tensor zp = depth_of(pred, "pred"), zg = depth_of(gt, "gt");
  at::Tensor w;
  if (weight.has_value()) {
    w = *weight;
    TORCH_CHECK(w.device().is_cpu(), op, " (cpu): weight must be a CPU tensor; got ", w.device());
    TORCH_CHECK(w.sizes() == zp.sizes(), op, ": weight must have shape (B, T, J) = ", zp.sizes(), "; got ",
                w.sizes());
    TORCH_CHECK(w.scalar_type() == pred.scalar_type(), op, ": weight must have dtype ", pred.scalar_type(),
                " like pred; got ", w.scalar_type());
  }
  const int64_t B = zp.size(0), T = zp.size(1), J = zp.size(2);
  TORCH_CHECK(T < (int64_t(1) << 31), op, ": series must have fewer than 2^31 elements; got T = ", T);
  // A term that is off returns empty tensors (distinct ones: outputs must not alias).
  at::Tensor spatial_stats = at::zeros({0, 2}, pred.options()), spatial_grad = at::empty({0}, pred.options());
  at::Tensor temporal_stats = at::zeros({0, 2}, pred.options()), temporal_grad = at::empty({0}, pred.options());
  const cpu::SeriesLayout none{};
  if (spatial) {  // gradient (B, T, J): row-major series
    const Layouts l{along_joints(zp), along_joints(zg), w.defined() ? along_joints(w) : none, none, {B, T, J}};
    std::tie(spatial_stats, spatial_grad) =
        run_series(Algo::kAuto, zp, zg, w, l, B * T, J, B, margin, -1, need_grad, need_active);
  }
  if (temporal) {  // gradient (B, T, J) too: series b*J + j starts at b*T*J + j, steps of J
    const Layouts l{along_frames(zp), along_frames(zg), w.defined() ? along_frames(w) : none,
                    cpu::SeriesLayout{J, T * J, 1, J}, {B, T, J}};
    std::tie(temporal_stats, temporal_grad) =
        run_series(Algo::kAuto, zp, zg, w, l, B * J, T, B, margin, window, need_grad, need_active);
  }
  return {spatial_stats, temporal_stats, spatial_grad, temporal_grad};
}

// d loss / d pred = sum over samples and terms of (upstream gradient of the sample's
// hinge sum) x (the saved gradient), written in pred's shape in one pass.
at::Tensor depth_rank_hinge_backward_cpu(const std::optional<at::Tensor>& grad_spatial_stats,
                                         const std::optional<at::Tensor>& grad_temporal_stats,
                                         const at::Tensor& spatial_grad, const at::Tensor& temporal_grad, bool pose) {
  const char* op = "repose::depth_rank_hinge_backward";
  const bool has_s = grad_spatial_stats.has_value(), has_t = grad_temporal_stats.has_value();
  TORCH_CHECK(has_s || has_t, op, ": needs grad_spatial_stats or grad_temporal_stats");
  TORCH_CHECK(!has_s || spatial_grad.dim() == 3, op, ": spatial_grad must have shape (B, T, J); got ",
              spatial_grad.sizes(), " (was the loss computed with need_grad=False?)");
  TORCH_CHECK(!has_t || temporal_grad.dim() == 3, op, ": temporal_grad must have shape (B, T, J); got ",
              temporal_grad.sizes(), " (was the loss computed with need_grad=False?)");
  TORCH_CHECK(!(has_s && has_t) || temporal_grad.sizes() == spatial_grad.sizes(), op,
              ": temporal_grad must have the shape of spatial_grad ", spatial_grad.sizes(), "; got ",
              temporal_grad.sizes());
  const at::Tensor& like = has_s ? spatial_grad : temporal_grad;
  const int64_t B = like.size(0), TJ = like.size(1) * like.size(2);
  // Column 0 of each (B, 2) stats gradient (the hinge sums; the active counts have no gradient).
  auto column = [&](const std::optional<at::Tensor>& g, const char* name) -> at::Tensor {
    if (!g.has_value()) return at::Tensor();
    TORCH_CHECK(g->dim() == 2 && g->size(0) == B && g->size(1) == 2, op, ": ", name, " must have shape (", B,
                ", 2); got ", g->sizes());
    return g->select(1, 0).to(like.scalar_type()).contiguous();
  };
  const at::Tensor a = column(grad_spatial_stats, "grad_spatial_stats");
  const at::Tensor c = column(grad_temporal_stats, "grad_temporal_stats");
  const at::Tensor sg = has_s ? spatial_grad.contiguous() : spatial_grad;
  const at::Tensor tg = has_t ? temporal_grad.contiguous() : temporal_grad;
  std::vector<int64_t> shape(like.sizes().begin(), like.sizes().end());
  if (pose) shape.push_back(3);
  at::Tensor out = at::empty(shape, like.options());
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "depth_rank_hinge_backward_cpu", [&] {
    const scalar_t* as = has_s ? a.data_ptr<scalar_t>() : nullptr;
    const scalar_t* cs = has_t ? c.data_ptr<scalar_t>() : nullptr;
    const scalar_t* sp = has_s ? sg.data_ptr<scalar_t>() : nullptr;
    const scalar_t* tp = has_t ? tg.data_ptr<scalar_t>() : nullptr;
    scalar_t* o = out.data_ptr<scalar_t>();
    // Blocks of one sample's depth gradient: z = a_b * spatial + c_b * temporal, then
    // written out (as (0, 0, z) triples for poses).
    constexpr int64_t kBlock = 1024;
    at::parallel_for(0, B * TJ, 4 * kBlock, [&](int64_t i0, int64_t i1) {
      scalar_t z[kBlock];
      for (int64_t i = i0; i < i1;) {
        const int64_t b = i / TJ, end = std::min({i1, (b + 1) * TJ, i + kBlock}), len = end - i;
        const scalar_t ab = has_s ? as[b] : scalar_t(0), cb = has_t ? cs[b] : scalar_t(0);
        if (has_s && has_t) {
          for (int64_t k = 0; k < len; ++k) z[k] = ab * sp[i + k] + cb * tp[i + k];
        } else if (has_s) {
          for (int64_t k = 0; k < len; ++k) z[k] = ab * sp[i + k];
        } else {
          for (int64_t k = 0; k < len; ++k) z[k] = cb * tp[i + k];
        }
        if (pose) {
          scalar_t* dst = o + 3 * i;
          for (int64_t k = 0; k < len; ++k) dst[3 * k] = 0, dst[3 * k + 1] = 0, dst[3 * k + 2] = z[k];
        } else {
          std::copy(z, z + len, o + i);
        }
        i = end;
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(repose, CPU, m) {
  m.impl("depth_rank_hinge", &depth_rank_hinge_cpu);
  m.impl("depth_rank_hinge_backward", &depth_rank_hinge_backward_cpu);
  m.impl("rank_hinge", &rank_hinge_cpu<Algo::kAuto>);
  m.impl("rank_hinge_dense", &rank_hinge_cpu<Algo::kDense>);
  m.impl("rank_hinge_sorted", &rank_hinge_cpu<Algo::kSorted>);
}

}  // namespace repose
