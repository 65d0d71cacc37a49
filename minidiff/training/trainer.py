"""The training loop of Ho et al. (2020), Algorithm 1, with exact resumption.

Each step draws a batch x_0, a step t ~ Uniform{1..T} and noise eps ~ N(0, I), and takes
an AdamW step on the loss of `GaussianDiffusion.training_losses`, with the learning rate
warmed up linearly over the first ``warmup_steps`` steps and then held constant, the
gradient clipped to a global norm of 1, and an EMA of the weights (decay 0.9999) updated
after each step; samples and evaluations use the EMA weights (Ho et al. 2020, Appendix B).

Reproducibility: every random draw comes from a generator seeded from ``config.seed``:

* ``generator`` draws t and eps;
* the data order of epoch e comes from a generator seeded from ``(seed, e)``, so the
  position in the data is the pair (epoch, batches consumed) and is restored exactly by
  replaying the epoch's draws up to that batch;
* dropout uses the global torch generator, so each step runs inside
  `torch.random.fork_rng` with the global state set from the trainer's own
  ``dropout_generator`` (and read back afterwards): the caller's global state is left
  alone, and the dropout masks depend only on the seed.

A checkpoint holds the model, the EMA, the optimizer, the step, the data position, the
states of all these generators and the config, so that N steps, a save, a fresh trainer
resumed from the checkpoint and N more steps give bit-identical weights to 2N steps in one
go (on the same device and software).
"""

from __future__ import annotations

import errno
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from minidiff.data import BatchLoader
from minidiff.diffusion.gaussian import GaussianDiffusion
from minidiff.training.checkpoint import (
    find_latest_checkpoint,
    load_checkpoint,
    load_latest_checkpoint,
    repair_checkpoints,
    save_checkpoint,
)
from minidiff.training.config import (
    PRECISIONS,
    TRAJECTORY_KEYS,
    TrainConfig,
    resolve_memory_format,
    warmup_lr,
)
from minidiff.training.distributed import current_rank_and_world, shard
from minidiff.training.ema import EMA
from minidiff.training.metrics_log import append_record, trim_log
from minidiff.training.rng import capture_rng_state, restore_rng_state

__all__ = ["METRIC_KEYS", "DiskFullError", "NonFiniteLossError", "Trainer"]

METRIC_KEYS = ("step", "loss", "grad_norm", "lr", "images_per_s", "skipped")
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"


class NonFiniteLossError(RuntimeError):
    """Too many steps in a row had a non-finite loss or gradient norm."""


class DiskFullError(OSError):
    """The disk filled up during training; the message names the last good checkpoint."""


DATA_STREAM, DROPOUT_STREAM = 0, 1


def _stream_seed(seed: int, stream: int, index: int) -> int:
    """A 63-bit seed that is a function of (seed, stream, index) only: ``index`` is the
    epoch for the data order, the rank for dropout."""
    entropy = [seed, stream, index]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)


def _autocast_enabled(precision: str, device: torch.device) -> bool:
    if precision == "fp32":
        return False
    if precision == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError(f"precision='bf16' but {device} does not support bfloat16")
        return True
    if precision == "auto":
        return device.type == "cuda" and torch.cuda.is_bf16_supported()
    else:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")


