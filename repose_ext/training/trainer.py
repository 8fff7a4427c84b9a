"""The training loop: MotionBERT's recipe with the RePOSE rank terms, resumable bit for bit, on one or many processes.

One epoch: every training clip once (shuffled by a sampler seeded with (seed, epoch)), flipped with probability
``train.flip_p`` (2D input and 3D target together, with the dataset's left/right lists; the coin flips come from a
generator seeded with (seed, epoch, rank)), AdamW step per batch, learning rate multiplied by ``train.lr_decay``
after the epoch, or with ``train.lr_schedule=time`` set before every step from the wall time spent: ``lr *
lr_final ** (spent / train.time_budget_s)``, so a fast and a slow lifter both anneal within one budget. Then rank 0
evaluates (flip test-time averaging), appends a row to ``log.csv``, writes TensorBoard scalars and the plots, and
saves ``latest.pt`` and, when the selected metric improved, ``best.pt``. ``train.time_budget_s`` counts the time
of earlier invocations of a resumed run (up to its last checkpoint). With ``train.ema_decay`` the evaluated,
selected and exported weights are a running average of the live ones (:mod:`.weight_average`).

Which checkpoint is "best": by default the epoch with the lowest MPJPE **on the evaluation split** (what
MotionBERT and RePOSE do; there is no separate validation split in their H36M protocol). Numbers of the best
epoch are therefore optimistic; the table printed at the end is the **last** epoch's. Set
``eval.select_best_on=loss`` to pick by training loss and leave the evaluation split out of model selection.

Bit-exact resume: a checkpoint holds the model (and the live weights beside an average), AdamW and scheduler
states, the AMP scaler, the epoch count, the best metric so far and every process's RNG states; data order and
flips are functions of (seed, epoch, rank).
Continuing from ``latest.pt`` of epoch k therefore gives the same weights as an uninterrupted run (on the same
hardware, software and number of processes), except under ``train.lr_schedule=time``, whose learning rates follow
the clock.

No host synchronisation per step: the loss terms are summed on the device and read every ``train.log_every``
steps (and at the end of the epoch).
"""

from __future__ import annotations

import datetime
import glob
import json
import math
import os
import sys
import time
from typing import Any, Dict, Mapping, Optional

import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from .._atomic import fault_point
from ..data.clips import random_flip
from ..models import build_model, load_checkpoint, load_model_weights, save_checkpoint
from . import distributed as dist_utils
from .baseline import BaselineRun, model_name
from .config import ConfigError, to_yaml
from .datasets import build_datasets
from ..evaluation import EvalResult, evaluate
from .objective import PoseObjective
from .reproducibility import capture_rng_state, derived_seed, restore_rng_state, seed_everything, weights_digest
from .run_lock import RunLock
from .run_logging import CsvLog, TensorBoardLog, plot_curves, write_text_atomic
from .weight_average import WeightAverage

LATEST = "latest.pt"
BEST = "best.pt"
MODEL_EXPORT = "model.pt"
BEST_SELECTION_NOTE = {
    "mpjpe": "best.pt = lowest MPJPE on the evaluation split (MotionBERT/RePOSE practice; optimistic)",
    "p_mpjpe": "best.pt = lowest P-MPJPE on the evaluation split (optimistic)",
    "loss": "best.pt = lowest training loss (the evaluation split is not used for selection)",
}


def resolve_device(name: str) -> torch.device:
    """"auto" -> CUDA if available else CPU; "cuda" without a GPU is an error that says so."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda but torch.cuda.is_available() is False; use device=cpu or auto")
    return torch.device(name)


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX512-BF16 or AMX), which make ``train.amp=bf16`` fast on it."""
    probes = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(probe is not None and probe() for probe in probes)


def resolve_amp(amp: str, device: torch.device) -> Optional[torch.dtype]:
    """Autocast dtype of training: "auto" = bf16 on GPUs that support it, else fp16; bf16 on CPUs with bf16
    instructions (:func:`cpu_has_bf16`), else none; "off" = None."""
    if amp == "off":
        return None
    if amp == "auto":
        if device.type != "cuda":
            return torch.bfloat16 if cpu_has_bf16() else None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if amp == "bf16" else torch.float16


def set_threads(config: Mapping[str, Any]) -> None:
    """Apply ``num_threads`` (torch's intra-op CPU threads) when the configuration sets it.

    One thread avoids a severe slowdown when other processes share the cores: with two busy torch processes of two
    OpenMP threads each on 2 cores, we measured a small-model step 14x slower than with one thread each.
    """
    if config.get("num_threads"):
        torch.set_num_threads(int(config["num_threads"]))


