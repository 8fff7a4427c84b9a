// CPU implementations of the repose rank-hinge ops (schemas in ../rank_loss.cpp):
//   rank_hinge         picks the faster exact algorithm for the problem (rule below;
//                      REPOSE_CPU_ALGO=dense|sorted fixes it);
//   rank_hinge_dense   the O(N^2) pair loop (dense_simd.h), any option;
//   rank_hinge_sorted  the O(N log N) Fenwick sweep (sorted_cpu.cpp); with a window
//                      shorter than the series it runs the dense band instead.
// All three give the reference's loss and gradient (same violated pairs, ties and
// margin included) and are deterministic: per-series results do not depend on threads.

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <c10/util/accumulate.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "rank_hinge_cpu.h"

namespace repose {
namespace {

// rank_hinge takes the sorted algorithm for series with no window at least this long,
// per instruction set of the dense kernels and without / with weights (the dense loop's
// weighted sums are slower): where the per-op ratio dense / sorted on (17, N) series
// reaches 1 (benchmarks/bench_long_clips.py --crossover, one thread). AVX-512 measured on a
// Zen 4 machine; the others on an AVX-512 Xeon with REPOSE_CPU_ISA capping the kernels.
int64_t sorted_min_n(cpu::Isa isa, bool weighted) {
  switch (isa) {
    case cpu::Isa::kAvx512:
      return weighted ? 256 : 1536;
    case cpu::Isa::kAvx2:
      return weighted ? 128 : 1024;
    case cpu::Isa::kBase:
      return weighted ? 96 : 512;
    default:
      return weighted ? 48 : 96;
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
  cpu::SeriesLayout p, g, w, grad;  // row-major (S, N) by default
};

// S series of N elements read through layouts of the data of p, g and w (w may be
// undefined): runs the algorithm `algo` picks, writes the gradient of series s, times
// grad_scale[s / (S / groups)] (1 when grad_scale is nullptr), into `grad` through l.grad
// (undefined: no gradient; grad_add: added to what it holds) and returns the stats of
// rank_hinge summed over `groups` equal runs of consecutive series, in order and in
// double: [hinge sum, active count] per group.
std::vector<double> run_series(Algo algo, const at::Tensor& p, const at::Tensor& g, const at::Tensor& w,
                               const Layouts& l, int64_t S, int64_t N, int64_t groups, double margin,
                               int64_t window, bool need_active, const at::Tensor& grad,
                               const double* grad_scale = nullptr, bool grad_add = false) {
  std::vector<double> sums(2 * groups, 0.0);
  if (S == 0 || N == 0) return sums;
  std::vector<double> loss(S), active(need_active ? S : 0);
  const bool no_window = window < 0 || window >= N - 1;
  if (algo == Algo::kAuto) algo = algo_from_env();
  // The sorted sweep hands series it cannot order (a NaN or infinite prediction, a NaN ground truth) to the
  // dense loop, which gives the reference's gradient there (a NaN difference counts as violated).
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
                                   grad.defined() ? grad.data_ptr<scalar_t>() : nullptr,
                                   loss.data(),
                                   need_active ? active.data() : nullptr,
                                   l.p,
                                   l.g,
                                   l.w,
                                   l.grad,
                                   grad_scale,
                                   S / groups,
                                   grad_add};
    if (sorted) {
      cpu::sorted_rank_hinge<scalar_t>(args, isa);
    } else {
      cpu::dense_rank_hinge<scalar_t>(args, isa);
    }
  });
  const int64_t per_group = S / groups;
  for (int64_t q = 0; q < groups; ++q) {
    for (int64_t s = q * per_group; s < (q + 1) * per_group; ++s) {
      sums[2 * q] += loss[s];
      if (need_active) sums[2 * q + 1] += active[s];
    }
  }
  return sums;
}

// A tensor of `shape` (and options' dtype) holding the doubles `v`.
at::Tensor tensor_of(const std::vector<double>& v, at::IntArrayRef shape, const at::TensorOptions& options) {
  at::Tensor t = at::empty(shape, options);
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), "repose_tensor_of",
                             [&] { std::copy(v.begin(), v.end(), t.data_ptr<scalar_t>()); });
  return t;
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
  at::Tensor grad = at::empty(need_grad ? std::vector<int64_t>{S, N} : std::vector<int64_t>{0}, pred.options());
  const std::vector<double> sums = run_series(kAlgo, pred, gt, weight.has_value() ? *weight : at::Tensor(),
                                              Layouts{}, S, N, S, margin, window, need_active,
                                              need_grad ? grad : at::Tensor());
  return {tensor_of(sums, {S, 2}, pred.options()), grad};
}

