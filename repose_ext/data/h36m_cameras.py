"""The Human3.6M camera table: intrinsics (shared by all subjects) and per-subject extrinsics, as data.

Values are those published with Human3.6M and copied into VideoPose3D ``common/h36m_dataset.py``, as quoted
(rounded) in the project specification §4b: intrinsics to 4 decimals (pixels), quaternions to 6 decimals,
translations to 3 decimals (mm). The rounding moves a projected point by well under 0.01 px.

Conventions: ``orientation`` is the camera-to-world rotation as a quaternion (w, x, y, z); ``translation_mm``
is the camera centre in world coordinates, in millimetres. Hence ``X_world = rot(q, X_cam) + t`` and
``X_cam = rot(q^-1, X_world - t)`` (see :mod:`repose_ext.data.camera`). Camera index k (0..3) is the
position of the camera id in :data:`H36M_CAMERA_IDS`; it is also the list index of the cameras in
VideoPose3D's 2D files. Subjects S2, S3 and S4 have no published extrinsics.
"""

from __future__ import annotations

from typing import Dict, Tuple

__all__ = [
    "H36M_CAMERA_EXTRINSICS",
    "H36M_CAMERA_IDS",
    "H36M_CAMERA_INTRINSICS",
    "H36M_CAMERA_RESOLUTION",
]

H36M_CAMERA_IDS: Tuple[str, ...] = ("54138969", "55011271", "58860488", "60457274")

# Image size (width, height) in pixels.
H36M_CAMERA_RESOLUTION: Dict[str, Tuple[int, int]] = {
    "54138969": (1000, 1002),
    "55011271": (1000, 1000),
    "58860488": (1000, 1000),
    "60457274": (1000, 1002),
}

# Pinhole intrinsics in pixels and the (unused by the loaders) Brown-Conrady distortion coefficients.
H36M_CAMERA_INTRINSICS: Dict[str, Dict[str, Tuple[float, ...]]] = {
    "54138969": {
        "focal_length": (1145.0494, 1143.7811),
        "center": (512.5415, 515.4515),
        "radial_distortion": (-0.207099, 0.247775, -0.003075),
        "tangential_distortion": (-0.000976, -0.001424),
    },
    "55011271": {
        "focal_length": (1149.6757, 1147.5917),
        "center": (508.8486, 508.0649),
        "radial_distortion": (-0.194214, 0.240409, 0.006820),
        "tangential_distortion": (-0.001619, -0.002741),
    },
    "58860488": {
        "focal_length": (1149.1408, 1148.7990),
        "center": (519.8159, 501.4026),
        "radial_distortion": (-0.208338, 0.255488, -0.002460),
        "tangential_distortion": (0.001484, -0.000760),
    },
    "60457274": {
        "focal_length": (1145.5114, 1144.7739),
        "center": (514.9682, 501.8820),
        "radial_distortion": (-0.198384, 0.218324, -0.008948),
        "tangential_distortion": (-0.000587, -0.001813),
    },
}

# subject -> 4 cameras (index order of H36M_CAMERA_IDS) -> (orientation (w, x, y, z), translation in mm).
H36M_CAMERA_EXTRINSICS: Dict[str, Tuple[Tuple[Tuple[float, ...], Tuple[float, ...]], ...]] = {
    "S1": (
        ((0.140706, -0.150070, -0.755241, 0.622328), (1841.107, 4955.285, 1563.445)),
        ((0.615719, -0.764836, -0.148338, 0.117947), (1761.279, -5078.007, 1606.265)),
        ((0.146515, -0.146479, 0.765302, -0.609418), (-1846.778, 5215.046, 1491.972)),
        ((0.583401, -0.785316, 0.145488, -0.147496), (-1794.790, -3722.699, 1574.893)),
    ),
    "S5": (
        ((0.146738, -0.162371, -0.755189, 0.617894), (2097.392, 4880.945, 1605.732)),
        ((0.615976, -0.762679, -0.157282, 0.118982), (2031.701, -5167.933, 1612.923)),
        ((0.142914, -0.129078, 0.767838, -0.611014), (-1620.595, 5171.659, 1496.437)),
        ((0.592048, -0.781422, 0.127475, -0.150364), (-1637.174, -3867.317, 1547.033)),
    ),
    "S6": (
        ((0.133790, -0.156924, -0.757109, 0.619888), (1935.452, 4950.246, 1618.084)),
        ((0.614720, -0.762881, -0.161748, 0.118192), (1969.804, -5128.739, 1632.779)),
        ((0.152995, -0.135291, 0.764610, -0.611278), (-1769.596, 5185.361, 1476.993)),
        ((0.591610, -0.780477, 0.128323, -0.156159), (-1721.669, -3884.131, 1540.488)),
    ),
    "S7": (
        ((0.143524, -0.163134, -0.754833, 0.618882), (1974.513, 4926.354, 1597.833)),
        ((0.614167, -0.763826, -0.159665, 0.117793), (1937.058, -5119.790, 1631.567)),
        ((0.145501, -0.128748, 0.766052, -0.612714), (-1741.811, 5208.250, 1464.825)),
        ((0.591285, -0.782176, 0.124455, -0.151965), (-1734.711, -3832.421, 1548.583)),
    ),
    "S8": (
        ((0.141106, -0.155899, -0.756192, 0.619644), (2150.652, 4896.161, 1611.905)),
        ((0.616960, -0.764767, -0.148464, 0.111582), (2219.966, -5148.453, 1613.044)),
        ((0.147144, -0.133771, 0.767013, -0.610037), (-1571.222, 5137.019, 1498.176)),
        ((0.592782, -0.782587, 0.121478, -0.146320), (-1476.913, -3896.741, 1547.972)),
    ),
    "S9": (
        ((0.155406, -0.155482, -0.753210, 0.619959), (2044.458, 4935.117, 1481.228)),
        ((0.618784, -0.763474, -0.141322, 0.119340), (1990.960, -5123.811, 1568.805)),
        ((0.133578, -0.136710, 0.768945, -0.610074), (-1670.992, 5211.986, 1528.388)),
        ((0.587940, -0.782341, 0.142761, -0.147949), (-1696.043, -3827.100, 1591.413)),
    ),
    "S11": (
        ((0.152325, -0.154423, -0.754756, 0.619107), (2098.440, 4926.555, 1500.279)),
        ((0.618945, -0.760092, -0.153006, 0.125526), (2083.182, -4912.173, 1561.079)),
        ((0.149432, -0.156502, 0.768123, -0.602630), (-1609.815, 5177.336, 1537.897)),
        ((0.589425, -0.781888, 0.139912, -0.147154), (-1590.738, -3854.169, 1578.018)),
    ),
}