def prepare_target(target: torch.Tensor, rootrel: bool, root: int) -> torch.Tensor:
    """MotionBERT's training-time target preprocessing.

    Args:
        target: 3D clips (normalised x, y, z).
        rootrel: True: subtract the root joint from every joint (x, y and z). False: subtract the first frame's
            root depth from z only (a no-op for 2.5D data whose root depth is 0).
        root: root joint index.

    Returns:
        A new tensor.

    Shape:
        target: (B, T, J, 3). Returns (B, T, J, 3).
    """
    if rootrel:
        return target - target[:, :, root:root + 1]
    out = target.clone()
    out[..., 2] = target[..., 2] - target[:, :1, root:root + 1, 2]
    return out


def _model_config(config: Mapping[str, Any]):
    model = config["model"]
    return model if isinstance(model, str) else dict(model)


def _check_clip_length(model: torch.nn.Module, n_frames: int) -> None:
    maxlen = getattr(model, "maxlen", None)
    if maxlen is not None and n_frames > maxlen:
        raise ValueError(
            f"data.n_frames={n_frames} is longer than the model's maxlen={maxlen}; set model.maxlen >= {n_frames}"
        )


def find_latest_run(output_dir: str, name: str) -> str:
    """The most recently modified ``latest.pt`` of the runs named ``name`` under ``output_dir``."""
    candidates = glob.glob(os.path.join(output_dir, f"{name}-*", LATEST))
    if not candidates:
        raise FileNotFoundError(
            f"--resume without a path looks for {output_dir}/{name}-*/{LATEST}; none found. "
            f"Pass the checkpoint or run folder: --resume runs/<run>/{LATEST}"
        )
    return max(candidates, key=os.path.getmtime)


def _finite(x: float) -> Optional[float]:
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


