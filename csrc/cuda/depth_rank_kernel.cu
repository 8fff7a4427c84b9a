// Launcher of the repose::depth_rank_loss CUDA kernel (the contract is in depth_rank_kernel.cuh, the
// device code in depth_rank_device.cuh).

#include "depth_rank_device.cuh"

namespace repose {
namespace cuda {

template <typename scalar_t>
cudaError_t launch_depth_rank_loss(const DepthRankProblem<scalar_t>& problem, cudaStream_t stream) {
  const int64_t blocks = problem.B * problem.blocks_per_sample();
  if (blocks == 0) return cudaSuccess;
  if (blocks >= (int64_t(1) << 31)) return cudaErrorInvalidConfiguration;
  depth_rank_loss_kernel<scalar_t><<<static_cast<unsigned int>(blocks), kThreads, 0, stream>>>(problem);
  return cudaGetLastError();
}

template cudaError_t launch_depth_rank_loss<float>(const DepthRankProblem<float>&, cudaStream_t);
template cudaError_t launch_depth_rank_loss<double>(const DepthRankProblem<double>&, cudaStream_t);

}  // namespace cuda
}  // namespace repose
