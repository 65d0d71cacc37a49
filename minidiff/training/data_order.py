"""The order in which a training run sees its data, reproducible and resumable.

Epoch e is shuffled by a generator seeded from ``(seed, e)`` (`minidiff.training.rng.
stream_seed`), so the position in the data is the pair (epoch, batches consumed) and is
restored exactly by replaying the epoch's draws up to that batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from minidiff.data import BatchLoader
from minidiff.training.rng import DATA_STREAM, stream_seed

__all__ = ["DataOrder"]


class DataOrder:
    """The batches of a run's data, epoch after epoch, in the order of ``seed``.

    Args:
        data: a `BatchLoader` (its batch size must be ``batch_size``; its generator is
            replaced by the per-epoch generators), or a tensor or sequence of aligned
            tensors (x_0 first, labels second), shuffled with ``drop_last=True``.
        batch_size: examples per batch.
        seed: the run's seed.

    Attributes:
        epoch: the current epoch; ``position``: the batches consumed in it.
    """

    def __init__(
        self, data: BatchLoader | torch.Tensor | Sequence[torch.Tensor], batch_size: int, seed: int
    ) -> None:
        if isinstance(data, BatchLoader):
            if data.batch_size != batch_size:
                raise ValueError(
                    f"data has batch_size {data.batch_size}, config.batch_size is {batch_size}"
                )
            loader = data
        else:
            tensors = (data,) if isinstance(data, torch.Tensor) else tuple(data)
            loader = BatchLoader(tensors, batch_size, drop_last=True)
        if len(loader) == 0:
            raise ValueError(f"data has fewer items than one batch of {batch_size}")
        self.loader, self.seed = loader, seed
        self.epoch, self.position = 0, 0
        self._iterator: Iterator[tuple[torch.Tensor, ...]] | None = None

    def restore(self, epoch: int, position: int) -> None:
        """Continue at batch ``position`` of epoch ``epoch``."""
        self.epoch, self.position, self._iterator = int(epoch), int(position), None

    def _epoch_generator(self, epoch: int) -> torch.Generator:
        old = self.loader.generator
        device = old.device if old is not None else torch.device("cpu")
        return torch.Generator(device).manual_seed(stream_seed(self.seed, DATA_STREAM, epoch))

    def next_batch(self) -> tuple[torch.Tensor, ...]:
        """The next batch (a tuple of tensors), starting a new epoch when one runs out."""
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