class Trainer:
    """Trains a lifter as described in the module docstring.

    Args:
        config: a validated configuration (:func:`repose_ext.training.config.load_config`).
        run_dir: output folder; default ``<output_dir>/<name>-<timestamp>`` (chosen by rank 0).
        resume: checkpoint to continue from (its run folder is reused unless ``run_dir`` is given).
        progress: show tqdm progress bars (rank 0 only).
        log: where messages go (default ``sys.stdout``); rank 0 only.
    """

    def __init__(self, config: Mapping[str, Any], run_dir: Optional[str] = None, resume: Optional[str] = None,
                 progress: bool = True, log=None):
        self.config = dict(config)
        set_threads(config)
        self.device = resolve_device(config["device"])
        self.dist = dist_utils.init_distributed(self.device.type)
        if self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
        self.progress = progress and self.dist.is_main
        self._out = log or sys.stdout
        self.amp_dtype = resolve_amp(config["train"]["amp"], self.device)
        seed = config["seed"]

        self.resume_state = load_checkpoint(resume) if resume else None
        seed_everything(seed)
        self.data = build_datasets(config, need_train=True)  # before any output: bad paths fail early
        self.skeleton = self.data.skeleton

        if run_dir is None and resume:
            run_dir = os.path.dirname(os.path.abspath(resume))
        if run_dir is None:
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            run_dir = base = os.path.join(config["output_dir"], f"{config['name']}-{stamp}")
            suffix = 1
            while os.path.exists(run_dir):  # two runs started in the same second
                suffix += 1
                run_dir = f"{base}-{suffix}"
        self.run_dir = dist_utils.broadcast_object(os.path.abspath(run_dir), self.dist)
        if self.dist.is_main:
            os.makedirs(self.run_dir, exist_ok=True)
        self.lock = RunLock(self.run_dir)
        if self.dist.is_main:
            self.lock.acquire()  # before anything is written into the folder
            for leftover in glob.glob(os.path.join(self.run_dir, ".*.tmp")):  # a killed run's unfinished writes
                os.remove(leftover)
        try:
            self._build(config)
        except BaseException:
            self.lock.release()
            raise

    def _build(self, config: Mapping[str, Any]) -> None:
        """Model, optimiser, data loaders and log files (after the run folder is locked)."""
        seed = config["seed"]
        # Model initialisation is the same on every rank (DDP also broadcasts rank 0's weights).
        seed_everything(seed)
        self.model = build_model(_model_config(config)).to(self.device)
        _check_clip_length(self.model, config["data"]["n_frames"])
        t = config["train"]
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=t["lr"], weight_decay=t["weight_decay"])
        self.time_schedule = t["lr_schedule"] == "time"
        if self.time_schedule and self.dist.distributed:
            raise ConfigError("train.lr_schedule=time needs a single process (each process would follow its own "
                              "clock); use train.lr_schedule=epoch with torchrun")
        # With the time schedule the epoch scheduler is a no-op kept for the checkpoint format; _set_time_lr sets lr.
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(
            self.optimizer, gamma=1.0 if self.time_schedule else t["lr_decay"])
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.objective = PoseObjective.from_config(config["loss"], self.device)
        # the weights evaluated and exported: a running average of the live ones, or the live ones
        self.average = WeightAverage(self.model, t["ema_decay"]) if t["ema_decay"] is not None else None
        # The training stream of random numbers (dropout, drop-path) differs per rank.
        seed_everything(derived_seed(seed, self.dist.rank, 1))

        self.deadline: Optional[float] = None  # wall-clock end of training (train.time_budget_s)
        self.origin: Optional[float] = None  # wall-clock time at which this run (resumes included) would have begun
        self.seconds_before = 0.0  # training seconds of earlier invocations (from the checkpoint)
        self.epoch = 0  # completed epochs
        self.global_step = 0
        self.best: Dict[str, Any] = {"value": None, "epoch": None, "metric": config["eval"]["select_best_on"]}
        if self.resume_state is not None:
            self._restore(self.resume_state)

        self.sampler = DistributedSampler(self.data.train, num_replicas=self.dist.world_size, rank=self.dist.rank,
                                          shuffle=True, seed=seed, drop_last=False)
        workers = config["data"]["num_workers"]
        self.train_loader = DataLoader(self.data.train, batch_size=t["batch_size"], sampler=self.sampler,
                                       num_workers=workers, pin_memory=self.device.type == "cuda",
                                       generator=torch.Generator().manual_seed(seed), drop_last=False,
                                       persistent_workers=workers > 0)
        self.eval_loader = DataLoader(self.data.test, batch_size=config["eval"]["batch_size"], shuffle=False,
                                      num_workers=workers, pin_memory=self.device.type == "cuda",
                                      generator=torch.Generator().manual_seed(seed))
        self.ddp_model = self.model
        if self.dist.distributed:
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.dist.local_rank] if self.device.type == "cuda" else None)

        if self.dist.is_main:
            resumed = self.resume_state is not None
            self.csv = CsvLog(os.path.join(self.run_dir, "log.csv"), resume_epoch=self.epoch if resumed else None,
                              rows=self.resume_state.get("log_rows") if resumed else None)
            self.tb = TensorBoardLog(os.path.join(self.run_dir, "tb"),
                                     purge_step=self.global_step if self.resume_state is not None else None)
            write_text_atomic(os.path.join(self.run_dir, "config.yaml"), to_yaml(self.config))

    # ------------------------------------------------------------------------------------------------------------
    def say(self, message: str) -> None:
        """Print a message on rank 0 (without breaking tqdm bars)."""
        if not self.dist.is_main:
            return
        from tqdm.auto import tqdm

        tqdm.write(message, file=self._out)

    @property
    def eval_model(self) -> nn.Module:
        """The weights the run evaluates and exports: the running average with ``train.ema_decay``, else the
        live model."""
        return self.average.model if self.average is not None else self.model

    def _restore(self, state: Mapping[str, Any]) -> None:
        stored = state["weight_average"]["decay"] if "weight_average" in state else None
        if stored != self.config["train"]["ema_decay"]:
            raise ConfigError(f"train.ema_decay: the checkpoint to resume from was written with {stored}, this run "
                              f"has {self.config['train']['ema_decay']}; resume with the checkpoint's value")
        if self.average is not None:  # the checkpoint's model is the average; the live weights travel beside it
            load_model_weights(self.average.model, state)
            self.average.restore(state["weight_average"])
            load_model_weights(self.model, state["train_weights"])
        else:
            load_model_weights(self.model, state)
        if "optimizer" not in state or "epoch" not in state:
            raise ValueError("the checkpoint to resume from has no optimizer state / epoch (was it written by "
                             "this trainer? use --eval-only to evaluate released weights)")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if "scaler" in state and state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        self.global_step = int(state.get("global_step", 0))
        self.best = dict(state.get("best", self.best))
        self.seconds_before = float(state.get("train_seconds", 0.0))
        rng = state.get("rng_states")
        if rng is not None and len(rng) == self.dist.world_size:
            restore_rng_state(rng[self.dist.rank])
        elif rng is not None:
            self.say(f"note: checkpoint was written by {len(rng)} process(es), this run has "
                     f"{self.dist.world_size}: RNG states re-seeded, the continuation is not bit-exact")

    def _checkpoint_payload(self) -> Dict[str, Any]:
        averaged = {} if self.average is None else {"weight_average": self.average.state(),
                                                    "train_weights": self.model.state_dict()}
        return {
            **averaged,
            "rng_states": dist_utils.all_gather_object(capture_rng_state(), self.dist),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "global_step": self.global_step,
            "train_seconds": time.time() - self.origin if self.origin is not None else self.seconds_before,
            "best": dict(self.best),
            "best_selection": BEST_SELECTION_NOTE[self.config["eval"]["select_best_on"]],
            "world_size": self.dist.world_size,
            "log_rows": list(self.csv.rows) if self.dist.is_main else [],
        }

    def _save(self, name: str, metrics: Mapping[str, Any], extra: Mapping[str, Any]) -> None:
        save_checkpoint(os.path.join(self.run_dir, name), self.eval_model, optimizer=self.optimizer,
                        scheduler=self.scheduler, epoch=self.epoch, config=self.config, metrics=dict(metrics),
                        extra=dict(extra))

    # ------------------------------------------------------------------------------------------------------------
    def train_epoch(self) -> Dict[str, float]:
        """One pass over the training clips. Returns the mean of each loss term (and "loss") over the epoch."""
        from tqdm.auto import tqdm

        config = self.config
        t = config["train"]
        self.ddp_model.train()
        self.sampler.set_epoch(self.epoch)
        if hasattr(self.data.train, "set_epoch"):  # data drawn on the fly: a new draw each epoch
            self.data.train.set_epoch(self.epoch)
        # Worker seeds come from the loader's generator: make them a function of the epoch too.
        self.train_loader.generator.manual_seed(derived_seed(config["seed"], self.epoch, self.dist.rank, 3))
        flip_gen = torch.Generator().manual_seed(derived_seed(config["seed"], self.epoch, self.dist.rank, 2))
        left, right, root = self.skeleton.left, self.skeleton.right, self.skeleton.root
        terms = ["loss"] + self.objective.terms
        sums = torch.zeros(len(terms), dtype=torch.float64, device=self.device)
        window = torch.zeros_like(sums)
        window_steps = 0
        steps = 0
        limit = t["max_steps_per_epoch"]
        total = len(self.train_loader) if limit is None else min(limit, len(self.train_loader))
        bar = tqdm(total=total, desc=f"epoch {self.epoch + 1}/{t['epochs']}", leave=False,
                   disable=not self.progress, dynamic_ncols=True, file=self._out)
        for batch in self.train_loader:
            if limit is not None and steps >= limit:
                break
            if self.deadline is not None and time.time() >= self.deadline:
                break
            if self.time_schedule:
                self._set_time_lr()
            inputs = batch["input"].to(self.device, non_blocking=True)
            target = prepare_target(batch["target"].to(self.device, non_blocking=True),
                                    config["data"]["rootrel"], root)
            if t["flip_augment"]:
                inputs, target, _ = random_flip(inputs, target, left, right, p=t["flip_p"], generator=flip_gen)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                pred = self.ddp_model(inputs)
            loss, parts = self.objective(pred, target)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if t["grad_clip"] is not None:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), t["grad_clip"])
            self.scaler.step(self.optimizer)
            self.scaler.update()
            if self.average is not None:
                self.average.update(self.model)

            values = torch.stack([loss.detach()] + [parts[k] for k in terms[1:]]).double()
            sums += values
            window += values
            window_steps += 1
            steps += 1
            self.global_step += 1
            bar.update(1)
            if self.global_step % t["log_every"] == 0:
                means = (window / window_steps).tolist()  # the only host sync, every log_every steps
                if not math.isfinite(means[0]):
                    raise FloatingPointError(f"training loss is {means[0]} at step {self.global_step} "
                                             f"(epoch {self.epoch + 1}); lower train.lr or set train.grad_clip")
                if self.dist.is_main:
                    bar.set_postfix(loss=f"{means[0]:.4f}")
                    values = dict(zip(terms, means), lr=self.optimizer.param_groups[0]["lr"])
                    self.tb.scalars(values, self.global_step, prefix="train_step/")
                window.zero_()
                window_steps = 0
        bar.close()
        counts = torch.tensor([float(steps)], dtype=torch.float64, device=self.device)
        dist_utils.all_reduce_sum(sums, self.dist)
        dist_utils.all_reduce_sum(counts, self.dist)
        means = (sums / counts.clamp_min(1)).tolist()
        if not math.isfinite(means[0]):
            raise FloatingPointError(f"training loss is {means[0]} in epoch {self.epoch + 1}; lower train.lr or "
                                     f"set train.grad_clip")
        return dict(zip(terms, means))

    def _set_time_lr(self) -> None:
        """``train.lr_schedule=time``: lr * lr_final ** (fraction of train.time_budget_s spent so far)."""
        t = self.config["train"]
        spent = min(1.0, max(0.0, (time.time() - self.origin) / t["time_budget_s"]))
        for group in self.optimizer.param_groups:
            group["lr"] = t["lr"] * t["lr_final"] ** spent

    def evaluate(self, description: str = "eval", loader=None) -> EvalResult:
        """Evaluate the current weights on the evaluation split, or on ``loader`` (call on rank 0)."""
        loader = self.eval_loader if loader is None else loader
        return evaluate_as_configured(self.config, self.eval_model, loader, self.data, self.device,
                                      progress=self.progress, description=description)

    def _improved(self, value: Optional[float]) -> bool:
        return value is not None and (self.best["value"] is None or value < self.best["value"])

    def fit(self) -> Dict[str, Any]:
        """Train to ``train.epochs`` (from the resumed epoch), evaluate, and write the run's outputs.

        Returns:
            Summary dict (also written to ``summary.json``): run folder, final metrics, best epoch, wall time,
            weight digests of every rank.
        """
        config = self.config
        t, e = config["train"], config["eval"]
        budget = t["time_budget_s"]
        self.origin = time.time() - self.seconds_before
        self.deadline = None if budget is None else self.origin + budget
        self.say(f"run folder: {self.run_dir}")
        n_params = sum(p.numel() for p in self.model.parameters())
        processes = f" x {self.dist.world_size} processes" if self.dist.distributed else ""
        backend = f", rank backend {self.objective.backend!r}" if self.objective.backend else ""
        self.say(f"data: {config['data']['dataset']} ({len(self.data.train)} training clips, {len(self.data.test)} "
                 f"evaluation clips of {config['data']['n_frames']} frames); model: {n_params / 1e6:.2f} M parameters; "
                 f"device: {self.device}{processes}; loss terms: {self.objective.weights}{backend}")
        if self.epoch:
            self.say(f"resuming after epoch {self.epoch} (step {self.global_step})")
        if self.device.type == "cpu" and self.amp_dtype == torch.bfloat16 and not cpu_has_bf16():
            self.say("note: train.amp=bf16 on a CPU without bf16 instructions (AVX512-BF16, AMX) is emulated and may "
                     "be slower than train.amp=off")
        self.say(BEST_SELECTION_NOTE[e["select_best_on"]])
        baseline = None
        if config["baseline"] and self.dist.is_main:
            baseline = BaselineRun(config, self.run_dir)
            self.say(baseline.start())
        try:
            return self._fit_loop(baseline)
        finally:
            if baseline is not None:
                baseline.stop()

    def _fit_loop(self, baseline: Optional[BaselineRun]) -> Dict[str, Any]:
        config = self.config
        t, e = config["train"], config["eval"]
        budget = t["time_budget_s"]
        last_result: Optional[EvalResult] = None
        last_eval_epoch = None
        while self.epoch < t["epochs"]:
            epoch_start = time.time()
            train_stats = self.train_epoch()
            lr = self.optimizer.param_groups[0]["lr"]
            self.scheduler.step()
            self.epoch += 1
            final_epoch = self.epoch == t["epochs"]
            do_eval = (e["every"] > 0 and self.epoch % e["every"] == 0) or final_epoch
            result = None
            if do_eval and self.dist.is_main:
                result = self.evaluate(description=f"eval epoch {self.epoch}")
                last_result, last_eval_epoch = result, self.epoch
            if self.dist.is_main:
                self._end_of_epoch(train_stats, result, lr, time.time() - epoch_start)
            else:
                dist_utils.all_gather_object(capture_rng_state(), self.dist)  # matches rank 0's checkpoint gather
            dist_utils.barrier(self.dist)
            if self.deadline is not None and time.time() >= self.deadline:
                self.say(f"train.time_budget_s={budget} reached after epoch {self.epoch} (step {self.global_step})")
                break

        if self.dist.is_main and last_result is None:  # epochs == 0, or resumed at the end: evaluate once
            last_result, last_eval_epoch = self.evaluate(description="eval"), self.epoch
        digests = dist_utils.all_gather_object(weights_digest(self.model), self.dist)
        summary: Dict[str, Any] = {}
        if self.dist.is_main:
            # wall time of the whole run: earlier invocations (to their last checkpoint) and this one
            summary = self._finish(last_result, last_eval_epoch, digests, time.time() - self.origin, baseline)
            self.tb.close()
        dist_utils.barrier(self.dist)
        return summary

    def _end_of_epoch(self, train_stats: Mapping[str, float], result: Optional[EvalResult], lr: float,
                      seconds: float) -> None:
        e = self.config["eval"]
        row: Dict[str, Any] = {"epoch": self.epoch, "step": self.global_step, "lr": lr, "seconds": round(seconds, 2)}
        row.update({f"train_{k}": v for k, v in train_stats.items()})
        metrics = {}
        if result is not None:
            metrics = {k: v for k, v in result.summary.items() if k != "frames"}
        for key in ("mpjpe", "p_mpjpe", "mpjpe_occluded", "mpjpe_visible", "pck", "auc", "doa_spatial",
                    "doa_temporal"):
            row[f"eval_{key}"] = metrics.get(key)
        self.csv.append(row)
        fault_point("after_csv")
        self.tb.scalars(train_stats, self.epoch, prefix="train/")
        self.tb.scalars({"lr": lr, "epoch_seconds": seconds}, self.epoch, prefix="train/")
        if metrics:
            self.tb.scalars(metrics, self.epoch, prefix="eval/")
        self.tb.flush()

        if e["select_best_on"] == "loss":
            selected = _finite(float(train_stats["loss"]))
        else:
            selected = _finite(float(metrics.get(e["select_best_on"], float("nan"))))
        improved = self._improved(selected)
        if improved:
            self.best.update(value=selected, epoch=self.epoch)
        all_metrics = {"train": dict(train_stats), "eval": result.as_dict() if result is not None else None}
        extra = self._checkpoint_payload()
        # latest.pt last: whenever it names an epoch, that epoch's best.pt and checkpoint_every snapshot are on
        # disk (a run resumed from it never comes back to write them).
        if improved:
            self._save(BEST, all_metrics, extra)
            fault_point("after_best")
        every = self.config["train"]["checkpoint_every"]
        if every and self.epoch % every == 0:
            self._save(f"epoch_{self.epoch:04d}.pt", all_metrics, extra)
        self._save(LATEST, all_metrics, extra)
        fault_point("after_latest")
        plot_curves(os.path.join(self.run_dir, "log.csv"), os.path.join(self.run_dir, "curves.png"))
        message = f"epoch {self.epoch}: loss {train_stats['loss']:.4f}, lr {lr:.3g}, {seconds:.1f} s"
        if metrics:
            message += f"; eval MPJPE {metrics.get('mpjpe', float('nan')):.2f} mm, P-MPJPE " \
                       f"{metrics.get('p_mpjpe', float('nan')):.2f} mm"
        if improved:
            message += f" (best {self.best['metric']})"
        self.say(message)

    def _finish(self, result: EvalResult, eval_epoch: int, digests, seconds: float,
                baseline: Optional[BaselineRun] = None) -> Dict[str, Any]:
        table = result.table()
        header = (f"Evaluation of the final model (epoch {eval_epoch}) on the held-out split "
                  f"({result.num_clips} clips, flip test {'on' if self.config['eval']['flip_test'] else 'off'}):")
        self.say("")
        self.say(header)
        self.say(table)
        if self.best["epoch"] is not None:
            self.say(f"best epoch by {self.best['metric']}: {self.best['epoch']} ({self.best['value']:.4f}); "
                     f"{BEST_SELECTION_NOTE[self.best['metric']]}")
        splits = {self.data.test_name: result}
        for name, dataset in self.data.extra_tests.items():
            loader = DataLoader(dataset, batch_size=self.config["eval"]["batch_size"], shuffle=False)
            splits[name] = self.evaluate(description=f"eval {name}", loader=loader)
        rows = {"model": {name: r.summary for name, r in splits.items()}}
        baseline_splits = None
        if baseline is not None:
            self.say("waiting for the baseline run to finish ...")
            baseline_splits = baseline.result()
            if baseline_splits is None:
                self.say(f"baseline: the run failed; see {baseline.log_path}")
            else:
                rows["baseline"] = baseline_splits
        if self.data.extra_tests or baseline_splits:
            split_table = split_summary_table(rows)
            self.say("")
            what = f"; baseline = {model_name(self.config['baseline'])}, same data and time, no rank losses" \
                if baseline_splits else ""
            self.say(f"Every evaluation split (averages over the held-out actions{what}):")
            self.say(split_table)
            table = table + "\n\nEvery evaluation split:\n" + split_table
        write_text_atomic(os.path.join(self.run_dir, "eval_final.txt"), header + "\n" + table + "\n")
        # Weights-only export of the final model (no optimizer state): small enough to ship or share.
        save_checkpoint(os.path.join(self.run_dir, MODEL_EXPORT), self.eval_model, epoch=self.epoch, config=self.config,
                        metrics={"eval": result.as_dict(), "eval_epoch": eval_epoch})
        summary = {
            "run_dir": self.run_dir,
            "epochs": self.epoch,
            "global_step": self.global_step,
            "final_eval_epoch": eval_epoch,
            "final": result.as_dict(),
            "splits": {name: r.as_dict() for name, r in splits.items()},
            "baseline_splits": baseline_splits,
            "best": dict(self.best),
            "best_selection": BEST_SELECTION_NOTE[self.best["metric"]],
            "wall_seconds": round(seconds, 1),
            "world_size": self.dist.world_size,
            "weights_digest_by_rank": list(digests),
        }
        fault_point("before_summary")
        write_text_atomic(os.path.join(self.run_dir, "summary.json"), json.dumps(summary, indent=2))
        written = [name for name in (LATEST, BEST, MODEL_EXPORT, "log.csv", "curves.png", "tb", "summary.json",
                                     "eval_final.txt") if os.path.exists(os.path.join(self.run_dir, name))]
        self.say(f"run folder: {self.run_dir} ({', '.join(written)}); {seconds:.0f} s")
        return summary

    def close(self) -> None:
        """Release the run folder and leave the process group."""
        self.lock.release()
        dist_utils.cleanup(self.dist)