class Trainer:
    """Train a denoiser with `GaussianDiffusion.training_losses` (see the module doc).

    Args:
        model: the denoiser ``model(xt, t)`` (or ``model(xt, t, y)`` for labelled data).
        diffusion: the `GaussianDiffusion` defining the loss.
        data: a `BatchLoader` (its batch size must equal ``config.batch_size``; its
            generator is replaced by the trainer's per-epoch generators), or a tensor or
            sequence of aligned tensors (x_0 first, labels second), shuffled with
            ``drop_last=True``.
        config: the `TrainConfig`.
        out_dir: the run directory: ``metrics.jsonl`` and ``checkpoints/``.
        device: where to train (default: the model's device).
        resume: load the latest checkpoint in ``out_dir/checkpoints``.
        progress: show a tqdm bar with the loss and images/s.
        sample_fn: ``sample_fn(ema_model, step)`` called every ``config.sample_every``
            steps with the model holding the EMA weights, in eval mode.
        run_info: plain data (dicts, lists, strings, numbers, None) stored in each
            checkpoint's config under ``"run"``, e.g. the preset that built the model
            (`minidiff.runs` keeps it there, so that a checkpoint alone rebuilds its model).

    Attributes:
        step: the steps taken (skipped ones included); ``skipped``: the skipped steps.
    """

    def __init__(
        self,
        model: nn.Module,
        diffusion: GaussianDiffusion,
        data: BatchLoader | torch.Tensor | Sequence[torch.Tensor],
        config: TrainConfig,
        *,
        out_dir: str | Path,
        device: torch.device | str | None = None,
        resume: bool = False,
        progress: bool = False,
        sample_fn: Callable[[nn.Module, int], Any] | None = None,
        run_info: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        self.config = config
        self.diffusion = diffusion
        first = next(iter(model.parameters()), None)
        default = first.device if first is not None else torch.device("cpu")
        self.device = torch.device(device) if device is not None else default
        self.model = model.to(self.device)
        # NHWC: convert the weights once here (before the optimizer and EMA copy them)
        memory_format = resolve_memory_format(config.memory_format, self.device.type)
        self.channels_last = memory_format == "channels_last"
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.rank, self.world_size = current_rank_and_world()
        if config.batch_size % self.world_size != 0:
            raise ValueError(
                f"config.batch_size {config.batch_size} (the global batch) must be a multiple "
                f"of the world size {self.world_size}"
            )
        self.loader = self._make_loader(data)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, betas=config.betas,
            weight_decay=config.weight_decay,
        )  # fmt: skip
        self.ema = EMA(self.model, decay=config.ema_decay)
        self.generator = torch.Generator(self.device).manual_seed(config.seed)
        dropout_seed = _stream_seed(config.seed, DROPOUT_STREAM, self.rank)
        self.dropout_generator = torch.Generator(self.device).manual_seed(dropout_seed)
        self.autocast = _autocast_enabled(config.precision, self.device)
        self.forward: nn.Module = self.model
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.forward = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if config.compile:
            self.forward = torch.compile(self.forward)
        self.out_dir = Path(out_dir)
        self.checkpoint_dir = self.out_dir / CHECKPOINT_DIR
        self.progress = progress
        self.sample_fn = sample_fn
        self.run_info = run_info
        self.step = 0
        self.skipped = 0
        self.saved_step: int | None = None  # the step of the checkpoint saved or loaded last
        self.nonfinite_in_a_row = 0
        self.epoch = 0
        self.position = 0  # batches consumed in the current epoch
        self._iterator: Iterator[tuple[torch.Tensor, ...]] | None = None
        self._interval = {"loss": 0.0, "grad_norm": 0.0, "good": 0, "images": 0}
        self._interval_start = time.perf_counter()
        if resume:
            self.load()

    @classmethod
    def resume(cls, out_dir, model, diffusion, data, config, **kwargs) -> Trainer:
        """A trainer restored from the latest checkpoint in ``out_dir`` (see `load`)."""
        return cls(model, diffusion, data, config, out_dir=out_dir, resume=True, **kwargs)

    def _make_loader(self, data) -> BatchLoader:
        if isinstance(data, BatchLoader):
            if data.batch_size != self.config.batch_size:
                raise ValueError(
                    f"data has batch_size {data.batch_size}, config.batch_size is "
                    f"{self.config.batch_size}"
                )
            loader = data
        else:
            tensors = (data,) if isinstance(data, torch.Tensor) else tuple(data)
            loader = BatchLoader(tensors, self.config.batch_size, drop_last=True)
        if len(loader) == 0:
            raise ValueError(f"data has fewer items than one batch of {self.config.batch_size}")
        return loader

    # -- data order ----------------------------------------------------------------------

    def _epoch_generator(self, epoch: int) -> torch.Generator:
        old = self.loader.generator
        device = old.device if old is not None else torch.device("cpu")
        return torch.Generator(device).manual_seed(
            _stream_seed(self.config.seed, DATA_STREAM, epoch)
        )

    def _next_batch(self) -> tuple[torch.Tensor, ...]:
        while True:
            if self._iterator is None:
                self.loader.generator = self._epoch_generator(self.epoch)
                self._iterator = iter(self.loader)
                for _ in range(self.position):  # replay the epoch's draws up to the position
                    next(self._iterator)
            try:
                batch = next(self._iterator)
            except StopIteration:
                self.epoch, self.position, self._iterator = self.epoch + 1, 0, None
                continue
            self.position += 1
            return batch

    # -- one step ------------------------------------------------------------------------

    def lr_at(self, step: int) -> float:
        """The learning rate of step ``step`` (0-based): linear warmup, then constant."""
        return warmup_lr(step, self.config.lr, self.config.warmup_steps)

    @contextmanager
    def _dropout_rng(self) -> Iterator[None]:
        """Run with the global generator of ``self.device`` set from ``dropout_generator``."""
        cuda = self.device.type == "cuda"
        devices = [self.device.index if self.device.index is not None else 0] if cuda else []
        fork = torch.random.fork_rng(devices=devices, **({"device_type": "cuda"} if cuda else {}))
        with fork:
            if cuda:
                torch.cuda.set_rng_state(self.dropout_generator.get_state(), self.device)
            else:
                torch.set_rng_state(self.dropout_generator.get_state())
            yield
            state = torch.cuda.get_rng_state(self.device) if cuda else torch.get_rng_state()
            self.dropout_generator.set_state(state)

    def train_step(self) -> dict[str, Any]:
        """Take one step; returns ``{"loss", "grad_norm", "lr", "skipped"}`` (floats, bool).

        A non-finite loss or gradient norm skips the update (optimizer and EMA untouched).

        Raises:
            NonFiniteLossError: ``config.max_nonfinite_in_a_row`` steps in a row were skipped.
        """
        batch = self._next_batch()
        x0 = batch[0].to(self.device, non_blocking=True)
        y = batch[1].to(self.device, non_blocking=True) if len(batch) > 1 else None
        # t ~ U{1..T} and eps ~ N(0, I) for the whole global batch, then this rank's shard:
        # the same draws as a single process whatever the world size.
        t = torch.randint(
            1, self.diffusion.T + 1, (x0.shape[0],), generator=self.generator, device=self.device
        )
        eps = torch.randn(x0.shape, generator=self.generator, device=self.device, dtype=x0.dtype)
        images = x0.shape[0]
        if self.world_size > 1:
            x0, t, eps = (shard(v, self.rank, self.world_size) for v in (x0, t, eps))
            y = None if y is None else shard(y, self.rank, self.world_size)
        if x0.dim() == 4:  # images in the run's format (image_loader yields NHWC strides)
            layout = torch.channels_last if self.channels_last else torch.contiguous_format
            x0, eps = (v.contiguous(memory_format=layout) for v in (x0, eps))
        lr = self.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast)
        with self._dropout_rng():
            with autocast:
                losses = self.diffusion.training_losses(
                    self.forward, x0, t=t, eps=eps, y=y, num_bins=self.config.num_bins
                )
            loss = losses["loss"].float().mean()
            # always backward (every rank must join the gradient all-reduce): a non-finite
            # loss gives a non-finite gradient norm on every rank, and the step is skipped
            loss.backward()
            clip = self.config.grad_clip if self.config.grad_clip is not None else math.inf
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        mean_loss = loss.detach()
        if self.world_size > 1:  # the global batch's mean loss, the same on every rank
            torch.distributed.all_reduce(mean_loss)
            mean_loss = mean_loss / self.world_size
        loss_value, norm_value = float(mean_loss), float(grad_norm)
        skipped = not (math.isfinite(loss_value) and math.isfinite(norm_value))
        self.step += 1
        if skipped:
            self.optimizer.zero_grad(set_to_none=True)
            self.skipped += 1
            self.nonfinite_in_a_row += 1
            if self.nonfinite_in_a_row >= self.config.max_nonfinite_in_a_row:
                raise NonFiniteLossError(
                    f"{self.nonfinite_in_a_row} steps in a row (up to step {self.step}) had a "
                    f"non-finite loss ({loss_value}) or gradient norm ({norm_value}); the last "
                    f"good checkpoint is {find_latest_checkpoint(self.checkpoint_dir)}"
                )
        else:
            self.optimizer.step()
            self.ema.update(self.model)
            self.nonfinite_in_a_row = 0
            self._interval["loss"] += loss_value
            self._interval["grad_norm"] += norm_value
            self._interval["good"] += 1
        self._interval["images"] += images
        return {"loss": loss_value, "grad_norm": norm_value, "lr": lr, "skipped": skipped}

    # -- the loop --------------------------------------------------------------------------

    def train(self, steps: int | None = None) -> None:
        """Train until ``self.step == steps`` (default ``config.steps``), logging, sampling
        and checkpointing on the way; saves a checkpoint at the end."""
        steps = self.config.steps if steps is None else steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=steps, initial=min(self.step, steps), dynamic_ncols=True)
        c = self.config
        try:
            while self.step < steps:
                self.train_step()
                if self.step % c.log_every == 0:
                    record = self._log()
                    if bar is not None:
                        bar.set_postfix(loss=record["loss"], img_s=record["images_per_s"])
                if c.sample_every and self.step % c.sample_every == 0 and self.sample_fn:
                    with self.ema_model() as ema_model:
                        self.sample_fn(ema_model, self.step)
                if c.checkpoint_every and self.step % c.checkpoint_every == 0:
                    self.save()
                if bar is not None:
                    bar.update(1)
            if self.rank == 0 and self.saved_step != self.step:
                self.save()
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            latest = find_latest_checkpoint(self.checkpoint_dir)
            raise DiskFullError(err.errno, f"{err.strerror} at step {self.step}; the last good "
                                f"checkpoint is {latest}: free some space, then resume from it"
                                ) from err  # fmt: skip
        finally:
            if bar is not None:
                bar.close()

    def _log(self) -> dict[str, Any]:
        """Append the metrics of the steps since the last log (rank 0 only writes)."""
        now = time.perf_counter()
        interval, good = self._interval, self._interval["good"]
        record = {
            "step": self.step,
            "loss": interval["loss"] / good if good else None,
            "grad_norm": interval["grad_norm"] / good if good else None,
            "lr": self.lr_at(self.step - 1),
            "images_per_s": interval["images"] / max(now - self._interval_start, 1e-9),
            "skipped": self.skipped,
        }
        if self.rank == 0:
            self._write_record(record)
        self._interval = {"loss": 0.0, "grad_norm": 0.0, "good": 0, "images": 0}
        self._interval_start = now
        return record

    def _write_record(self, record: dict[str, Any]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        append_record(self.out_dir / METRICS_FILE, record)

    @contextmanager
    def ema_model(self) -> Iterator[nn.Module]:
        """The model holding the EMA weights, in eval mode; its own weights and mode are
        restored on exit. Use it for sampling and evaluation."""
        was_training = self.model.training
        with self.ema.swap(self.model) as model:
            model.eval()
            try:
                yield model
            finally:
                model.train(was_training)

    # -- checkpoints ---------------------------------------------------------------------

    def _generators(self) -> dict[str, torch.Generator]:
        return {"diffusion": self.generator, "dropout": self.dropout_generator}

    def save(self) -> Path | None:
        """Save a checkpoint of the current state in ``out_dir/checkpoints/step_N``.

        Only rank 0 saves (the others return None); its dropout generator is the one saved.
        """
        if self.rank != 0:
            return None
        data_state = {
            "epoch": self.epoch,
            "position": self.position,
            "skipped": self.skipped,
            "nonfinite_in_a_row": self.nonfinite_in_a_row,
        }
        self.saved_step = self.step
        return save_checkpoint(
            self.checkpoint_dir, model=self.model, ema=self.ema, optimizer=self.optimizer,
            step=self.step, data_state=data_state,
            rng_state=capture_rng_state(self._generators()),
            config={**self.config.to_dict(), "run": self.run_info}, keep_last=self.config.keep_last,
        )  # fmt: skip

    def load(self, path: str | Path | None = None) -> int:
        """Restore the latest checkpoint (or ``path``) and return its step.

        The saved trajectory settings (`TRAJECTORY_KEYS`) must equal this config's; the
        others (steps, logging and checkpoint intervals) may change. Lines of
        ``metrics.jsonl`` after the checkpoint's step (from a run that crashed) are dropped,
        and so is a torn last line. Resuming first finishes an interrupted clean-up
        (`repair_checkpoints`) and passes over a latest checkpoint that does not load.

        Raises:
            CheckpointNotFoundError: no checkpoint.
            CheckpointError: no checkpoint loads.
            ValueError: a trajectory setting differs from the saved one.
        """
        parts = dict(model=self.model, ema=self.ema, optimizer=self.optimizer,
                     map_location=self.device)  # fmt: skip
        if path is None:
            if self.rank == 0:
                repair_checkpoints(self.checkpoint_dir, self.config.keep_last)
            state = load_latest_checkpoint(self.checkpoint_dir, **parts)
        else:
            state = load_checkpoint(path, **parts)
        saved, current = state["config"] or {}, self.config.to_dict()
        differences = [
            f"{key}: saved {saved.get(key)!r}, given {current[key]!r}"
            for key in TRAJECTORY_KEYS
            if _plain(saved.get(key)) != _plain(current[key])
        ]
        if differences:
            raise ValueError("config differs from the checkpoint's: " + "; ".join(differences))
        data = state["data_state"]
        self.step = self.saved_step = state["step"]
        self.epoch, self.position = int(data["epoch"]), int(data["position"])
        self.skipped = int(data["skipped"])
        self.nonfinite_in_a_row = int(data["nonfinite_in_a_row"])
        self._iterator = None
        restore_rng_state(state["rng_state"], self._generators())
        if self.rank == 0:
            trim_log(self.out_dir / METRICS_FILE, self.step)
        return self.step


def _plain(value: Any) -> Any:
    """Tuples as lists, so that a config read back compares equal to the dataclass's."""
    return list(value) if isinstance(value, tuple) else value
