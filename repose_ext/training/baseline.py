"""The same-budget reference run: a simple lifter trained beside the main one, on the same data, for the same time.

A configuration with ``baseline: simple_baseline`` (any model preset name or mapping) trains, next to its own
model, a second run in ``<run folder>/baseline/``: the ``baseline`` model with the same data (same data seed, so
the same samples), schedule, epochs and ``train.time_budget_s``, and without the rank losses. It runs in a child
process, started with the main run and on the same cores, so both get the same wall time. At the end the main
run's split table shows both (``model`` and ``baseline``) and ``summary.json`` stores the baseline's splits.

An interrupted baseline resumes from its ``latest.pt`` when the main run is resumed; a finished one is reused.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from typing import Any, Dict, Mapping, Optional

from .config import to_yaml

BASELINE_DIR = "baseline"

# Variables of torchrun / torch.distributed that must not reach the child (it is a single-process run).
_DISTRIBUTED_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
                    "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")


def model_name(model: Any) -> str:
    """A short name of a model configuration (its preset or architecture)."""
    if isinstance(model, str):
        return model
    return str(model.get("preset") or model.get("arch") or "dstformer")


def baseline_config(config: Mapping[str, Any]) -> Dict[str, Any]:
    """The configuration of the reference run of ``config``: its ``baseline`` model, no rank losses, the rest
    (data, seed, schedule, epochs, time budget) unchanged."""
    if not config.get("baseline"):
        raise ValueError("the configuration has no baseline model (set `baseline: simple_baseline`)")
    out = copy.deepcopy(dict(config))
    out["model"] = copy.deepcopy(config["baseline"])
    out["baseline"] = None
    out["name"] = f"{config['name']}-{BASELINE_DIR}"
    out["loss"]["spatial_rank"] = 0.0
    out["loss"]["temporal_rank"] = 0.0
    return out


class BaselineRun:
    """The reference run in a child process (``python -m repose_ext.training.cli``).

    Args:
        config: the main run's configuration (with ``baseline`` set).
        run_dir: the main run's folder; the baseline's is ``run_dir/baseline``.
    """

    def __init__(self, config: Mapping[str, Any], run_dir: str):
        self.folder = os.path.join(run_dir, BASELINE_DIR)
        self.summary_path = os.path.join(self.folder, "summary.json")
        self.log_path = os.path.join(self.folder, "train.log")
        self.config = baseline_config(config)
        self.process: Optional[subprocess.Popen] = None
        self._log = None

    def start(self) -> str:
        """Start the child (or reuse a finished run). Returns a line that says what happened."""
        if os.path.isfile(self.summary_path):
            return f"baseline: reusing the finished run in {self.folder}"
        os.makedirs(self.folder, exist_ok=True)
        latest = os.path.join(self.folder, "latest.pt")
        command = [sys.executable, "-m", "repose_ext.training.cli", "--run-dir", self.folder, "--no-progress"]
        if os.path.isfile(latest):
            command += ["--resume", latest]
            what = "resuming"
        else:
            config_path = os.path.join(self.folder, "baseline_config.yaml")
            with open(config_path, "w", encoding="utf-8") as f:
                f.write(to_yaml(self.config))
            command += ["--config", config_path]
            what = "training"
        env = {k: v for k, v in os.environ.items() if k not in _DISTRIBUTED_ENV}
        self._log = open(self.log_path, "a", encoding="utf-8")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                        stdin=subprocess.DEVNULL)
        return (f"baseline: {what} {model_name(self.config['model'])} without rank losses in a second process "
                f"({self.log_path})")

    def result(self) -> Optional[Dict[str, Dict[str, float]]]:
        """Wait for the child; the baseline's split summaries (split -> metric -> value), or None if it failed."""
        if self.process is not None:
            self.process.wait()
            self._log.close()
            self.process = None
        if not os.path.isfile(self.summary_path):
            return None
        with open(self.summary_path, "r", encoding="utf-8") as f:
            splits = json.load(f).get("splits") or {}
        return {name: split["summary"] for name, split in splits.items()}

    def stop(self) -> None:
        """Terminate a running child (the main run failed or was interrupted)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self._log is not None and not self._log.closed:
            self._log.close()
        self.process = None
