// Autograd of repose::depth_rank_hinge, in C++ so that a training step pays no Python
// autograd overhead for it (the fake implementations and the double-backward formula of
// the backward op are registered from Python, repose_ext/_ops.py).
//
// The forward already computed d stats[b, 0] / d pred_z for every sample; backward only
// weighs it by the upstream gradients of the two stats, in one pass
// (repose::depth_rank_hinge_backward). The hinge is piecewise linear, so treating the
// saved gradient as a constant is exact for higher orders too.

#include <torch/autograd.h>
#include <torch/library.h>

namespace repose {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> call_depth_rank_hinge(
    const at::Tensor& pred, const at::Tensor& gt, const std::optional<at::Tensor>& weight, double margin,
    int64_t window, bool spatial, bool temporal, bool need_grad, bool need_active) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("repose::depth_rank_hinge", "")
                       .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
                           const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, double, int64_t,
                           bool, bool, bool, bool)>();
  return op.call(pred, gt, weight, margin, window, spatial, temporal, need_grad, need_active);
}

at::Tensor call_depth_rank_hinge_backward(const std::optional<at::Tensor>& grad_spatial_stats,
                                          const std::optional<at::Tensor>& grad_temporal_stats,
                                          const at::Tensor& spatial_grad, const at::Tensor& temporal_grad,
                                          bool pose) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("repose::depth_rank_hinge_backward", "")
                       .typed<at::Tensor(const std::optional<at::Tensor>&, const std::optional<at::Tensor>&,
                                         const at::Tensor&, const at::Tensor&, bool)>();
  return op.call(grad_spatial_stats, grad_temporal_stats, spatial_grad, temporal_grad, pose);
}

class DepthRankHinge : public torch::autograd::Function<DepthRankHinge> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& pred, const at::Tensor& gt,
                               const std::optional<at::Tensor>& weight, double margin, int64_t window, bool spatial,
                               bool temporal, bool need_grad, bool need_active) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [spatial_stats, temporal_stats, spatial_grad, temporal_grad] =
        call_depth_rank_hinge(pred, gt, weight, margin, window, spatial, temporal, need_grad, need_active);
    ctx->saved_data["pose"] = pred.dim() == 4;
    ctx->saved_data["need_grad"] = need_grad;
    ctx->save_for_backward({spatial_grad, temporal_grad});
    ctx->mark_non_differentiable({spatial_grad, temporal_grad});
    return {spatial_stats, temporal_stats, spatial_grad, temporal_grad};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    TORCH_CHECK(ctx->saved_data["need_grad"].toBool(),
                "repose rank loss: backward was called on a loss computed with need_grad=False; "
                "compute the loss with autograd enabled and pred.requires_grad=True");
    const variable_list saved = ctx->get_saved_variables();
    // An unused term's stats get no gradient (undefined); a term that is off saved (0,).
    const bool has_s = grads[0].defined() && saved[0].dim() == 3;
    const bool has_t = grads[1].defined() && saved[1].dim() == 3;
    at::Tensor grad_pred;
    if (has_s || has_t) {
      grad_pred = call_depth_rank_hinge_backward(has_s ? std::optional<at::Tensor>(grads[0]) : std::nullopt,
                                                 has_t ? std::optional<at::Tensor>(grads[1]) : std::nullopt,
                                                 saved[0], saved[1], ctx->saved_data["pose"].toBool());
    }
    return {grad_pred, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> depth_rank_hinge_autograd(
    const at::Tensor& pred, const at::Tensor& gt, const std::optional<at::Tensor>& weight, double margin,
    int64_t window, bool spatial, bool temporal, bool need_grad, bool need_active) {
  variable_list out =
      DepthRankHinge::apply(pred, gt, weight, margin, window, spatial, temporal, need_grad, need_active);
  return {out[0], out[1], out[2], out[3]};
}

}  // namespace

TORCH_LIBRARY_IMPL(repose, Autograd, m) { m.impl("depth_rank_hinge", &depth_rank_hinge_autograd); }

}  // namespace repose
