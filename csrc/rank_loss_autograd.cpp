// Autograd of repose::depth_rank_loss, in C++ so that a training step pays no Python
// autograd overhead for it (its fake implementation is registered from Python,
// repose_ext/_ops.py).
//
// The forward already wrote d loss.sum() / d pred; backward only weighs it by the
// upstream gradient of each sample's loss. When that is 1 for every sample (the loss
// summed or averaged through the op's factors, then .backward()), backward returns the
// saved gradient itself: no pass over it, and autograd takes it over as pred.grad
// without a copy once the graph is freed (with retain_graph, or while anyone else holds
// it, AccumulateGrad copies it). The hinge is piecewise linear, so treating the saved
// gradient as a constant is exact for higher orders too.

#include <ATen/Dispatch.h>
#include <torch/autograd.h>
#include <torch/library.h>

namespace repose {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::tuple<at::Tensor, at::Tensor, at::Tensor> call_depth_rank_loss(
    const at::Tensor& pred, const at::Tensor& gt, const std::optional<at::Tensor>& weight, double margin,
    int64_t window, const std::optional<at::Tensor>& spatial_scale, const std::optional<at::Tensor>& temporal_scale,
    bool need_grad, bool need_active) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("repose::depth_rank_loss", "")
                       .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
                           const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, double, int64_t,
                           const std::optional<at::Tensor>&, const std::optional<at::Tensor>&, bool, bool)>();
  return op.call(pred, gt, weight, margin, window, spatial_scale, temporal_scale, need_grad, need_active);
}

// Whether g is a plain CPU tensor (not fake, functional or batched: torch.compile and
// vmap trace this backward) whose values are all exactly 1.
bool all_ones(const at::Tensor& g) {
  // (functionality keys only: a backend key such as Meta would bring in Dense, which every CPU tensor has)
  constexpr c10::DispatchKeySet wrapped({c10::DispatchKey::Python, c10::DispatchKey::Functionalize,
                                         c10::DispatchKey::FuncTorchBatched, c10::DispatchKey::FuncTorchGradWrapper});
  if (!g.device().is_cpu() || g.dim() != 1 || g.layout() != at::kStrided || g.key_set().has_any(wrapped)) {
    return false;
  }
  bool ones = true;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, g.scalar_type(), "repose_all_ones", [&] {
    const auto a = g.accessor<scalar_t, 1>();
    for (int64_t i = 0; i < a.size(0); ++i) ones &= a[i] == scalar_t(1);
  });
  return ones;
}

class DepthRankLoss : public torch::autograd::Function<DepthRankLoss> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& pred, const at::Tensor& gt,
                               const std::optional<at::Tensor>& weight, double margin, int64_t window,
                               const std::optional<at::Tensor>& spatial_scale,
                               const std::optional<at::Tensor>& temporal_scale, bool need_grad, bool need_active) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [loss, active, grad] = call_depth_rank_loss(pred, gt, weight, margin, window, spatial_scale,
                                                     temporal_scale, need_grad, need_active);
    ctx->saved_data["need_grad"] = need_grad;
    ctx->save_for_backward({grad});
    ctx->mark_non_differentiable({active, grad});
    ctx->set_materialize_grads(false);  // no zero-filled (B, T, J, 3) upstream "gradient" of grad
    return {loss, active, grad};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    TORCH_CHECK(ctx->saved_data["need_grad"].toBool(),
                "repose rank loss: backward was called on a loss computed with need_grad=False; "
                "compute the loss with autograd enabled and pred.requires_grad=True");
    at::Tensor grad_pred;
    const at::Tensor& g = grads[0];
    if (g.defined()) {
      at::Tensor saved = ctx->get_saved_variables()[0];
      if (!at::GradMode::is_enabled() && all_ones(g)) {
        grad_pred = std::move(saved);
      } else {  // per-sample weights (differentiable in g, for double backward)
        std::vector<int64_t> shape(saved.dim(), 1);
        shape[0] = saved.size(0);
        grad_pred = saved.mul(g.reshape(shape));
      }
    }
    return {grad_pred, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor> depth_rank_loss_autograd(
    const at::Tensor& pred, const at::Tensor& gt, const std::optional<at::Tensor>& weight, double margin,
    int64_t window, const std::optional<at::Tensor>& spatial_scale, const std::optional<at::Tensor>& temporal_scale,
    bool need_grad, bool need_active) {
  variable_list out = DepthRankLoss::apply(pred, gt, weight, margin, window, spatial_scale, temporal_scale,
                                           need_grad, need_active);
  return {out[0], out[1], out[2]};
}

}  // namespace

TORCH_LIBRARY_IMPL(repose, Autograd, m) { m.impl("depth_rank_loss", &depth_rank_loss_autograd); }

}  // namespace repose