_SPLIT_COLUMNS = (("mpjpe", "MPJPE", "{:8.2f}"), ("p_mpjpe", "P-MPJPE", "{:8.2f}"),
                  ("mpjpe_occluded", "MPJPE-occ", "{:9.2f}"), ("mpjpe_visible", "MPJPE-vis", "{:9.2f}"),
                  ("doa_spatial", "DOA-spatial", "{:11.4f}"), ("doa_temporal", "DOA-temporal", "{:12.4f}"))


def split_summary_table(results: Mapping[str, Mapping[str, Mapping[str, Optional[float]]]]) -> str:
    """One row per (split, model): the "Average" row of each evaluation.

    Args:
        results: model label -> split name -> summary (metric -> value, e.g. :attr:`EvalResult.summary`).
    """
    header = f"{'split':<12} {'model':<18}" + "".join(f" {h:>{len(f.format(0.0))}}" for _, h, f in _SPLIT_COLUMNS)
    lines = [header, "-" * len(header)]
    splits = list(dict.fromkeys(s for per in results.values() for s in per))
    for split in splits:
        for label, per in results.items():
            if split not in per:
                continue
            summary = per[split]
            cells = "".join(" " + (f.format(summary[k]) if summary.get(k) is not None and math.isfinite(summary[k])
                                   else f"{'-':>{len(f.format(0.0))}}") for k, _, f in _SPLIT_COLUMNS)
            lines.append(f"{split:<12} {label:<18}{cells}")
    return "\n".join(lines)


