// Op schemas of the RePOSE rank losses, declared once for every device.
//
// repose::depth_rank_loss is the op of the public API on every device: its CPU kernel is in cpu/, its CUDA
// kernel in cuda/, and the Triton backend registers repose::depth_rank_loss_triton with this same schema
// (repose_ext/_triton.py reads it from here). The fake implementation and the autograd formula are
// registered from Python, once for all of them (repose_ext/_ops.py).
//
// It computes both terms of the RePOSE loss straight from the poses, reduced: pred and gt are (B, T, J, 3)
// poses (depth = channel 2) or (B, T, J) depths, any strides; weight is (B, T, J) or None. Its series are the
// J joints of each frame (spatial) and, with `window` (-1: all pairs), the T frames of each joint (temporal).
// For every ordered pair (k, l) of a series whose ground truth puts k nearer (gt[k] < gt[l]) it adds
// w[k] * w[l] * relu(pred[k] - pred[l] + margin); see repose_ext/reference.py. A term is on when its scale,
// (B,) float64 per-sample factors, is given. Returns
//   loss   (B,):   sum over the terms that are on of scale[b] * (hinge sum of sample b),
//   active (B, 2): the weighted active-pair counts of each term (zeros unless need_active),
//   grad:          d loss.sum() / d pred in pred's shape (zeros in channels 0 and 1 of
//                  poses), or (0,) unless need_grad; backward weighs it per sample.
//
// The series ops are CPU only, for tests and benchmarks of the CPU algorithms one series at a time.
// repose::rank_hinge takes a (S, N) matrix whose row s holds the depths of one ranking problem and returns
//   stats (S, 2): [:, 0] the weighted hinge sum of each series,
//                 [:, 1] the weighted count of active pairs (zeros unless need_active);
//   grad  (S, N): d stats[:, 0] / d pred (shape (0,) unless need_grad).

#include <Python.h>
#include <torch/library.h>

extern "C" {
// Importing repose_ext._C runs the static registrations below; no Python bindings.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(repose, m) {
  m.def(
      "rank_hinge(Tensor pred, Tensor gt, Tensor? weight, float margin, int window, "
      "bool need_grad, bool need_active) -> (Tensor stats, Tensor grad)");
  // The same computation with the algorithm fixed (CPU only; rank_hinge picks one):
  // the O(N^2) pair loop, and the exact O(N log N) sorted sweep (which runs the dense
  // band when window >= 0 is shorter than the series).
  m.def(
      "rank_hinge_dense(Tensor pred, Tensor gt, Tensor? weight, float margin, int window, "
      "bool need_grad, bool need_active) -> (Tensor stats, Tensor grad)");
  m.def(
      "rank_hinge_sorted(Tensor pred, Tensor gt, Tensor? weight, float margin, int window, "
      "bool need_grad, bool need_active) -> (Tensor stats, Tensor grad)");
  m.def(
      "depth_rank_loss(Tensor pred, Tensor gt, Tensor? weight, float margin, int window, Tensor? spatial_scale, "
      "Tensor? temporal_scale, bool need_grad, bool need_active) -> (Tensor loss, Tensor active, Tensor grad)");
  // The CPU crossover: the shortest series (no window) that rank_hinge computes with the sorted sweep, for the
  // dense kernels' instruction set isa (0 base, 1 AVX2, 2 AVX-512), without or with weights. Read by Python
  // (repose_ext/_cpu.py) instead of a copy of the table.
  m.def("cpu_sorted_min_n(int isa, bool weighted) -> int");
}
