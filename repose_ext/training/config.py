"""Run configuration: the defaults, YAML files, ``key=value`` overrides and validation.

A configuration is a nested dict of plain Python data (it is stored inside every checkpoint). Every key has a
default in :data:`DEFAULTS`; a YAML file overrides some of them and command-line overrides
(``train.epochs=5 loss.spatial_rank=0.5``) come last. Unknown keys are errors, except inside the free-form
sections ``data.files``, ``data.options`` and ``model`` (the DSTformer arguments, checked when the model is built).

Sections (see ``configs/*.yaml`` for commented examples):

* ``data``: which dataset (``dataset``), its files, clip length and strides, root-relative targets.
* ``model``: a preset name of :data:`repose_ext.models.PRESETS` and DSTformer arguments.
* ``loss``: the weights of MPJPE, N-MPJPE, velocity and the two RePOSE rank terms, and the rank-loss backend.
* ``train``: optimiser, schedule, epochs, batch size, augmentation, AMP, logging cadence.
* ``eval``: flip test-time averaging, batch size, how often, which metric picks the "best" checkpoint.
"""

from __future__ import annotations

import copy
import math
import os
import re
from typing import Any, Dict, Iterable, Mapping, Optional

import yaml

#: Datasets the trainer can build (see :mod:`repose_ext.training.datasets`).
DATASETS = ("synthetic_views", "mocap_augmented", "h36m_motionbert", "videopose3d", "mpi_inf_3dhp")
#: Rank-loss backends: "fused" (the fastest fused kernel of the device; error if none is built), "auto" (fused if
#: available, else the reference), "reference" (plain PyTorch spec), "off" (rank terms skipped whatever their
#: weight), or any backend name of :func:`repose_ext.available_backends` ("cpu", "cuda", "triton").
RANK_BACKEND_CHOICES = ("fused", "auto", "reference", "off", "cpu", "cuda", "triton")
AMP_CHOICES = ("auto", "bf16", "fp16", "off")
DEVICE_CHOICES = ("auto", "cpu", "cuda")
SELECT_CHOICES = ("mpjpe", "p_mpjpe", "loss")
LR_SCHEDULES = ("epoch", "time")

# Sections whose content is free-form (checked by the code that consumes it).
_FREE_SECTIONS = ("data.files", "data.options", "model", "baseline")

DEFAULTS: Dict[str, Any] = {
    "name": "run",
    "seed": 0,
    "output_dir": "runs",
    "device": "auto",
    "num_threads": None,  # CPU threads of torch (None: torch's default, one per core)
    "data": {
        "dataset": "synthetic_views",
        "files": {},
        "options": {},
        "n_frames": 243,
        "train_stride": None,  # None: the loader's default (MotionBERT: 81 for H36M)
        "test_stride": None,  # None: the loader's default (MotionBERT: 243 for H36M)
        "rootrel": True,
        "num_workers": 0,
    },
    "model": {"preset": "repose"},
    # A same-budget reference lifter trained beside the model (training/baseline.py): null, or a model preset name
    # or mapping such as simple_baseline.
    "baseline": None,
    "loss": {
        "mpjpe": 1.0,
        "n_mpjpe": 0.5,
        "velocity": 20.0,
        "spatial_rank": 0.0,
        "temporal_rank": 0.0,
        "rank_backend": "fused",
        "rank_margin": 0.0,
        "temporal_window": None,
    },
    "train": {
        "epochs": 120,
        "batch_size": 32,
        "lr": 2e-4,
        "weight_decay": 0.01,
        "lr_decay": 0.99,
        # "epoch": lr times lr_decay after every epoch. "time": lr falls exponentially with wall time, to
        # lr * lr_final when train.time_budget_s runs out, so lifters of any speed anneal within the same budget.
        "lr_schedule": "epoch",
        "lr_final": 0.05,
        "flip_augment": True,
        "flip_p": 0.5,
        "grad_clip": None,
        # null, or d in (0, 1): evaluate and export an exponential moving average of the weights over about
        # 1 / (1 - d) steps, after a warm-up of about 9 / (1 - d) steps (training/weight_average.py)
        "ema_decay": None,
        # autocast of training: "auto" = bf16 (or fp16) on GPUs, bf16 on CPUs with bf16 instructions, else none
        "amp": "auto",
        "log_every": 50,
        "max_steps_per_epoch": None,
        "checkpoint_every": None,
        "time_budget_s": None,  # wall-clock budget of the run, resumes included (same-budget baselines); None: no limit
    },
    "eval": {
        "flip_test": True,
        "batch_size": 32,
        "every": 1,
        "select_best_on": "mpjpe",
        "max_clips": None,
        "depth_order_tolerance_mm": 0.0,
    },
}


