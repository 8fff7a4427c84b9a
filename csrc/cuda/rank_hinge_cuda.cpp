// CUDA implementation of repose::rank_hinge: argument checks, device guard, current stream,
// scratch allocation, launch (rank_hinge_kernel.cu) and launch check. The schema is in
// csrc/rank_loss.cpp; the autograd formula and the fake implementation in repose_ext/_ops.py.

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "rank_hinge_kernel.cuh"

namespace repose {
namespace {

void check_series(const at::Tensor& t, const char* name, const at::Tensor& pred) {
  TORCH_CHECK(t.is_cuda(), "repose::rank_hinge (cuda): ", name, " must be a CUDA tensor; got ", t.device());
  TORCH_CHECK(t.device() == pred.device(), "repose::rank_hinge (cuda): ", name, " must be on pred's device ",
              pred.device(), "; got ", t.device());
  TORCH_CHECK(t.dim() == 2, "repose::rank_hinge: ", name, " must have shape (S, N); got ", t.sizes());
  TORCH_CHECK(t.sizes() == pred.sizes(), "repose::rank_hinge: ", name, " must have the shape of pred ",
              pred.sizes(), "; got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == pred.scalar_type(), "repose::rank_hinge: ", name, " must have dtype ",
              pred.scalar_type(), " like pred; got ", t.scalar_type());
  TORCH_CHECK(t.is_contiguous(), "repose::rank_hinge: ", name, " must be contiguous");
}

template <typename scalar_t>
void launch(const at::Tensor& pred, const at::Tensor& gt, const std::optional<at::Tensor>& weight, double margin,
            int64_t window, bool need_active, at::Tensor& stats, at::Tensor* grad, at::Tensor& workspace,
            cudaStream_t stream) {
  C10_CUDA_CHECK(cuda::launch_rank_hinge<scalar_t>(
      pred.const_data_ptr<scalar_t>(), gt.const_data_ptr<scalar_t>(),
      weight.has_value() ? weight->const_data_ptr<scalar_t>() : nullptr, pred.size(0), pred.size(1),
      static_cast<scalar_t>(margin), window, need_active, stats.mutable_data_ptr<scalar_t>(),
      grad != nullptr ? grad->mutable_data_ptr<scalar_t>() : nullptr, workspace.mutable_data_ptr(), stream));
}

std::tuple<at::Tensor, at::Tensor> rank_hinge_cuda(const at::Tensor& pred, const at::Tensor& gt,
                                                   const std::optional<at::Tensor>& weight, double margin,
                                                   int64_t window, bool need_grad, bool need_active) {
  TORCH_CHECK(pred.scalar_type() == at::kFloat || pred.scalar_type() == at::kDouble,
              "repose::rank_hinge (cuda): pred must be float32 or float64; got ", pred.scalar_type());
  check_series(pred, "pred", pred);
  check_series(gt, "gt", pred);
  if (weight.has_value()) check_series(*weight, "weight", pred);
  TORCH_CHECK(window >= -1, "repose::rank_hinge: window must be -1 (all pairs) or >= 0; got ", window);

  const c10::cuda::CUDAGuard guard(pred.device());
  const int64_t S = pred.size(0), N = pred.size(1);
  at::Tensor stats = at::empty({S, 2}, pred.options());
  at::Tensor grad = need_grad ? at::empty({S, N}, pred.options()) : at::empty({0}, pred.options());
  if (S == 0 || N == 0) {
    stats.zero_();
    grad.zero_();
    return {stats, grad};
  }
  at::Tensor workspace = at::empty(
      {static_cast<int64_t>(cuda::rank_hinge_workspace_bytes(S, N, pred.element_size()))},
      pred.options().dtype(at::kByte));
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream(pred.device().index()).stream();
  at::Tensor* grad_out = need_grad ? &grad : nullptr;
  if (pred.scalar_type() == at::kFloat) {
    launch<float>(pred, gt, weight, margin, window, need_active, stats, grad_out, workspace, stream);
  } else {
    launch<double>(pred, gt, weight, margin, window, need_active, stats, grad_out, workspace, stream);
  }
  return {stats, grad};
}

}  // namespace

TORCH_LIBRARY_IMPL(repose, CUDA, m) { m.impl("rank_hinge", &rank_hinge_cuda); }

}  // namespace repose
