"""Layer 4: training in PyTorch.

The exponential moving average of the weights (`EMA`), crash-safe checkpoints that load
without unsafe unpickling (`save_checkpoint`, `load_checkpoint`,
`find_latest_checkpoint`), and the capture of random-number-generator states for exact
resumption (`capture_rng_state`, `restore_rng_state`).
"""

from minidiff.training.checkpoint import (
    CheckpointError,
    CheckpointNotFoundError,
    find_latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from minidiff.training.ema import EMA
from minidiff.training.rng import capture_rng_state, restore_rng_state

__all__ = [
    "EMA",
    "CheckpointError",
    "CheckpointNotFoundError",
    "save_checkpoint",
    "load_checkpoint",
    "find_latest_checkpoint",
    "capture_rng_state",
    "restore_rng_state",
]