class _Loader(yaml.SafeLoader):
    """YAML loader that also reads ``1e-3`` as a float (YAML 1.1 wants ``1.0e-3`` and otherwise gives a string)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                |\.[0-9_]+(?:[eE][-+][0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)
                |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def _load_yaml(text):
    return yaml.load(text, Loader=_Loader)


class ConfigError(ValueError):
    """A configuration file or override that cannot be used; the message names the key."""


def _is_free(path: str) -> bool:
    return any(path == f or path.startswith(f + ".") for f in _FREE_SECTIONS)


def merge(base: Mapping[str, Any], update: Mapping[str, Any], path: str = "") -> Dict[str, Any]:
    """Recursively merge ``update`` into a copy of ``base``, rejecting keys ``base`` does not have.

    Args:
        base: the configuration so far (defaults, or defaults + file).
        update: values to apply.
        path: dotted prefix of ``base`` (for error messages).

    Returns:
        A new nested dict.

    Raises:
        ConfigError: a key that is not in ``base`` outside the free-form sections, or a section given a scalar.
    """
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        key = str(key)
        full = f"{path}.{key}" if path else key
        if key not in out and not _is_free(full):
            raise ConfigError(f"unknown config key {full!r}; expected one of {sorted(out)}"
                              f"{' under ' + repr(path) if path else ''}")
        if isinstance(out.get(key), dict) and not _is_free(full):
            if not isinstance(value, Mapping):
                raise ConfigError(f"config key {full!r} must be a mapping (a section); got {value!r}")
            out[key] = merge(out[key], value, full)
        elif isinstance(out.get(key), dict) and isinstance(value, Mapping):
            # Free-form section: merged at every depth without key checks (everything under it is free), so
            # augment.window.p_reverse and then augment.splice.p keep both.
            out[key] = merge(out[key], value, full)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> Dict[str, Any]:
    """``"train.epochs=5"`` -> ``{"train": {"epochs": 5}}``; the value is parsed as YAML (``null``, ``1e-3``,
    ``[1, 2]``, ``true``), so strings need no quotes.

    Raises:
        ConfigError: the text has no ``=`` or an empty key.
    """
    if "=" not in text:
        raise ConfigError(f"override must look like key=value (e.g. train.epochs=5); got {text!r}")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override key must be a dotted name like train.epochs; got {key!r}")
    try:
        value = _load_yaml(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from None
    nested: Dict[str, Any] = {}
    node = nested
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return nested


def read_yaml(path: str) -> Dict[str, Any]:
    """The mapping stored in a YAML file (empty file: empty mapping)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = _load_yaml(f)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"config file {path} is not valid YAML{line}: {problem}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"config file {path} must hold a mapping at the top level; got {type(data).__name__}")
    return dict(data)