def train(config: Mapping[str, Any], run_dir: Optional[str] = None, resume: Optional[str] = None,
          progress: bool = True) -> Dict[str, Any]:
    """Build a :class:`Trainer`, run :meth:`Trainer.fit` and clean up. Returns the summary."""
    trainer = Trainer(config, run_dir=run_dir, resume=resume, progress=progress)
    try:
        return trainer.fit()
    finally:
        trainer.close()


def evaluate_as_configured(config: Mapping[str, Any], model: nn.Module, loader, data, device: torch.device,
                           progress: bool = False, description: str = "eval") -> EvalResult:
    """:func:`~repose_ext.evaluation.evaluate` with the ``eval``, ``data`` and ``train.amp`` settings of ``config``
    (flip test, root-relative targets, depth-order tolerance, clip cap, autocast): the one place the trainer and
    :class:`CheckpointScorer` turn a config into an evaluation, so that their scores agree.

    Autocast applies on GPUs only. On a CPU, ``train.amp=bf16`` speeds up training, and the scores are those of
    float32 inference, which is what the lift CLI runs.

    Args:
        data: the :func:`build_datasets` result whose skeleton and protocol apply to ``loader``.
    """
    e = config["eval"]
    amp_dtype = resolve_amp(config["train"]["amp"], device) if device.type == "cuda" else None
    return evaluate(model, loader, data.skeleton, data.protocol, flip=e["flip_test"],
                    rootrel=config["data"]["rootrel"], device=device, autocast_dtype=amp_dtype,
                    depth_order_tolerance_mm=e["depth_order_tolerance_mm"], max_clips=e["max_clips"],
                    progress=progress, description=description)


