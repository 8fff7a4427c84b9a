"""Pose datasets as fixed-length clips in one sample contract, joint conventions, normalisation and flipping.

Loaders (each returns a :class:`ClipDataset`):

* :func:`load_h36m_motionbert` - MotionBERT's ``h36m_sh_conf_cam_source_final.pkl`` (SH detections + confidence).
* :func:`load_videopose3d` - VideoPose3D's ``data_3d_h36m.npz`` + ``data_2d_h36m_cpn_ft_h36m_dbb.npz`` / ``_gt.npz``.
* :func:`load_mpi_inf_3dhp` - P-STMO's ``data_train_3dhp.npz`` / ``data_test_3dhp.npz``.

A sample is a dict: ``input`` float32 (T, 17, 3) = normalised x, y and confidence; ``target`` float32 (T, 17, 3)
= normalised x, y, z (2.5D); ``factor`` float32 (T,) mm per px; ``res`` float32 (2,) = (width, height);
``source`` str; ``action`` str; ``frames`` int64 (T,); optionally ``valid`` bool (T,) and ``occluded`` bool
(T, 17). Millimetres: :func:`normalized_to_millimetres`. Flip augmentation: :func:`flip_clip` /
:func:`random_flip` with ``dataset.skeleton.left`` / ``.right``.
"""

from .camera import H36MCamera, camera_to_2_5d, camera_to_world, h36m_camera, world_to_camera
from .clips import ClipDataset, flip_clip, flip_pose, random_flip, resample_indices, split_clips
from .errors import DataFormatError
from .h36m_motionbert import load_h36m_motionbert, read_h36m_motionbert
from .mpi_inf_3dhp import load_mpi_inf_3dhp, read_mpi_inf_3dhp
from .normalization import denormalize_image_coordinates, normalize_image_coordinates, normalized_to_millimetres
from .skeleton import H36M_SKELETON, MPI_INF_3DHP_SKELETON, Skeleton
from .videopose3d import load_videopose3d, read_videopose3d

__all__ = [
    "H36MCamera",
    "H36M_SKELETON",
    "MPI_INF_3DHP_SKELETON",
    "ClipDataset",
    "DataFormatError",
    "Skeleton",
    "camera_to_2_5d",
    "camera_to_world",
    "denormalize_image_coordinates",
    "flip_clip",
    "flip_pose",
    "h36m_camera",
    "load_h36m_motionbert",
    "load_mpi_inf_3dhp",
    "load_videopose3d",
    "normalize_image_coordinates",
    "normalized_to_millimetres",
    "random_flip",
    "read_h36m_motionbert",
    "read_mpi_inf_3dhp",
    "read_videopose3d",
    "resample_indices",
    "split_clips",
    "world_to_camera",
]
