"""Joint conventions: the Human3.6M 17-joint skeleton and the MPI-INF-3DHP 17-joint skeleton.

Facts (joint orders, parents, left/right lists, the 32->17 selection and the H36M<->3DHP map) come from
VideoPose3D (``common/h36m_dataset.py``, ``keypoints_symmetry``), MotionBERT (``flip_data``) and
MotionAGFormer/P-STMO (``data/const.py``); see the credits in the README.

H36M-17 (used by VideoPose3D, MotionBERT, RePOSE, MotionAGFormer), index: name (parent)::

    0 pelvis (-1)        6 left_ankle (5)      12 left_elbow (11)
    1 right_hip (0)      7 spine (0)           13 left_wrist (12)
    2 right_knee (1)     8 thorax (7)          14 right_shoulder (8)
    3 right_ankle (2)    9 nose (8)            15 right_elbow (14)
    4 left_hip (0)       10 head_top (9)       16 right_wrist (15)
    5 left_knee (4)      11 left_shoulder (8)

MPI-INF-3DHP-17 (the official "relevant" joints, CPM order), root = 14 (pelvis)::

    0 head_top  1 neck  2 right_shoulder  3 right_elbow  4 right_wrist  5 left_shoulder  6 left_elbow
    7 left_wrist  8 right_hip  9 right_knee  10 right_ankle  11 left_hip  12 left_knee  13 left_ankle
    14 pelvis  15 spine  16 head

A flip mirrors a pose about the vertical image axis: negate x of image-centred (normalised) coordinates and
swap the joints of ``left`` with those of ``right`` (see :func:`repose_ext.data.clips.flip_pose`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

__all__ = [
    "H36M_32_TO_17",
    "H36M_JOINT_NAMES",
    "H36M_LEFT",
    "H36M_LIMBS",
    "H36M_PARENTS",
    "H36M_RIGHT",
    "H36M_SKELETON",
    "H36M_TO_MPI_INF_3DHP",
    "MPI_INF_3DHP_28_TO_17",
    "MPI_INF_3DHP_JOINT_NAMES",
    "MPI_INF_3DHP_LEFT",
    "MPI_INF_3DHP_LIMBS",
    "MPI_INF_3DHP_PARENTS",
    "MPI_INF_3DHP_RIGHT",
    "MPI_INF_3DHP_ROOT",
    "MPI_INF_3DHP_SKELETON",
    "MPI_INF_3DHP_TO_H36M",
    "Skeleton",
]


@dataclass(frozen=True)
class Skeleton:
    """A 17-joint layout: names, tree, root and the left/right lists used by flipping.

    Attributes:
        name: Short identifier (``"h36m"`` or ``"mpi_inf_3dhp"``).
        joint_names: Name of each joint, in order.
        parents: Parent index of each joint (-1 for the root).
        root: Index of the root (pelvis) joint.
        left: Joints on the subject's left side; ``left[k]`` is the mirror of ``right[k]``.
        right: Joints on the subject's right side.
        limbs: (parent, child) bone pairs.
    """

    name: str
    joint_names: Tuple[str, ...]
    parents: Tuple[int, ...]
    root: int
    left: Tuple[int, ...]
    right: Tuple[int, ...]
    limbs: Tuple[Tuple[int, int], ...]

    @property
    def num_joints(self) -> int:
        """Number of joints (17 for both bundled skeletons)."""
        return len(self.joint_names)

    @property
    def flip_permutation(self) -> Tuple[int, ...]:
        """Joint permutation of a flip: ``flipped[..., j, :] = pose[..., flip_permutation[j], :]``."""
        perm = list(range(self.num_joints))
        for a, b in zip(self.left, self.right):
            perm[a], perm[b] = b, a
        return tuple(perm)


# --- Human3.6M, 17 joints -------------------------------------------------------------------------------------
H36M_JOINT_NAMES: Tuple[str, ...] = (
    "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "spine", "thorax", "nose", "head_top", "left_shoulder", "left_elbow", "left_wrist",
    "right_shoulder", "right_elbow", "right_wrist",
)  # fmt: skip
H36M_PARENTS: Tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
H36M_LEFT: Tuple[int, ...] = (4, 5, 6, 11, 12, 13)
H36M_RIGHT: Tuple[int, ...] = (1, 2, 3, 14, 15, 16)
# The 16 (parent, child) limbs of MotionBERT's limb / angle losses.
H36M_LIMBS: Tuple[Tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8),
    (8, 9), (9, 10), (8, 11), (11, 12), (12, 13), (8, 14), (14, 15), (15, 16),
)  # fmt: skip
# Indices kept from the 32-joint Human3.6M mocap skeleton (VideoPose3D ``remove_joints``); after the
# removal the parents of the shoulders (new 11 and 14) are the thorax (8), as in H36M_PARENTS.
H36M_32_TO_17: Tuple[int, ...] = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)

H36M_SKELETON = Skeleton(
    name="h36m",
    joint_names=H36M_JOINT_NAMES,
    parents=H36M_PARENTS,
    root=0,
    left=H36M_LEFT,
    right=H36M_RIGHT,
    limbs=H36M_LIMBS,
)

# --- MPI-INF-3DHP, 17 joints -------------------------------------------------------------------------------------
MPI_INF_3DHP_JOINT_NAMES: Tuple[str, ...] = (
    "head_top", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "pelvis", "spine", "head",
)  # fmt: skip
MPI_INF_3DHP_ROOT = 14
# Tree of the H36M skeleton carried through H36M_TO_MPI_INF_3DHP (head_top hangs from head, head from neck).
MPI_INF_3DHP_PARENTS: Tuple[int, ...] = (16, 15, 1, 2, 3, 1, 5, 6, 14, 8, 9, 14, 11, 12, -1, 14, 1)
MPI_INF_3DHP_LEFT: Tuple[int, ...] = (5, 6, 7, 11, 12, 13)
MPI_INF_3DHP_RIGHT: Tuple[int, ...] = (2, 3, 4, 8, 9, 10)
# H36M_LIMBS carried through H36M_TO_MPI_INF_3DHP, in the same order.
MPI_INF_3DHP_LIMBS: Tuple[Tuple[int, int], ...] = (
    (14, 8), (8, 9), (9, 10), (14, 11), (11, 12), (12, 13), (14, 15), (15, 1),
    (1, 16), (16, 0), (1, 5), (5, 6), (6, 7), (1, 2), (2, 3), (3, 4),
)  # fmt: skip
# 0-based selection of the 17 joints from the 28-joint "all" list of the 3DHP annotations (P-STMO). The npz
# files already hold the 17 joints; kept here for users converting the raw .mat annotations.
MPI_INF_3DHP_28_TO_17: Tuple[int, ...] = (7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19, 20, 4, 3, 6)

# H36M joint i corresponds to 3DHP joint H36M_TO_MPI_INF_3DHP[i] (MotionAGFormer data/const.py). To express a
# 3DHP pose in H36M order: ``pose_h36m = pose_3dhp[..., H36M_TO_MPI_INF_3DHP, :]``.
H36M_TO_MPI_INF_3DHP: Tuple[int, ...] = (14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4)
# The inverse map: 3DHP joint k corresponds to H36M joint MPI_INF_3DHP_TO_H36M[k];
# ``pose_3dhp = pose_h36m[..., MPI_INF_3DHP_TO_H36M, :]``.
MPI_INF_3DHP_TO_H36M: Tuple[int, ...] = tuple(
    H36M_TO_MPI_INF_3DHP.index(k) for k in range(len(H36M_TO_MPI_INF_3DHP))
)

MPI_INF_3DHP_SKELETON = Skeleton(
    name="mpi_inf_3dhp",
    joint_names=MPI_INF_3DHP_JOINT_NAMES,
    parents=MPI_INF_3DHP_PARENTS,
    root=MPI_INF_3DHP_ROOT,
    left=MPI_INF_3DHP_LEFT,
    right=MPI_INF_3DHP_RIGHT,
    limbs=MPI_INF_3DHP_LIMBS,
)