class CheckpointScorer:
    """Weights from a checkpoint with the evaluation splits and settings of ``config``, ready to score.

    The one set-up behind :func:`evaluate_checkpoint` and the diagnostics in ``scripts/`` (threads, seed, device,
    data, model, flip test, depth-order tolerance), so that a score made here matches the run's own.

    Args:
        config: configuration giving the data, the model architecture and the evaluation settings.
        checkpoint: checkpoint file (ours, or the released RePOSE/MotionBERT ``{"model_pos": ...}``).

    Attributes:
        model: the lifter with the checkpoint's weights, on the config's device.
        data: the evaluation splits (:func:`build_datasets` with ``need_train=False``).
        splits: split name -> dataset, the main evaluation split first.
    """

    def __init__(self, config: Mapping[str, Any], checkpoint: str):
        self.config = config
        set_threads(config)
        self.device = resolve_device(config["device"])
        seed_everything(config["seed"])
        self.data = build_datasets(config, need_train=False)
        self.model = build_model(_model_config(config))
        load_model_weights(self.model, checkpoint)
        self.model.to(self.device)
        _check_clip_length(self.model, config["data"]["n_frames"])
        self.splits = {self.data.test_name: self.data.test, **self.data.extra_tests}

    def score(self, split: str, model: Optional[nn.Module] = None, progress: bool = False,
              description: str = "eval") -> EvalResult:
        """Evaluate ``model`` (default: the checkpoint's lifter) on one split, as the trainer does."""
        workers = self.config["data"]["num_workers"] if split == self.data.test_name else 0
        loader = DataLoader(self.splits[split], batch_size=self.config["eval"]["batch_size"], shuffle=False,
                            num_workers=workers)
        return evaluate_as_configured(self.config, self.model if model is None else model, loader, self.data,
                                      self.device, progress=progress, description=description)


