// CUDA kernel of repose::depth_rank_loss (schema in csrc/rank_loss.cpp): argument checks, device guard,
// current stream, output allocation, the launch (depth_rank_kernel.cu) and the per-sample sums. The fake
// implementation and the autograd formula are registered from Python (repose_ext/_ops.py).

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "depth_rank_kernel.cuh"

namespace repose {
namespace {

constexpr const char* kOp = "repose::depth_rank_loss (cuda)";

void check_like(const at::Tensor& t, const char* name, const at::Tensor& pred, at::IntArrayRef shape) {
  TORCH_CHECK(t.device() == pred.device(), kOp, ": ", name, " must be on pred's device ", pred.device(), "; got ",
              t.device());
  TORCH_CHECK(t.sizes() == shape, kOp, ": ", name, " must have shape ", shape, "; got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == pred.scalar_type(), kOp, ": ", name, " must have dtype ", pred.scalar_type(),
              " like pred; got ", t.scalar_type());
}

void check_scale(const std::optional<at::Tensor>& s, const char* name, const at::Tensor& pred) {
  if (!s.has_value()) return;
  TORCH_CHECK(s->device() == pred.device() && s->dim() == 1 && s->size(0) == pred.size(0) &&
                  s->scalar_type() == at::kDouble,
              kOp, ": ", name, " must be (", pred.size(0), ",) float64 on ", pred.device(), "; got ", s->sizes(), " ",
              s->scalar_type(), " on ", s->device());
}

// (offset of the depth channel, strides of b, t, j) of (B, T, J, 3) poses or (B, T, J) depths
std::array<int64_t, 4> layout(const at::Tensor& x) {
  return {x.dim() == 4 ? 2 * x.stride(3) : 0, x.stride(0), x.stride(1), x.stride(2)};
}

template <typename scalar_t>
void launch(const at::Tensor& pred, const at::Tensor& gt, const std::optional<at::Tensor>& weight, double margin,
            int64_t window, const std::optional<at::Tensor>& spatial_scale,
            const std::optional<at::Tensor>& temporal_scale, at::Tensor* grad, at::Tensor& block_loss,
            at::Tensor& block_active, const cuda::TermTiles& spatial, const cuda::TermTiles& temporal) {
  cuda::DepthRankProblem<scalar_t> P;
  P.pred = pred.const_data_ptr<scalar_t>();
  P.gt = gt.const_data_ptr<scalar_t>();
  P.weight = weight.has_value() ? weight->const_data_ptr<scalar_t>() : nullptr;
  P.grad = grad != nullptr ? grad->mutable_data_ptr<scalar_t>() : nullptr;
  P.spatial_scale = spatial_scale.has_value() ? spatial_scale->const_data_ptr<double>() : nullptr;
  P.temporal_scale = temporal_scale.has_value() ? temporal_scale->const_data_ptr<double>() : nullptr;
  P.block_loss = block_loss.mutable_data_ptr<scalar_t>();
  P.block_active = block_active.mutable_data_ptr<scalar_t>();
  P.B = pred.size(0);
  P.T = pred.size(1);
  P.J = pred.size(2);
  const auto p = layout(pred), g = layout(gt);
  P.p_off = p[0], P.p_sb = p[1], P.p_st = p[2], P.p_sj = p[3];
  P.g_off = g[0], P.g_sb = g[1], P.g_st = g[2], P.g_sj = g[3];
  if (weight.has_value()) P.w_sb = weight->stride(0), P.w_st = weight->stride(1), P.w_sj = weight->stride(2);
  if (grad != nullptr) {
    const auto d = layout(*grad);
    P.d_off = d[0], P.d_sb = d[1], P.d_st = d[2], P.d_sj = d[3];
  }
  P.margin = static_cast<scalar_t>(margin);
  P.spatial = spatial;
  P.temporal = temporal;
  const int64_t blocks = P.B * P.blocks_per_sample();
  TORCH_CHECK(blocks < (int64_t(1) << 31), kOp, ": ", blocks, " pair tiles are more than one launch can take (2^31)");
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream(pred.device().index()).stream();
  C10_CUDA_CHECK(cuda::launch_depth_rank_loss<scalar_t>(P, stream));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> depth_rank_loss_cuda(
    const at::Tensor& pred, const at::Tensor& gt, const std::optional<at::Tensor>& weight, double margin,
    int64_t window, const std::optional<at::Tensor>& spatial_scale, const std::optional<at::Tensor>& temporal_scale,
    bool need_grad, bool need_active) {
  TORCH_CHECK(pred.scalar_type() == at::kFloat || pred.scalar_type() == at::kDouble, kOp,
              ": pred must be float32 or float64; got ", pred.scalar_type());
  TORCH_CHECK((pred.dim() == 4 && pred.size(3) == 3) || pred.dim() == 3, kOp,
              ": pred must have shape (B, T, J, 3) or (B, T, J); got ", pred.sizes());
  check_like(gt, "gt", pred, pred.sizes());
  if (weight.has_value()) check_like(*weight, "weight", pred, pred.sizes().slice(0, 3));
  check_scale(spatial_scale, "spatial_scale", pred);
  check_scale(temporal_scale, "temporal_scale", pred);
  TORCH_CHECK(window >= -1, kOp, ": window must be -1 (all pairs) or >= 0; got ", window);

  const c10::cuda::CUDAGuard guard(pred.device());
  const int64_t B = pred.size(0), T = pred.size(1), J = pred.size(2);
  const cuda::TermTiles spatial = cuda::term_tiles(J, -1, spatial_scale.has_value());
  const cuda::TermTiles temporal = cuda::term_tiles(T, window, temporal_scale.has_value());
  at::Tensor grad = need_grad ? at::zeros(pred.sizes(), pred.options()) : at::empty({0}, pred.options());
  const int64_t per_sample = T * spatial.tiles + J * temporal.tiles;
  if (B * per_sample == 0) {
    return {at::zeros({B}, pred.options()), at::zeros({B, 2}, pred.options()), grad};
  }
  at::Tensor block_loss = at::empty({B, per_sample}, pred.options());
  at::Tensor block_active = at::empty({B, per_sample, 2}, pred.options());
  at::Tensor* grad_out = need_grad ? &grad : nullptr;
  if (pred.scalar_type() == at::kFloat) {
    launch<float>(pred, gt, weight, margin, window, spatial_scale, temporal_scale, grad_out, block_loss, block_active,
                  spatial, temporal);
  } else {
    launch<double>(pred, gt, weight, margin, window, spatial_scale, temporal_scale, grad_out, block_loss,
                   block_active, spatial, temporal);
  }
  // each sample's blocks summed in a fixed order
  at::Tensor active = need_active ? at::sum(block_active, {1}) : at::zeros({B, 2}, pred.options());
  return {at::sum(block_loss, {1}), active, grad};
}

}  // namespace

TORCH_LIBRARY_IMPL(repose, CUDA, m) { m.impl("depth_rank_loss", &depth_rank_loss_cuda); }

}  // namespace repose