// The depths of a (B, T, J, 3) pose tensor (a strided view of channel 2), or the
// (B, T, J) depth tensor itself.
at::Tensor depth_of(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.dim() == 3 || (t.dim() == 4 && t.size(3) == 3), "repose::depth_rank_loss: ", name,
              " must have shape (B, T, J, 3) or depths (B, T, J); got ", t.sizes());
  return t.dim() == 4 ? t.select(3, 2) : t;
}

// Series of a strided (B, T, J) tensor: along J (spatial, series b*T + t) or along T
// (temporal, series b*J + j).
cpu::SeriesLayout along_joints(const at::Tensor& t) { return {t.size(1), t.stride(0), t.stride(1), t.stride(2)}; }
cpu::SeriesLayout along_frames(const at::Tensor& t) { return {t.size(2), t.stride(0), t.stride(2), t.stride(1)}; }

// The loss op's gradients (1.6 MB at (32, 243, 17, 3)) come from a small cache of freed
// ones. A training step frees the last step's gradients and asks for new ones of the
// same size; from glibc these come back freshly mapped whenever it has trimmed its heap
// in between (it trims when frees pile up at the top), and faulting them in page by
// page cost up to 0.8 ms per step (about 730 page faults when the two terms are
// computed by two calls). The cache holds the kCachedBuffers most recently freed buffers
// of at most kCachedMaxBytes each (an older one is freed when a new one comes in) and
// hands one out for any request that fits it (at least the size, at most twice).
constexpr int kCachedBuffers = 4;
constexpr size_t kCachedMaxBytes = size_t(64) << 20;

struct BufferCache {
  std::mutex m;
  void* p[kCachedBuffers] = {};
  size_t bytes[kCachedBuffers] = {};
  int count = 0;
};

BufferCache& buffer_cache() {
  static BufferCache* cache = new BufferCache;  // never destroyed: tensors may outlive static destructors
  return *cache;
}

struct CachedBuffer {  // the context of a cached tensor's DataPtr
  void* p;
  size_t bytes;
};

void release_buffer(void* ctx) {
  const CachedBuffer held = *static_cast<CachedBuffer*>(ctx);
  delete static_cast<CachedBuffer*>(ctx);
  void* p = held.p;
  const size_t bytes = held.bytes;
  if (bytes <= kCachedMaxBytes) {  // keep it, oldest first; free the oldest when full
    BufferCache& c = buffer_cache();
    std::lock_guard<std::mutex> lock(c.m);
    void* oldest = nullptr;
    if (c.count == kCachedBuffers) {
      oldest = c.p[0];
      std::copy(c.p + 1, c.p + c.count, c.p);
      std::copy(c.bytes + 1, c.bytes + c.count, c.bytes);
      --c.count;
    }
    c.p[c.count] = p, c.bytes[c.count] = bytes, ++c.count;
    p = oldest;
  }
  if (p != nullptr) c10::free_cpu(p);
}

// An uninitialised contiguous tensor of `shape`, its memory from the cache when a buffer
// fits. It behaves as any CPU tensor (resizing it allocates from torch's CPU allocator);
// its memory goes back to the cache when freed.
at::Tensor cached_empty(at::IntArrayRef shape, const at::TensorOptions& options) {
  const size_t need = std::max<size_t>(size_t(c10::multiply_integers(shape)) * options.dtype().itemsize(), 1);
  void* p = nullptr;
  size_t bytes = need;
  {
    BufferCache& c = buffer_cache();
    std::lock_guard<std::mutex> lock(c.m);
    for (int i = c.count - 1; i >= 0; --i) {  // the most recently freed first
      if (c.bytes[i] >= need && c.bytes[i] <= 2 * need) {
        p = c.p[i], bytes = c.bytes[i];
        std::copy(c.p + i + 1, c.p + c.count, c.p + i);  // the rest keep their order
        std::copy(c.bytes + i + 1, c.bytes + c.count, c.bytes + i);
        --c.count;
        break;
      }
    }
  }
  if (p == nullptr) p = c10::alloc_cpu(bytes);
  c10::DataPtr data(p, new CachedBuffer{p, bytes}, &release_buffer, c10::Device(c10::kCPU));
  c10::Storage storage(c10::Storage::use_byte_size_t(), need, std::move(data), c10::GetCPUAllocator(),
                       /*resizable=*/true);
  at::Tensor t = at::detail::make_tensor<c10::TensorImpl>(std::move(storage), c10::DispatchKeySet(c10::DispatchKey::CPU),
                                                          options.dtype());
  t.unsafeGetTensorImpl()->set_sizes_contiguous(shape);
  return t;
}