def evaluate_checkpoint(config: Mapping[str, Any], checkpoint: str, progress: bool = True,
                        log=None) -> EvalResult:
    """Evaluate weights from a checkpoint (ours, or the released RePOSE/MotionBERT ``{"model_pos": ...}`` with
    ``module.`` prefixes) on the evaluation split of ``config`` and print the table; with further splits (the wild
    split of ``mocap_augmented``) also score those and print one row per split.

    Args:
        config: configuration giving the data and the model architecture.
        checkpoint: checkpoint file.
        progress: progress bar.
        log: output stream (default stdout).

    Returns:
        The :class:`EvalResult` of the evaluation split.
    """
    out = log or sys.stdout
    scorer = CheckpointScorer(config, checkpoint)
    data, e = scorer.data, config["eval"]

    def score(split, description):
        return scorer.score(split, progress=progress, description=description)

    result = score(data.test_name, "eval")
    print(f"Evaluation of {checkpoint} on {config['data']['dataset']} ({result.num_clips} clips, flip test "
          f"{'on' if e['flip_test'] else 'off'}):", file=out)
    print(result.table(), file=out)
    if data.extra_tests:
        splits = {data.test_name: result.summary}
        for name in data.extra_tests:
            splits[name] = score(name, f"eval {name}").summary
        print("\nEvery evaluation split (averages over the held-out actions):", file=out)
        print(split_summary_table({"model": splits}), file=out)
    return result
