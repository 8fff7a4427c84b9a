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
// repose::depth_rank_hinge computes both terms of the RePOSE loss straight from the
// poses (CPU): pred and gt are (B, T, J, 3) poses (depth = channel 2) or (B, T, J)
// depths, any strides; weight is (B, T, J) or None. Its series are the J joints of
// each frame (spatial) and, with `window`, the T frames of each joint (temporal). For
// each term that is on it returns the stats of rank_hinge summed over each sample,
// (B, 2), and the gradient it saves for backward: d stats[b, 0] / d pred_z as
// spatial and temporal (B, T, J). A term that is off, or a gradient that is not
// needed, comes back empty ((0, 2), (0,)).
// repose::depth_rank_hinge_backward turns the upstream gradients of the two stats into
// d loss / d pred in one pass: (B, T, J, 3) with zeros in channels 0 and 1 when `pose`,
// else (B, T, J).
//
// The device implementations live in cpu/ and cuda/; the autograd formulas and the
// fake (meta) implementations are registered from Python (repose_ext/_ops.py).

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
      "depth_rank_hinge(Tensor pred, Tensor gt, Tensor? weight, float margin, int window, bool spatial, "
      "bool temporal, bool need_grad, bool need_active) -> (Tensor spatial_stats, Tensor temporal_stats, "
      "Tensor spatial_grad, Tensor temporal_grad)");
  m.def(
      "depth_rank_hinge_backward(Tensor? grad_spatial_stats, Tensor? grad_temporal_stats, Tensor spatial_grad, "
      "Tensor temporal_grad, bool pose) -> Tensor");
}
