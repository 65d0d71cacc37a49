"""The settings of a training run (`TrainConfig`) and the learning-rate warmup.

The defaults are the DDPM CIFAR-10 run of Ho et al. (2020), Appendix B.
"""

from __future__ import annotations

import math
from dataclasses import Field, asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    import torch

__all__ = [
    "MEMORY_FORMATS", "MemoryFormat", "PRECISIONS", "Precision", "TRAJECTORY_KEYS",
    "TrainConfig", "in_memory_format", "is_resumable", "resolve_autocast",
    "resolve_memory_format", "resumable", "warmup_lr",
]  # fmt: skip

Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)
# "auto": channels_last on CUDA (where cuDNN's NHWC kernels are faster), contiguous elsewhere
MemoryFormat = Literal["auto", "channels_last", "contiguous"]
MEMORY_FORMATS: tuple[str, ...] = get_args(MemoryFormat)
RESUMABLE = "resumable"  # the field-metadata key of `resumable`


def resumable(default: Any) -> Any:
    """A dataclass field with ``default`` that a resumed run may change: it leaves the
    training trajectory as it is (how long to train, how often to log, save or sample)."""
    return field(default=default, metadata={RESUMABLE: True})


def is_resumable(f: Field) -> bool:
    """Whether the dataclass field ``f`` was declared with `resumable`."""
    return bool(f.metadata.get(RESUMABLE, False))


@dataclass(frozen=True)
class TrainConfig:
    """The settings of a training run; the defaults are the DDPM CIFAR-10 run.

    Fields declared with `resumable` may change when a run is resumed; the others
    (`TRAJECTORY_KEYS`) must keep their saved values.
    """

    lr: float = 2e-4  # Ho et al. (2020), Appendix B: 2e-4 for CIFAR-10
    betas: tuple[float, float] = (0.9, 0.999)  # Adam's (beta1, beta2), Kingma & Ba defaults
    weight_decay: float = 0.0  # DDPM uses plain Adam: no decoupled weight decay
    warmup_steps: int = 5000  # linear LR warmup over 5000 steps (the DDPM code)
    grad_clip: float | None = 1.0  # clip the global gradient norm to 1 (the DDPM code); None: off
    ema_decay: float = 0.9999  # Appendix B: EMA decay 0.9999
    batch_size: int = 128  # Appendix B: batch size 128 for CIFAR-10
    steps: int = resumable(800_000)  # Appendix B: 800k steps for CIFAR-10
    log_every: int = resumable(100)  # one metrics.jsonl line every this many steps
    sample_every: int = resumable(0)  # call the sample callback this often; 0: never
    checkpoint_every: int = resumable(5000)  # save a checkpoint this often; 0: at the end
    keep_last: int | None = resumable(3)  # keep this many checkpoints; None: all
    seed: int = 0  # seeds every generator of the run
    max_nonfinite_in_a_row: int = resumable(5)  # stop after this many skipped steps in a row
    precision: Precision = "auto"  # auto: bf16 autocast on CUDA if supported, else fp32
    memory_format: MemoryFormat = resumable("auto")  # auto: channels_last on CUDA
    compile: bool = resumable(False)  # wrap the model's forward in torch.compile
    num_bins: int | None = 256  # 8-bit data for the L_0 decoder; None for continuous data
    # labelled data only: each label becomes the null label with this probability
    # (Ho & Salimans 2022, alg. 1; = minidiff.nn.conditioning.P_UNCOND)
    p_uncond: float = 0.1

    def __post_init__(self) -> None:
        for name in ("lr", "ema_decay"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not 0.0 <= self.ema_decay <= 1.0:
            raise ValueError(f"ema_decay must be in [0, 1], got {self.ema_decay!r}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip!r}")
        positive = ("batch_size", "log_every", "max_nonfinite_in_a_row")
        non_negative = ("warmup_steps", "steps", "sample_every", "checkpoint_every", "seed")
        for name in positive + non_negative:
            value = getattr(self, name)
            low = 1 if name in positive else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.keep_last is not None and (
            not isinstance(self.keep_last, int) or self.keep_last < 1
        ):
            raise ValueError(
                f"keep_last must be a positive integer or None, got {self.keep_last!r}"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.memory_format not in MEMORY_FORMATS:
            raise ValueError(
                f"memory_format must be one of {MEMORY_FORMATS}, got {self.memory_format!r}"
            )
        p = self.p_uncond
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"p_uncond must be a number in [0, 1], got {p!r}")
        if self.num_bins is not None and (not isinstance(self.num_bins, int) or self.num_bins < 2):
            raise ValueError(f"num_bins must be an integer >= 2 or None, got {self.num_bins!r}")

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain data (what a checkpoint stores)."""
        return asdict(self)


# The settings that change the trajectory (those not marked `resumable`): a resumed run
# must use the saved values.
TRAJECTORY_KEYS = tuple(f.name for f in fields(TrainConfig) if not is_resumable(f))


def resolve_memory_format(memory_format: str, device_type: str) -> str:
    """The memory format a run uses: ``"channels_last"`` or ``"contiguous"``.

    Args:
        memory_format: one of `MEMORY_FORMATS`; ``"auto"`` is channels_last on CUDA
            (NHWC convolutions run faster there, above all with bf16 tensor cores) and
            contiguous (NCHW) elsewhere.
        device_type: the device's type, e.g. ``"cuda"`` or ``"cpu"``.
    """
    if memory_format == "auto":
        return "channels_last" if device_type == "cuda" else "contiguous"
    elif memory_format in ("channels_last", "contiguous"):
        return memory_format
    else:
        raise ValueError(f"memory_format must be one of {MEMORY_FORMATS}, got {memory_format!r}")


def in_memory_format(
    x0: torch.Tensor, draws: dict[str, torch.Tensor], channels_last: bool
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Images x_0 (B, C, H, W) and the draws of their shape (eps) in the run's memory
    format (`resolve_memory_format`; `minidiff.data.image_loader` yields NHWC strides);
    other data as it is."""
    import torch

    if x0.dim() != 4:
        return x0, draws
    layout = torch.channels_last if channels_last else torch.contiguous_format
    x0 = x0.contiguous(memory_format=layout)
    return x0, {k: v.contiguous(memory_format=layout) if v.shape == x0.shape else v
                for k, v in draws.items()}  # fmt: skip


def resolve_autocast(precision: str, device: torch.device) -> bool:
    """Whether a run with ``precision`` (one of `PRECISIONS`) on ``device`` computes under
    bfloat16 autocast: "fp32" never; "bf16" always (refused on a CUDA device without
    bfloat16); "auto" on CUDA devices that support it."""
    import torch

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


def warmup_lr(step: int, lr: float, warmup_steps: int) -> float:
    """The learning rate of step ``step`` (0-based): ``lr * min(1, (step + 1) / warmup)``."""
    if warmup_steps == 0:
        return lr
    return lr * min(1.0, (step + 1) / warmup_steps)
