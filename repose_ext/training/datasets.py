"""Build the training and evaluation datasets named by a run configuration.

Each dataset of :mod:`repose_ext.data` returns clips in the same sample contract (see :mod:`repose_ext.data`); this
module only maps the ``data`` section of a configuration to the right loader call:

=================== ============================================== ==================================================
``data.dataset``    ``data.files``                                 split
=================== ============================================== ==================================================
``synthetic_views`` (none: the embedded mocap clips)               by clip: 12 training actions, 3 held-out actions
``mocap_augmented`` (none: the embedded mocap clips, augmented)     as above; also the wild split (extra tests)
``h36m_motionbert`` ``pickle``: ``h36m_sh_conf_cam_source_final``  the pickle's ``train`` / ``test``
``videopose3d``     ``positions_3d``, ``positions_2d`` (npz)       S1 S5 S6 S7 S8 / S9 S11
``mpi_inf_3dhp``    ``train``, ``test`` (P-STMO npz)               training sequences / TS1-TS6
=================== ============================================== ==================================================

``data.options`` holds further keyword arguments of the loader (e.g. ``use_gt_2d: true`` for the H36M pickle,
``joint_order: h36m`` for 3DHP, camera or occlusion settings for the embedded data).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

from torch.utils.data import Dataset

from .config import ConfigError

#: Evaluation protocol of each dataset: "h36m" (MotionBERT's per-action protocol in mm, plus the extra metrics) or
#: "mpi_inf_3dhp" (valid frames only, PCK@150 mm and AUC on 14 joints, MPJPE on 17, per sequence).
PROTOCOLS = {
    "synthetic_views": "h36m",
    "mocap_augmented": "h36m",
    "h36m_motionbert": "h36m",
    "videopose3d": "h36m",
    "mpi_inf_3dhp": "mpi_inf_3dhp",
}

_REQUIRED_FILES = {
    "synthetic_views": (),
    "mocap_augmented": (),
    "h36m_motionbert": ("pickle",),
    "videopose3d": ("positions_3d", "positions_2d"),
    "mpi_inf_3dhp": ("train", "test"),
}


@dataclass
class DataBundle:
    """The datasets of one run.

    Attributes:
        train: training clips (None in evaluation-only mode).
        test: evaluation clips.
        skeleton: joint layout (flip lists, root) shared by both.
        protocol: "h36m" or "mpi_inf_3dhp" (see :data:`PROTOCOLS`).
        extra_tests: further evaluation splits by name (the wild split of ``mocap_augmented``), scored after
            training.
        test_name: the name of ``test`` in the table of every split.
    """

    train: Optional[Dataset]
    test: Dataset
    skeleton: Any
    protocol: str
    extra_tests: Dict[str, Dataset] = field(default_factory=dict)
    test_name: str = "test"


def input_norm(config: Mapping[str, Any]) -> str:
    """The input normalisation a configuration trains with: "pose" (camera-free,
    :func:`repose_ext.data.normalization.normalize_keypoints`) for ``mocap_augmented``, else "image"."""
    data = config.get("data") or {}
    return "pose" if data.get("dataset") == "mocap_augmented" else "image"


def pose_scale_frames(config: Mapping[str, Any]) -> int:
    """The ``scale_frames`` of :func:`repose_ext.data.normalization.normalize_keypoints` that a configuration
    with the "pose" input trains with: ``data.options.scale_frames``, default 1 (each frame its own size)."""
    data = config.get("data") or {}
    return (data.get("options") or {}).get("scale_frames", 1)


def _files(config: Mapping[str, Any], need_train: bool) -> Dict[str, str]:
    data = config["data"]
    name = data["dataset"]
    files = dict(data["files"])
    needed = [k for k in _REQUIRED_FILES[name] if need_train or not (name == "mpi_inf_3dhp" and k == "train")]
    missing = [k for k in needed if not files.get(k)]
    if missing:
        example = " ".join(f"data.files.{k}=/path/to/file" for k in missing)
        raise ConfigError(
            f"data.dataset {name!r} needs data.files.{missing[0]} (files: {list(_REQUIRED_FILES[name])}); "
            f"set it in the YAML file or on the command line, e.g. `{example}`"
        )
    for key in needed:
        if not os.path.isfile(files[key]):
            raise FileNotFoundError(f"data.files.{key} does not exist: {files[key]}")
    return files


def _stride_kwargs(data: Mapping[str, Any], split: str) -> Dict[str, Any]:
    stride = data["train_stride"] if split == "train" else data["test_stride"]
    return {} if stride is None else {"stride": stride}


def build_datasets(config: Mapping[str, Any], need_train: bool = True) -> DataBundle:
    """Load the datasets named by ``config["data"]``.

    Args:
        config: a validated run configuration.
        need_train: also build the training split (False for ``--eval-only``).

    Returns:
        A :class:`DataBundle`.

    Raises:
        ConfigError: a required file path is not configured.
        FileNotFoundError: a configured file does not exist.
    """
    data = config["data"]
    name = data["dataset"]
    files = _files(config, need_train)
    options = dict(data["options"])
    n_frames = data["n_frames"]
    train = None
    extra: Dict[str, Dataset] = {}
    test_name = "test"

    if name == "synthetic_views":
        from ..data.synthetic_views import SyntheticViewsDataset

        # The data's own seed (cameras, noise, occluders) is data.options.seed (default 0), not the run's seed:
        # runs with different seeds see the same data.
        if need_train:
            train = SyntheticViewsDataset("train", n_frames, **_stride_kwargs(data, "train"), **options)
        test = SyntheticViewsDataset("test", n_frames, **_stride_kwargs(data, "test"), **options)
    elif name == "mocap_augmented":
        from ..data.augment import VALIDATION_CLIPS, AugmentedMocapDataset, wild_views
        from ..data.normalization import check_scale_frames
        from ..data.synthetic_views import TRAIN_CLIPS, SyntheticViewsDataset

        # data.options: epoch_size (samples per epoch), seed (the data's), augment (AugmentConfig settings),
        # wild_draws (people and cameras per held-out clip in the wild split), holdout ("test": train on the 12
        # training clips, score the 3 test actions; "validation": train on 9 of them and score the other 3 as
        # other people and cameras, for choosing settings without looking at the test actions), scale_frames (of
        # the input normalisation, repose_ext.data.normalization.normalize_keypoints).
        known = {"epoch_size", "seed", "augment", "wild_draws", "holdout", "scale_frames"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(f"data.options {unknown} unknown for mocap_augmented; expected a subset of "
                              f"{sorted(known)}")
        holdout = options.get("holdout", "test")
        if holdout not in ("test", "validation"):
            raise ConfigError(f"data.options.holdout must be 'test' or 'validation'; got {holdout!r}")
        seed = options.get("seed", 0)
        draws = options.get("wild_draws", 8)
        try:
            scale = check_scale_frames(pose_scale_frames(config))
        except ValueError as exc:
            raise ConfigError(f"data.options: {exc}") from None
        train_clips = TRAIN_CLIPS if holdout == "test" else tuple(c for c in TRAIN_CLIPS if c not in VALIDATION_CLIPS)
        if need_train:
            try:
                train = AugmentedMocapDataset(n_frames, epoch_size=options.get("epoch_size", 4096), seed=seed,
                                              augment=options.get("augment"), clips=train_clips,
                                              scale_frames=scale)
            except ValueError as exc:  # a bad epoch_size, seed or augmentation setting
                raise ConfigError(f"data.options: {exc}") from None
        if holdout == "test":
            test = SyntheticViewsDataset("test", n_frames, **_stride_kwargs(data, "test"), seed=seed,
                                         input_norm="pose", scale_frames=scale)
            extra = {f"wild_{kind}": wild_views(n_frames, data["test_stride"], noisy=kind == "noisy", draws=draws,
                                                scale_frames=scale)
                     for kind in ("clean", "noisy")}
            test_name = "studio"
        else:
            test, noisy = (wild_views(n_frames, data["test_stride"], noisy=noisy, clips=VALIDATION_CLIPS, draws=draws,
                                      scale_frames=scale)
                           for noisy in (False, True))
            extra, test_name = {"val_noisy": noisy}, "val_clean"
    elif name == "h36m_motionbert":
        from ..data import load_h36m_motionbert, read_h36m_motionbert

        raw = read_h36m_motionbert(files["pickle"])  # read once, sliced twice
        if need_train:
            train = load_h36m_motionbert(raw, "train", n_frames=n_frames, **_stride_kwargs(data, "train"), **options)
        test = load_h36m_motionbert(raw, "test", n_frames=n_frames, **_stride_kwargs(data, "test"), **options)
    elif name == "videopose3d":
        from ..data import load_videopose3d, read_videopose3d

        positions_3d, positions_2d = read_videopose3d(files["positions_3d"], files["positions_2d"])
        p3, p2 = {"positions_3d": positions_3d}, {"positions_2d": positions_2d}
        if need_train:
            train = load_videopose3d(p3, p2, "train", n_frames=n_frames, **_stride_kwargs(data, "train"), **options)
        test = load_videopose3d(p3, p2, "test", n_frames=n_frames, **_stride_kwargs(data, "test"), **options)
    elif name == "mpi_inf_3dhp":
        from ..data import load_mpi_inf_3dhp

        if need_train:
            train = load_mpi_inf_3dhp(files["train"], "train", n_frames=n_frames, **_stride_kwargs(data, "train"),
                                      **options)
        test = load_mpi_inf_3dhp(files["test"], "test", n_frames=n_frames, **_stride_kwargs(data, "test"), **options)
    else:  # validate() rejects other names; kept for direct callers
        raise ConfigError(f"data.dataset must be one of {sorted(PROTOCOLS)}; got {name!r}")

    if train is not None and len(train) == 0:
        raise ValueError(f"the training split of {name!r} has no clip of {n_frames} frames")
    if len(test) == 0:
        raise ValueError(f"the evaluation split of {name!r} has no clip of {n_frames} frames")
    skeleton = test.skeleton
    if train is not None and train.skeleton != skeleton:
        raise ValueError(f"train and test skeletons differ: {train.skeleton.name} vs {skeleton.name}")
    return DataBundle(train=train, test=test, skeleton=skeleton, protocol=PROTOCOLS[name], extra_tests=extra,
                      test_name=test_name)
