"""Build any lifter of the package from a preset name or a configuration mapping.

A configuration is a preset name (``"repose"``, ``"small"``, ``"simple_baseline"``, ``"tcn81"``, ...) or a mapping
with an optional ``"preset"`` base, an ``"arch"`` (``"dstformer"``, ``"simple_baseline"`` or ``"tcn"``; taken from
the preset when there is one, else ``"dstformer"``) and the architecture's keyword arguments, which override the
preset's. Checkpoints store this mapping, so a checkpoint rebuilds its own lifter.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Union

from torch import nn

from . import dstformer
from .baselines import SimpleBaseline, TemporalConvNet

__all__ = ["ARCHITECTURES", "LIFTER_PRESETS", "build_model", "lifter_config"]

#: arch name -> (class, accepted keyword arguments).
ARCHITECTURES = {
    "dstformer": (dstformer.DSTformer, dstformer._CONFIG_KEYS),
    "simple_baseline": (SimpleBaseline, ("num_joints", "dim_in", "dim_out", "width", "num_blocks", "dropout")),
    "tcn": (TemporalConvNet, ("num_joints", "dim_in", "dim_out", "filter_widths", "channels", "dropout",
                              "constant_bones")),
}

#: Presets of every architecture. The published sizes are 1024 features; "tcn81_cpu" is the CPU-sized
#: temporal conv net of the bundled model (256 channels, 81-frame receptive field).
LIFTER_PRESETS: Dict[str, Dict[str, Any]] = {
    **{name: dict(arch="dstformer", **kwargs) for name, kwargs in dstformer.PRESETS.items()},
    "simple_baseline": dict(arch="simple_baseline", num_joints=17, dim_in=3, dim_out=3, width=1024, num_blocks=2,
                            dropout=0.5),
    "tcn27": dict(arch="tcn", num_joints=17, dim_in=3, dim_out=3, filter_widths=[3, 3, 3], channels=1024,
                  dropout=0.25),
    "tcn81": dict(arch="tcn", num_joints=17, dim_in=3, dim_out=3, filter_widths=[3, 3, 3, 3], channels=1024,
                  dropout=0.25),
    "tcn243": dict(arch="tcn", num_joints=17, dim_in=3, dim_out=3, filter_widths=[3, 3, 3, 3, 3], channels=1024,
                   dropout=0.25),
    "tcn81_cpu": dict(arch="tcn", num_joints=17, dim_in=3, dim_out=3, filter_widths=[3, 3, 3, 3], channels=256,
                      dropout=0.25),
}


def lifter_config(name_or_dict: Union[str, Mapping[str, Any]], **overrides: Any) -> Dict[str, Any]:
    """Resolve a preset name or mapping (plus overrides) to ``{"arch": ..., **keyword arguments}``.

    Raises:
        ValueError: unknown preset, architecture or argument (the message lists what is allowed).
    """
    if isinstance(name_or_dict, str):
        given: Dict[str, Any] = {"preset": name_or_dict}
    elif isinstance(name_or_dict, Mapping):
        given = dict(name_or_dict)
    else:
        raise TypeError(f"model must be a preset name or a mapping; got {type(name_or_dict).__name__}")
    given.update(overrides)
    preset = given.pop("preset", None)
    if preset is None:
        preset = given.pop("name", None)
    config: Dict[str, Any] = {}
    if preset is not None:
        if preset not in LIFTER_PRESETS:
            raise ValueError(f"model preset must be one of {sorted(LIFTER_PRESETS)}; got {preset!r}")
        config.update(LIFTER_PRESETS[preset])
    arch = given.pop("arch", config.get("arch", "dstformer"))
    if arch not in ARCHITECTURES:
        raise ValueError(f"model.arch must be one of {sorted(ARCHITECTURES)}; got {arch!r}")
    if config.get("arch", arch) != arch:
        config = {}  # another architecture than the preset's: only the given arguments count
    config["arch"] = arch
    allowed = ARCHITECTURES[arch][1]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        name = ARCHITECTURES[arch][0].__name__
        raise ValueError(f"unknown {name} argument(s) {unknown}; expected a subset of {list(allowed)}")
    config.update(given)
    return config


def build_model(name_or_dict: Union[str, Mapping[str, Any]] = "repose", **overrides: Any) -> nn.Module:
    """A freshly initialised lifter on the CPU (see the module docstring for the configuration).

    Example::

        build_model("repose")                                  # DSTformer, sizes of the released RePOSE model
        build_model({"preset": "small", "maxlen": 81})
        build_model({"arch": "tcn", "filter_widths": [3, 3, 3], "channels": 256})
    """
    config = lifter_config(name_or_dict, **overrides)
    cls = ARCHITECTURES[config.pop("arch")][0]
    return cls(**config)