// The per-sample factors of one term as doubles (undefined when the term is off).
at::Tensor term_scale(const std::optional<at::Tensor>& scale, int64_t B, const char* name) {
  if (!scale.has_value()) return at::Tensor();
  const at::Tensor& s = *scale;
  TORCH_CHECK(s.device().is_cpu(), "repose::depth_rank_loss (cpu): ", name, " must be a CPU tensor; got ",
              s.device());
  TORCH_CHECK(s.dim() == 1 && s.size(0) == B, "repose::depth_rank_loss: ", name, " must have shape (B,) = (", B,
              "); got ", s.sizes());
  TORCH_CHECK(at::isFloatingType(s.scalar_type()), "repose::depth_rank_loss: ", name,
              " must be a floating-point tensor; got ", s.scalar_type());
  return s.to(at::kDouble).contiguous();
}

// Both terms of the RePOSE loss straight from the poses, reduced with per-sample factors,
// and d loss.sum() / d pred in pred's shape: the kernels read the series through strided
// layouts of the depth views (no copies of pred or gt) and write the scaled gradient of
// each term straight into the depth channel of one buffer (the temporal term adds to
// what the spatial term wrote).
std::tuple<at::Tensor, at::Tensor, at::Tensor> depth_rank_loss_cpu(
    const at::Tensor& pred, const at::Tensor& gt, const std::optional<at::Tensor>& weight, double margin,
    int64_t window, const std::optional<at::Tensor>& spatial_scale, const std::optional<at::Tensor>& temporal_scale,
    bool need_grad, bool need_active) {
  const char* op = "repose::depth_rank_loss";
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
  const at::Tensor scales[2] = {term_scale(spatial_scale, B, "spatial_scale"),
                                term_scale(temporal_scale, B, "temporal_scale")};

  // Poses: zeros in the x and y channels; depths: the terms write every element (zeros if none is on).
  at::Tensor grad = need_grad ? cached_empty(pred.sizes(), pred.options()) : at::empty({0}, pred.options());
  if (need_grad && (pred.dim() == 4 || !(scales[0].defined() || scales[1].defined()))) grad.zero_();
  const at::Tensor gz = need_grad ? depth_of(grad, "grad") : at::Tensor();
  std::vector<double> loss(B, 0.0), active(2 * B, 0.0);
  bool written = false;  // whether a term has written the gradient yet (the next one adds to it)
  for (int term = 0; term < 2; ++term) {
    if (!scales[term].defined()) continue;
    const bool spatial = term == 0;
    auto along = spatial ? along_joints : along_frames;
    const cpu::SeriesLayout none{};
    const Layouts l{along(zp), along(zg), w.defined() ? along(w) : none, need_grad ? along(gz) : none};
    const double* scale = scales[term].data_ptr<double>();
    const std::vector<double> sums =
        run_series(Algo::kAuto, zp, zg, w, l, spatial ? B * T : B * J, spatial ? J : T, B, margin,
                   spatial ? -1 : window, need_active, gz, scale, written);
    written = true;
    for (int64_t b = 0; b < B; ++b) {
      loss[b] += scale[b] * sums[2 * b];
      active[2 * b + term] = sums[2 * b + 1];
    }
  }
  return {tensor_of(loss, {B}, pred.options()), tensor_of(active, {B, 2}, pred.options()), grad};
}

int64_t cpu_sorted_min_n(int64_t isa, bool weighted) {
  TORCH_CHECK(isa >= 0 && isa <= 3,
              "cpu_sorted_min_n: isa must be 0 (scalar), 1 (base), 2 (AVX2) or 3 (AVX-512); got ", isa);
  return sorted_min_n(static_cast<cpu::Isa>(isa), weighted);
}

}  // namespace

TORCH_LIBRARY_IMPL(repose, CompositeExplicitAutograd, m) {
  m.impl("cpu_sorted_min_n", &cpu_sorted_min_n);
}

TORCH_LIBRARY_IMPL(repose, CPU, m) {
  m.impl("depth_rank_loss", &depth_rank_loss_cpu);
  m.impl("rank_hinge", &rank_hinge_cpu<Algo::kAuto>);
  m.impl("rank_hinge_dense", &rank_hinge_cpu<Algo::kDense>);
  m.impl("rank_hinge_sorted", &rank_hinge_cpu<Algo::kSorted>);
}

}  // namespace repose
