// Op schemas of the RePOSE rank losses, declared once for every device.
//
// repose::rank_hinge works on "series": rows of a (S, N) matrix. Row s holds the
// predicted depths of one ranking problem (the J joints of one frame for the
// spatial term, the T frames of one joint for the temporal term). For every ordered
// pair (k, l) of one series whose ground truth puts k nearer (gt[k] < gt[l]) it adds
// w[k] * w[l] * relu(pred[k] - pred[l] + margin). See repose_ext/reference.py.
//
// Returns
//   stats (S, 2): [:, 0] the weighted hinge sum of each series,
//                 [:, 1] the weighted count of active pairs (zeros unless need_active);
//   grad  (S, N): d stats[:, 0] / d pred (shape (0,) unless need_grad).
//
// The device implementations live in cpu/ and cuda/; the autograd formula and the
// fake (meta) implementation are registered from Python (repose_ext/_ops.py).

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
}
