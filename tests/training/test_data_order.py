"""Tests of `minidiff.training.data_order`: each epoch a permutation fixed by (seed, epoch),
and a restored position that continues exactly where the order was."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minidiff.data import BatchLoader
from minidiff.training.data_order import DataOrder


@settings(max_examples=20, deadline=None)
@given(n=st.integers(4, 40), batch=st.integers(1, 4), seed=st.integers(0, 2**31),
       stop=st.integers(0, 30))  # fmt: skip
def test_a_restored_order_continues_exactly(n, batch, seed, stop):
    """Each epoch uses every full batch of a permutation once; a fresh DataOrder restored
    to (epoch, position) after ``stop`` batches yields the same batches as the original."""
    data = torch.arange(n)
    order = DataOrder(data, batch, seed)
    per_epoch = n // batch
    epoch = torch.cat([order.next_batch()[0] for _ in range(per_epoch)])
    assert len(set(epoch.tolist())) == per_epoch * batch
    for _ in range(stop):
        order.next_batch()
    again = DataOrder(data, batch, seed)
    again.restore(order.epoch, order.position)
    for _ in range(per_epoch + 1):
        assert torch.equal(order.next_batch()[0], again.next_batch()[0])


def test_bad_data_is_refused():
    """A loader of another batch size, or fewer items than one batch: ValueError."""
    with pytest.raises(ValueError, match="batch_size 2, config.batch_size is 3"):
        DataOrder(BatchLoader((torch.zeros(8),), 2), 3, 0)
    with pytest.raises(ValueError, match="fewer items than one batch of 9"):
        DataOrder(torch.zeros(8), 9, 0)
