"""Layer 4: training in PyTorch.

The training loop of Ho et al. (2020), Algorithm 1, with exact resumption (`Trainer`,
`TrainConfig`), the exponential moving average of the weights (`EMA`), crash-safe
checkpoints, verified by content, that load without unsafe unpickling (`save_checkpoint`,
`load_checkpoint`, `find_latest_checkpoint`, `repair_checkpoints`), the capture of
random-number-generator states (`capture_rng_state`, `restore_rng_state`), and
data-parallel training through torch.distributed (`setup_distributed`).
"""

from minidiff.training.checkpoint import (
    CheckpointError,
    CheckpointNotFoundError,
    find_latest_checkpoint,
    load_checkpoint,
    load_latest_checkpoint,
    read_checkpoint_config,
    repair_checkpoints,
    save_checkpoint,
)
from minidiff.training.checkpoint_files import DiskFullError
from minidiff.training.config import (
    MEMORY_FORMATS,
    PRECISIONS,
    TrainConfig,
    resolve_memory_format,
    resumable,
    warmup_lr,
)
from minidiff.training.distributed import (
    DistributedContext,
    cleanup_distributed,
    setup_distributed,
)
from minidiff.training.ema import EMA
from minidiff.training.rng import capture_rng_state, restore_rng_state
from minidiff.training.trainer import METRIC_KEYS, NonFiniteLossError, Trainer

__all__ = [
    "EMA",
    "MEMORY_FORMATS",
    "METRIC_KEYS",
    "PRECISIONS",
    "CheckpointError",
    "CheckpointNotFoundError",
    "DiskFullError",
    "DistributedContext",
    "NonFiniteLossError",
    "TrainConfig",
    "Trainer",
    "capture_rng_state",
    "cleanup_distributed",
    "find_latest_checkpoint",
    "load_checkpoint",
    "load_latest_checkpoint",
    "read_checkpoint_config",
    "repair_checkpoints",
    "resolve_memory_format",
    "restore_rng_state",
    "resumable",
    "save_checkpoint",
    "setup_distributed",
    "warmup_lr",
]