def load_config(path: Optional[str] = None, overrides: Iterable[str] = (),
                base: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """Build and validate a run configuration.

    Args:
        path: YAML file (None: defaults only). Its file name (without extension) becomes ``name`` unless the file
            sets one.
        overrides: ``key=value`` strings applied after the file.
        base: configuration to start from instead of :data:`DEFAULTS` (e.g. the one stored in a checkpoint).

    Returns:
        The validated nested dict.
    """
    config = _with_defaults(base) if base is not None else copy.deepcopy(DEFAULTS)
    if path is not None:
        from_file = read_yaml(path)
        from_file.setdefault("name", os.path.splitext(os.path.basename(path))[0])
        config = merge(config, from_file)
    for text in overrides:
        config = merge(config, parse_override(text))
    _normalise(config)
    validate(config)
    return config


def _with_defaults(base: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of ``base`` (e.g. a checkpoint's configuration from an older version) with the keys it lacks taken
    from :data:`DEFAULTS`."""
    config = copy.deepcopy(dict(base))
    for key, value in DEFAULTS.items():
        if key not in config:
            config[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(config[key], dict) and not _is_free(key):
            for sub, default in value.items():
                config[key].setdefault(sub, copy.deepcopy(default))
    return config


def _normalise(config: Dict[str, Any]) -> None:
    """YAML reads a bare ``off`` as False: map it back for the keys whose choices include "off"."""
    for section, key in (("train", "amp"), ("loss", "rank_backend")):
        if config.get(section, {}).get(key) is False:
            config[section][key] = "off"


def _check(cond: bool, key: str, expected: str, value: Any) -> None:
    if not cond:
        raise ConfigError(f"{key} must be {expected}; got {value!r}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    """A finite int or float (not a bool): no configured number may be infinite or NaN."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def validate(config: Mapping[str, Any]) -> None:
    """Check types and ranges of every known key.

    Raises:
        ConfigError: naming the key, what was expected and what came.
    """
    _check(_is_int(config["seed"]) and config["seed"] >= 0, "seed", "a non-negative int", config["seed"])
    _check(isinstance(config["name"], str) and config["name"] != "", "name", "a non-empty string", config["name"])
    _check(config["device"] in DEVICE_CHOICES, "device", f"one of {DEVICE_CHOICES}", config["device"])
    _check(config["num_threads"] is None or (_is_int(config["num_threads"]) and config["num_threads"] >= 1),
           "num_threads", "null or a positive int", config["num_threads"])
    d = config["data"]
    _check(d["dataset"] in DATASETS, "data.dataset", f"one of {DATASETS}", d["dataset"])
    _check(_is_int(d["n_frames"]) and d["n_frames"] >= 1, "data.n_frames", "a positive int", d["n_frames"])
    for key in ("train_stride", "test_stride"):
        v = d[key]
        _check(v is None or (_is_int(v) and v >= 1), f"data.{key}", "null or a positive int", v)
    _check(isinstance(d["rootrel"], bool), "data.rootrel", "true or false", d["rootrel"])
    _check(_is_int(d["num_workers"]) and d["num_workers"] >= 0, "data.num_workers", "an int >= 0", d["num_workers"])
    _check(isinstance(d["files"], Mapping), "data.files", "a mapping of file paths", d["files"])
    _check(isinstance(d["options"], Mapping), "data.options", "a mapping of loader arguments", d["options"])
    _check(isinstance(config["model"], (Mapping, str)), "model", "a preset name or a mapping", config["model"])
    b = config["baseline"]
    _check(b is None or (isinstance(b, str) and b != "") or isinstance(b, Mapping), "baseline",
           "null, a model preset name or a model mapping", b)
    from ..models.registry import lifter_config

    for key in ("model", "baseline"):  # unknown presets, architectures or arguments, named before any work
        if config[key] is not None:
            try:
                lifter_config(config[key])
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{key}: {exc}") from None

    lo = config["loss"]
    for key in ("mpjpe", "n_mpjpe", "velocity", "spatial_rank", "temporal_rank", "rank_margin"):
        _check(_is_num(lo[key]) and (key == "rank_margin" or lo[key] >= 0), f"loss.{key}",
               "a number" if key == "rank_margin" else "a number >= 0", lo[key])
    _check(lo["rank_backend"] in RANK_BACKEND_CHOICES, "loss.rank_backend", f"one of {RANK_BACKEND_CHOICES}",
           lo["rank_backend"])
    w = lo["temporal_window"]
    _check(w is None or (_is_int(w) and w >= 0), "loss.temporal_window", "null (all frame pairs) or an int >= 0", w)

    t = config["train"]
    _check(_is_int(t["epochs"]) and t["epochs"] >= 0, "train.epochs", "an int >= 0", t["epochs"])
    _check(_is_int(t["batch_size"]) and t["batch_size"] >= 1, "train.batch_size", "a positive int", t["batch_size"])
    _check(_is_num(t["lr"]) and t["lr"] > 0, "train.lr", "a number > 0", t["lr"])
    _check(_is_num(t["weight_decay"]) and t["weight_decay"] >= 0, "train.weight_decay", "a number >= 0",
           t["weight_decay"])
    _check(_is_num(t["lr_decay"]) and 0 < t["lr_decay"] <= 1, "train.lr_decay", "a number in (0, 1]", t["lr_decay"])
    _check(t["lr_schedule"] in LR_SCHEDULES, "train.lr_schedule", f"one of {LR_SCHEDULES}", t["lr_schedule"])
    _check(_is_num(t["lr_final"]) and 0 < t["lr_final"] <= 1, "train.lr_final", "a number in (0, 1]", t["lr_final"])
    _check(t["lr_schedule"] != "time" or t["time_budget_s"] is not None, "train.time_budget_s",
           "a number of seconds with train.lr_schedule=time (the schedule spans the budget)", t["time_budget_s"])
    _check(isinstance(t["flip_augment"], bool), "train.flip_augment", "true or false", t["flip_augment"])
    _check(_is_num(t["flip_p"]) and 0 <= t["flip_p"] <= 1, "train.flip_p", "a number in [0, 1]", t["flip_p"])
    _check(t["grad_clip"] is None or (_is_num(t["grad_clip"]) and t["grad_clip"] > 0), "train.grad_clip",
           "null or a number > 0", t["grad_clip"])
    _check(t["ema_decay"] is None or (_is_num(t["ema_decay"]) and 0 < t["ema_decay"] < 1), "train.ema_decay",
           "null or a number in (0, 1)", t["ema_decay"])
    _check(t["amp"] in AMP_CHOICES, "train.amp", f"one of {AMP_CHOICES}", t["amp"])
    _check(_is_int(t["log_every"]) and t["log_every"] >= 1, "train.log_every", "a positive int", t["log_every"])
    for key in ("max_steps_per_epoch", "checkpoint_every"):
        v = t[key]
        _check(v is None or (_is_int(v) and v >= 1), f"train.{key}", "null or a positive int", v)

    v = t["time_budget_s"]
    _check(v is None or (_is_num(v) and 0 < v < float("inf")), "train.time_budget_s", "null or a finite number > 0",
           v)

    e = config["eval"]
    _check(isinstance(e["flip_test"], bool), "eval.flip_test", "true or false", e["flip_test"])
    _check(_is_int(e["batch_size"]) and e["batch_size"] >= 1, "eval.batch_size", "a positive int", e["batch_size"])
    _check(_is_int(e["every"]) and e["every"] >= 0, "eval.every", "an int >= 0 (0: only after training)",
           e["every"])
    _check(e["select_best_on"] in SELECT_CHOICES, "eval.select_best_on", f"one of {SELECT_CHOICES}",
           e["select_best_on"])
    _check(e["max_clips"] is None or (_is_int(e["max_clips"]) and e["max_clips"] >= 1), "eval.max_clips",
           "null or a positive int", e["max_clips"])
    _check(_is_num(e["depth_order_tolerance_mm"]) and e["depth_order_tolerance_mm"] >= 0,
           "eval.depth_order_tolerance_mm", "a number >= 0", e["depth_order_tolerance_mm"])


def to_yaml(config: Mapping[str, Any]) -> str:
    """The configuration as YAML text (written to ``config.yaml`` in the run folder)."""
    return yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=False)
