"""The training loop of Ho et al. (2020), Algorithm 1, with exact resumption.

Each step draws a batch x_0, a step t ~ Uniform{1..T} and noise eps ~ N(0, I), and takes
an AdamW step on the loss of `GaussianDiffusion.training_losses`, with the learning rate
warmed up linearly over the first ``warmup_steps`` steps and then held constant, the
gradient clipped to a global norm of 1, and an EMA of the weights (decay 0.9999) updated
after each step; samples and evaluations use the EMA weights (Ho et al. 2020, Appendix B).

The same loop trains any process that names its random draws, drawn for the global batch
(`minidiff.training.objectives.training_draws`: t and eps for the Gaussian diffusion).

Reproducibility: every random draw comes from a generator seeded from ``config.seed``:
``generator`` draws t and eps; the data order is `minidiff.training.data_order.DataOrder`'s
(epoch e shuffled from ``(seed, e)``); dropout draws from the global torch generator, so
each step runs inside `minidiff.training.rng.global_rng_from` the trainer's own
``dropout_generator``: the caller's global state is left alone, and the dropout masks
depend only on the seed.

A checkpoint holds the model, the EMA, the optimizer, the step, the data position, the
states of all these generators, the config and the schedule's betas, so that N steps, a
save, a fresh trainer resumed from the checkpoint and N more steps give bit-identical
weights to 2N steps in one go (on the same device and software).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from minidiff.data import BatchLoader
from minidiff.diffusion.gaussian import GaussianDiffusion
from minidiff.training.checkpoint import find_latest_checkpoint, save_checkpoint
from minidiff.training.checkpoint_files import check_disk_full
from minidiff.training.conditioning import drop_for_guidance, null_condition_of
from minidiff.training.config import (
    TrainConfig,
    in_memory_format,
    resolve_autocast,
    resolve_memory_format,
    warmup_lr,
)
from minidiff.training.data_order import DataOrder
from minidiff.training.distributed import current_rank_and_world, shard_step
from minidiff.training.ema import EMA
from minidiff.training.metrics import (
    METRIC_KEYS,
    METRICS_FILE,
    MetricsInterval,
    append_record,
    trim_log,
)
from minidiff.training.objectives import training_draws
from minidiff.training.resume import (
    BETA_KEY,
    check_schedule,
    load_resume_state,
    schedule_record,
    trajectory_differences,
)
from minidiff.training.rng import (
    DROPOUT_STREAM,
    capture_rng_state,
    global_rng_from,
    restore_rng_state,
    stream_seed,
)

__all__ = ["CHECKPOINT_DIR", "METRICS_FILE", "METRIC_KEYS", "NonFiniteLossError", "Trainer"]

CHECKPOINT_DIR = "checkpoints"


class NonFiniteLossError(RuntimeError):
    """Too many steps in a row had a non-finite loss or gradient norm."""


class Trainer:
    """Train a denoiser with `GaussianDiffusion.training_losses` (see the module doc).

    Args:
        model: the denoiser ``model(xt, t)`` (or ``model(xt, t, y)`` for labelled or
            captioned data).
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
        self.data_order = DataOrder(data, config.batch_size, config.seed)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, betas=config.betas,
            weight_decay=config.weight_decay,
        )  # fmt: skip
        self.ema = EMA(self.model, decay=config.ema_decay)
        self.generator = torch.Generator(self.device).manual_seed(config.seed)
        dropout_seed = stream_seed(config.seed, DROPOUT_STREAM, self.rank)
        self.dropout_generator = torch.Generator(self.device).manual_seed(dropout_seed)
        self.null_condition = null_condition_of(self.model)  # dropped to: p_uncond
        self.autocast = resolve_autocast(config.precision, self.device)
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
        self._interval = MetricsInterval()
        if resume:
            self.load()

    @classmethod
    def resume(cls, out_dir, model, diffusion, data, config, **kwargs) -> Trainer:
        """A trainer restored from the latest checkpoint in ``out_dir`` (see `load`)."""
        return cls(model, diffusion, data, config, out_dir=out_dir, resume=True, **kwargs)

    @property
    def epoch(self) -> int:
        """The current epoch of the data order."""
        return self.data_order.epoch

    @property
    def position(self) -> int:
        """The batches consumed in the current epoch."""
        return self.data_order.position

    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(x_0, condition or None) of the next batch, on the device, each condition (a
        label, a caption) the null one with probability p_uncond (Ho & Salimans 2022,
        alg. 1)."""
        batch = self.data_order.next_batch()
        x0 = batch[0].to(self.device, non_blocking=True)
        y = batch[1].to(self.device, non_blocking=True) if len(batch) > 1 else None
        return x0, drop_for_guidance(y, self.config.p_uncond, self.null_condition,
                                     self.generator)

    # -- one step ------------------------------------------------------------------------

    def lr_at(self, step: int) -> float:
        """The learning rate of step ``step`` (0-based): linear warmup, then constant."""
        return warmup_lr(step, self.config.lr, self.config.warmup_steps)

    def train_step(self) -> dict[str, Any]:
        """One step of Algorithm 1 of Ho et al. (2020); returns ``{"loss", "grad_norm",
        "lr", "skipped"}`` (floats, bool).

        A non-finite loss or gradient norm skips the update (optimizer and EMA untouched).

        Raises:
            NonFiniteLossError: ``config.max_nonfinite_in_a_row`` steps in a row were skipped.
        """
        # 2. x_0 ~ q(x_0): the next batch of the data order
        x0, y = self._next_batch()
        # 3. t ~ Uniform({1, ..., T}) and 4. eps ~ N(0, I) (or a discrete process's draws),
        # drawn for the whole global batch before this rank takes its shard: the same draws
        # as one process, whatever the world size
        draws = training_draws(self.diffusion, x0, self.generator)
        images = x0.shape[0]
        x0, draws, y = shard_step(x0, draws, y, self.rank, self.world_size)  # this rank's
        x0, draws = in_memory_format(x0, draws, self.channels_last)
        # 5. a gradient step on the loss at x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t)
        # eps: || eps - eps_theta(x_t, t) ||^2 for L_simple (eq. 14), the bound for the others
        lr = self.lr_at(self.step)
        loss, grad_norm = self._loss_and_gradient(x0, draws, y, lr)
        skipped = self._update(loss, grad_norm)
        if skipped:  # the images count towards the speed, the loss does not
            self._interval.add(images)
        else:
            self._interval.add(images, loss, grad_norm)
        return {"loss": loss, "grad_norm": grad_norm, "lr": lr, "skipped": skipped}

    def _loss_and_gradient(self, x0, draws, y, lr: float) -> tuple[float, float]:
        """The mean loss of the global batch and the gradient's norm before clipping; the
        gradient is left in the parameters, clipped to ``config.grad_clip``."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast)
        with global_rng_from(self.dropout_generator, self.device):
            with autocast:
                losses = self.diffusion.training_losses(
                    self.forward, x0, y=y, num_bins=self.config.num_bins, **draws
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
        return float(mean_loss), float(grad_norm)

    def _update(self, loss: float, grad_norm: float) -> bool:
        """The optimizer step and the EMA update, or a skip when the loss or gradient norm
        is not finite; returns whether the step was skipped."""
        skipped = not (math.isfinite(loss) and math.isfinite(grad_norm))
        self.step += 1
        if skipped:
            self.optimizer.zero_grad(set_to_none=True)
            self.skipped += 1
            self.nonfinite_in_a_row += 1
            if self.nonfinite_in_a_row >= self.config.max_nonfinite_in_a_row:
                raise NonFiniteLossError(
                    f"{self.nonfinite_in_a_row} steps in a row (up to step {self.step}) had a "
                    f"non-finite loss ({loss}) or gradient norm ({grad_norm}); the last "
                    f"good checkpoint is {find_latest_checkpoint(self.checkpoint_dir)}"
                )
        else:
            self.optimizer.step()
            self.ema.update(self.model)
            self.nonfinite_in_a_row = 0
        return skipped

    # -- the loop --------------------------------------------------------------------------

    def train(self, steps: int | None = None, *, stop: Callable[[int], bool] | None = None) -> None:
        """Train until ``self.step == steps`` (default ``config.steps``), logging, sampling
        and checkpointing on the way; saves a checkpoint at the end. ``stop(step)``, if
        given, is asked after each step and ends training early when it returns True (a
        time budget, `minidiff.training.budget.Budget`); the metrics of the steps since
        the last log line are then logged."""
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
                if stop is not None and stop(self.step):
                    if self.step % c.log_every:
                        self._log()
                    break
            if self.rank == 0 and self.saved_step != self.step:
                self.save()
        except OSError as err:
            check_disk_full(err, self.checkpoint_dir, self.step)
            raise
        finally:
            if bar is not None:
                bar.close()

    def _log(self) -> dict[str, Any]:
        """Append the metrics of the steps since the last log (rank 0 only writes)."""
        record = self._interval.record(self.step, self.lr_at(self.step - 1), self.skipped)
        if self.rank == 0:
            append_record(self.out_dir / METRICS_FILE, record)
        return record

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
            config={**self.config.to_dict(), "run": self.run_info,
                    BETA_KEY: schedule_record(self.diffusion)},
            keep_last=self.config.keep_last,
        )  # fmt: skip

    def load(self, path: str | Path | None = None) -> int:
        """Restore the latest checkpoint (or ``path``) and return its step.

        The saved trajectory settings (`TRAJECTORY_KEYS`) must equal this config's; the
        others (steps, logging and checkpoint intervals) may change. The saved betas must
        be this diffusion's (`check_schedule`). The checkpoint: `load_resume_state`. Lines
        of ``metrics.jsonl`` after its step (from a run that crashed) and a torn last line
        are dropped (`trim_log`).

        Raises:
            CheckpointNotFoundError: no checkpoint.
            CheckpointError: no checkpoint loads.
            ValueError: a trajectory setting or the schedule differs from the saved one.
        """
        state, path = load_resume_state(
            self.checkpoint_dir, path, repair=self.rank == 0, keep_last=self.config.keep_last,
            model=self.model, ema=self.ema, optimizer=self.optimizer, map_location=self.device,
        )  # fmt: skip
        differences = trajectory_differences(state["config"], self.config.to_dict())
        if differences:
            raise ValueError("config differs from the checkpoint's: " + "; ".join(differences))
        check_schedule(state["config"], self.diffusion, f"the checkpoint {path}")
        data = state["data_state"]
        self.step = self.saved_step = state["step"]
        self.data_order.restore(data["epoch"], data["position"])
        self.skipped = int(data["skipped"])
        self.nonfinite_in_a_row = int(data["nonfinite_in_a_row"])
        restore_rng_state(state["rng_state"], self._generators())
        if self.rank == 0:
            trim_log(self.out_dir / METRICS_FILE, self.step)
        return self.step
