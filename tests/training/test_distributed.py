"""Tests of data-parallel training: two Gloo processes on the CPU against one process."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from minidiff.data import toy_dataset
from minidiff.diffusion.gaussian import GaussianDiffusion
from minidiff.nn import ToyMLP
from minidiff.process.schedule import linear_schedule
from minidiff.training import TrainConfig, Trainer
from minidiff.training.distributed import (
    cleanup_distributed,
    setup_distributed,
    shard,
)

STEPS = 4
CONFIG = TrainConfig(
    batch_size=8, steps=STEPS, warmup_steps=2, log_every=2, checkpoint_every=0, lr=1e-2,
    ema_decay=0.5, num_bins=None, seed=11,
)  # fmt: skip


def make_trainer(out_dir) -> Trainer:
    model = ToyMLP(hidden=(32, 32), embed_dim=8, generator=torch.Generator().manual_seed(0))
    diffusion = GaussianDiffusion(linear_schedule(50))
    data = toy_dataset("moons", 20, 0)  # 2 global batches per epoch: crosses an epoch
    return Trainer(model, diffusion, data, CONFIG, out_dir=out_dir)


def _worker(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
    )  # fmt: skip
    torch.set_num_threads(1)
    context = setup_distributed()
    try:
        assert context.backend == "gloo" and context.world_size == 2
        trainer = make_trainer(out_dir)
        seen = []  # the batch sizes the model sees: half the global batch
        trainer.model.register_forward_pre_hook(lambda module, args: seen.append(len(args[0])))
        trainer.train()
        weights = {name: t.clone() for name, t in trainer.model.state_dict().items()}
        shadow = {name: t.clone() for name, t in trainer.ema.shadow.items()}
        torch.save(
            {"model": weights, "ema": shadow, "seen": seen}, os.path.join(out_dir, f"rank{rank}.pt")
        )
    finally:
        cleanup_distributed()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path):
    """Two ranks, each training on its half of every global batch (DDP averaging the
    gradients), end with the weights and EMA of one process on the whole batch, to float32
    round-off: the all-reduce sums the two half-batch gradients in another order than the
    single process's mean over the batch, so the results agree to ~1e-7 relative, not bit
    for bit. Only rank 0 writes the log and the checkpoint."""
    single = make_trainer(tmp_path / "single")
    single.train()
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    for rank in (0, 1):
        saved = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert saved["seen"] == [CONFIG.batch_size // 2] * STEPS
        for name, tensor in single.model.state_dict().items():
            torch.testing.assert_close(saved["model"][name], tensor, rtol=1e-6, atol=1e-6)
        for name, tensor in single.ema.shadow.items():
            torch.testing.assert_close(saved["ema"][name], tensor, rtol=1e-6, atol=1e-6)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [2, 4]  # one writer, no duplicates
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*")) == ["step_000004"]


def test_setup_without_torchrun_variables_is_single_process(monkeypatch):
    """Without WORLD_SIZE, setup_distributed initialises nothing: rank 0 of 1."""
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    context = setup_distributed()
    assert (context.rank, context.world_size, context.backend) == (0, 1, None)
    assert context.is_main and not torch.distributed.is_initialized()


def test_bad_rank_raises_value_error(monkeypatch):
    """A RANK outside 0..WORLD_SIZE-1 raises a ValueError naming RANK."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="RANK"):
        setup_distributed()


def test_shards_partition_the_global_batch_in_order():
    """Concatenating the shards of ranks 0..W-1 gives back the global batch."""
    batch = torch.arange(12)
    assert torch.equal(torch.cat([shard(batch, r, 3) for r in range(3)]), batch)
    with pytest.raises(ValueError, match="multiple"):
        shard(batch, 0, 5)
