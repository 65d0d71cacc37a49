"""Tests of the training loop: exact resumption, non-finite steps, logs, warmup, EMA, bf16."""

from __future__ import annotations

import dataclasses
import errno
import json
import shutil
import warnings

import pytest
import torch
from torch import nn

import minidiff.training.checkpoint as checkpoint_module
from minidiff.data import BatchLoader, toy_dataset
from minidiff.diffusion.gaussian import GaussianDiffusion
from minidiff.process.schedule import linear_schedule
from minidiff.training import (
    METRIC_KEYS,
    CheckpointError,
    NonFiniteLossError,
    TrainConfig,
    Trainer,
    find_latest_checkpoint,
    load_checkpoint,
)
from minidiff.training.trainer import warmup_lr
from tests.training.test_checkpoint import _Crash, _instrument

T = 20


class DropoutDenoiser(nn.Module):
    """A small eps-predictor of 2-D points with dropout (exercises the global RNG)."""

    def __init__(self, seed: int = 0, p: float = 0.2) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.inp = nn.Linear(3, 32)
        self.out = nn.Linear(32, 2)
        self.dropout = nn.Dropout(p)
        with torch.no_grad():
            for param in self.parameters():
                param.copy_(torch.randn(param.shape, generator=g) * 0.3)
        self.calls = 0
        self.nan_calls: set[int] = set()

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        h = torch.cat([x, (t.to(x.dtype) / T)[:, None]], dim=1)
        out = self.out(self.dropout(torch.nn.functional.silu(self.inp(h))))
        if self.calls in self.nan_calls:
            out = out * float("nan")
        return out


def make_trainer(out_dir, *, resume=False, model=None, data=None, **overrides):
    """A tiny CPU run: 10 points, batches of 4 (two per epoch, so epochs roll over)."""
    settings = dict(
        batch_size=4, steps=8, warmup_steps=3, log_every=2, checkpoint_every=0, keep_last=None,
        ema_decay=0.9, lr=1e-2, num_bins=None, seed=3,
    )  # fmt: skip
    config = TrainConfig(**{**settings, **overrides})
    model = DropoutDenoiser() if model is None else model
    data = toy_dataset("moons", 10, 0) if data is None else data
    diffusion = GaussianDiffusion(linear_schedule(T))
    return Trainer(model, diffusion, data, config, out_dir=out_dir, resume=resume)


def optimizer_tensors(trainer):
    state = trainer.optimizer.state_dict()["state"]
    return [tensor for key in sorted(state) for tensor in state[key].values()]


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    """2N steps in one go equal N steps, a save, a fresh resumed trainer and N more steps,
    bit for bit (model, EMA, optimizer), with dropout drawing from the global RNG and the
    data order crossing epochs: every random state is saved and restored."""
    n = 5
    straight = make_trainer(tmp_path / "a")
    straight.train(2 * n)

    first = make_trainer(tmp_path / "b")
    first.train(n)  # saves step_000005 at the end
    torch.manual_seed(12345)  # the caller's global RNG must not matter
    resumed = Trainer.resume(
        tmp_path / "b", DropoutDenoiser(seed=99), first.diffusion, toy_dataset("moons", 10, 0),
        first.config,
    )  # fmt: skip
    assert resumed.step == n
    resumed.train(2 * n)

    pairs = zip(
        straight.model.state_dict().values(), resumed.model.state_dict().values(), strict=True
    )
    for a, b in pairs:
        assert torch.equal(a, b)
    for name, tensor in straight.ema.shadow.items():
        assert torch.equal(tensor, resumed.ema.shadow[name])
    for a, b in zip(optimizer_tensors(straight), optimizer_tensors(resumed), strict=True):
        assert torch.equal(a, b)
    assert straight.epoch == resumed.epoch and straight.position == resumed.position


def test_training_leaves_the_callers_global_rng_alone(tmp_path):
    """Dropout draws from the trainer's own generator inside fork_rng, so the global torch
    RNG is the same after training as before."""
    trainer = make_trainer(tmp_path)
    torch.manual_seed(7)
    before = torch.get_rng_state()
    for _ in range(3):
        trainer.train_step()
    assert torch.equal(torch.get_rng_state(), before)


def test_nonfinite_steps_are_skipped_and_counted(tmp_path):
    """A NaN loss at one step leaves the weights, the EMA and the optimizer untouched,
    counts one skipped step, and training goes on."""
    model = DropoutDenoiser()
    model.nan_calls = {3}
    trainer = make_trainer(tmp_path, model=model)
    trainer.train_step()
    trainer.train_step()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    shadow = {k: v.clone() for k, v in trainer.ema.shadow.items()}
    record = trainer.train_step()
    assert record["skipped"] and trainer.skipped == 1 and trainer.step == 3
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(shadow[k], v) for k, v in trainer.ema.shadow.items())
    assert trainer.optimizer.state_dict()["state"][0]["step"] == 2
    record = trainer.train_step()
    assert not record["skipped"] and trainer.nonfinite_in_a_row == 0


def test_k_nonfinite_steps_in_a_row_raise_and_keep_the_last_checkpoint(tmp_path):
    """max_nonfinite_in_a_row NaN steps in a row raise NonFiniteLossError; nothing is saved
    after the last good checkpoint, which still loads."""
    model = DropoutDenoiser()
    model.nan_calls = {5, 6, 7}
    trainer = make_trainer(tmp_path, model=model, checkpoint_every=4, max_nonfinite_in_a_row=3)
    with pytest.raises(NonFiniteLossError, match="3 steps in a row"):
        trainer.train(20)
    assert trainer.step == 7 and trainer.skipped == 3
    latest = find_latest_checkpoint(tmp_path / "checkpoints")
    assert latest is not None and latest.name == "step_000004"
    state = load_checkpoint(latest, model=DropoutDenoiser(seed=5))
    assert state["step"] == 4


def test_metrics_log_has_one_line_per_log_step_with_the_documented_keys(tmp_path):
    """metrics.jsonl holds one JSON object per log step, with exactly METRIC_KEYS."""
    model = DropoutDenoiser()
    model.nan_calls = {3}
    trainer = make_trainer(tmp_path, model=model, log_every=2)
    trainer.train(6)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["step"] for r in records] == [2, 4, 6]
    assert all(set(r) == set(METRIC_KEYS) for r in records)
    assert [r["skipped"] for r in records] == [0, 1, 1]
    assert all(r["images_per_s"] > 0 and r["loss"] > 0 and r["grad_norm"] > 0 for r in records)


def test_lr_warms_up_linearly_then_stays_constant(tmp_path):
    """Step s (0-based) uses lr * min(1, (s + 1) / warmup_steps) (linear warmup, Ho et al.)."""
    trainer = make_trainer(tmp_path, lr=0.5, warmup_steps=4)
    used = [trainer.train_step()["lr"] for _ in range(6)]
    assert used == [0.125, 0.25, 0.375, 0.5, 0.5, 0.5]
    assert trainer.optimizer.param_groups[0]["lr"] == 0.5
    assert warmup_lr(0, 0.5, 0) == 0.5


def test_ema_model_holds_the_ema_weights_and_restores_the_model(tmp_path):
    """Inside ema_model() the network holds the EMA shadow in eval mode; after it, its own
    weights and training mode are back."""
    trainer = make_trainer(tmp_path)
    for _ in range(3):
        trainer.train_step()
    own = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    assert any(not torch.equal(own[k], v) for k, v in trainer.ema.shadow.items())
    with trainer.ema_model() as model:
        assert not model.training
        for name, tensor in model.state_dict().items():
            assert torch.equal(tensor, trainer.ema.shadow[name])
    assert trainer.model.training
    assert all(torch.equal(own[k], v) for k, v in trainer.model.state_dict().items())


def test_sample_fn_sees_the_ema_weights(tmp_path):
    """The sampling callback is called every sample_every steps with the EMA weights."""
    seen = []

    def sample_fn(model, step):
        seen.append(
            (step, {k: torch.equal(v, t.ema.shadow[k]) for k, v in model.state_dict().items()})
        )

    t = make_trainer(tmp_path, sample_every=2)
    t.sample_fn = sample_fn
    t.train(4)
    assert [step for step, _ in seen] == [2, 4]
    assert all(all(same.values()) for _, same in seen)


def test_bf16_autocast_on_cpu_gives_a_finite_loss(tmp_path):
    """precision="bf16" runs the forward pass under bfloat16 autocast on the CPU and the
    loss stays finite."""
    trainer = make_trainer(tmp_path, precision="bf16")
    assert trainer.autocast
    records = [trainer.train_step() for _ in range(3)]
    assert all(not r["skipped"] and torch.isfinite(torch.tensor(r["loss"])) for r in records)
    assert not make_trainer(tmp_path / "auto").autocast  # auto: fp32 on the CPU


def test_resume_refuses_a_different_trajectory_setting(tmp_path):
    """Resuming with a different seed (a setting that changes the trajectory) is refused."""
    make_trainer(tmp_path).train(2)
    with pytest.raises(ValueError, match="seed"):
        make_trainer(tmp_path, resume=True, seed=4)


def test_resume_drops_log_lines_after_the_checkpoint(tmp_path):
    """Log lines written after the resumed checkpoint (a crashed run's) are removed."""
    trainer = make_trainer(tmp_path, checkpoint_every=2)
    trainer.train(2)
    trainer.train_step()
    trainer.train_step()
    trainer._log()  # step 4 logged, never checkpointed
    make_trainer(tmp_path, resume=True)
    steps = [
        json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [2]


def test_a_loader_with_another_batch_size_is_refused(tmp_path):
    """A BatchLoader whose batch size differs from config.batch_size raises ValueError."""
    loader = BatchLoader((toy_dataset("moons", 10, 0),), 3)
    with pytest.raises(ValueError, match="batch_size"):
        make_trainer(tmp_path, data=loader)


@pytest.mark.parametrize(
    "overrides", [dict(lr=-1.0), dict(batch_size=0), dict(precision="fp16"), dict(grad_clip=0.0)]
)
def test_bad_config_values_raise_value_error(overrides):
    """TrainConfig rejects invalid values with a ValueError naming the field."""
    (name,) = overrides
    with pytest.raises(ValueError, match=name):
        TrainConfig(**overrides)


def test_resume_is_bit_identical_for_a_unet_on_flipped_images(tmp_path):
    """The same bit-identity for UNet.tiny with dropout 0.1 on 8x8 images from
    image_loader, whose random flips draw from the per-epoch data generator."""
    from minidiff.data import image_loader
    from minidiff.nn import UNet

    images = torch.randint(0, 256, (6, 8, 8, 3), generator=torch.Generator().manual_seed(1))
    images = images.to(torch.uint8)
    config = TrainConfig(
        batch_size=2, warmup_steps=2, log_every=10, checkpoint_every=0, keep_last=None,
        ema_decay=0.9, lr=1e-3, seed=5, steps=4,
    )  # fmt: skip

    def fresh(resume):
        torch.manual_seed(0)
        model = UNet.tiny(dropout=0.1, channel_mults=(1,), attention_resolutions=())
        loader = image_loader(images, None, 2)
        diffusion = GaussianDiffusion(linear_schedule(T))
        return Trainer(model, diffusion, loader, config, out_dir=tmp_path / "b", resume=resume)

    straight = Trainer(
        fresh(False).model, GaussianDiffusion(linear_schedule(T)), image_loader(images, None, 2),
        config, out_dir=tmp_path / "a",
    )  # fmt: skip
    straight.train(4)
    fresh(False).train(2)
    resumed = fresh(True)
    resumed.train(4)
    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name])
    for name, tensor in straight.ema.shadow.items():
        assert torch.equal(tensor, resumed.ema.shadow[name])


def test_progress_bar_runs_to_the_requested_step(tmp_path):
    """With progress=True the loop (tqdm bar with loss and images/s) reaches the step."""
    trainer = make_trainer(tmp_path)
    trainer.progress = True
    trainer.train(4)
    assert trainer.step == 4


def test_run_info_is_stored_in_every_checkpoint_and_resume_still_works(tmp_path):
    """run_info is kept under config["run"] of each checkpoint beside the TrainConfig's
    settings, and a trainer resumes from such a checkpoint as from any other."""
    config = TrainConfig(batch_size=4, steps=4, warmup_steps=1, log_every=2,
                         checkpoint_every=2, num_bins=None, seed=1)  # fmt: skip
    info = {"preset": {"name": "tiny", "channel_mults": [1, 2]}, "note": None}
    diffusion = GaussianDiffusion(linear_schedule(T))
    data = toy_dataset("moons", 10, 0)
    trainer = Trainer(DropoutDenoiser(), diffusion, data, config, out_dir=tmp_path, run_info=info)
    trainer.train()
    for step in (2, 4):
        state = load_checkpoint(tmp_path / "checkpoints" / f"step_{step:06d}",
                                model=DropoutDenoiser())  # fmt: skip
        assert state["config"]["run"] == info
        assert state["config"]["lr"] == config.lr
    resumed = Trainer(DropoutDenoiser(), diffusion, data, config, out_dir=tmp_path, resume=True)
    assert resumed.step == 4


def _corrupt_header(path) -> None:
    """Overwrite bytes of a safetensors header, keeping the file's size."""
    data = bytearray(path.read_bytes())
    data[9:21] = b"#" * 12
    path.write_bytes(bytes(data))


def test_resume_passes_over_a_corrupted_checkpoint_to_the_previous_one(tmp_path):
    """The latest checkpoint's weights corrupted in place (size kept): resume warns in
    one line naming it and continues from the previous complete checkpoint, and its final
    save replaces the corrupt one; with no good checkpoint left it raises a one-line
    CheckpointError."""
    make_trainer(tmp_path, checkpoint_every=2).train(4)
    checkpoints = tmp_path / "checkpoints"
    _corrupt_header(checkpoints / "step_000004" / "model.safetensors")
    with pytest.warns(UserWarning, match="step_000004") as caught:
        trainer = make_trainer(tmp_path, resume=True)
    assert trainer.step == 2 and all("\n" not in str(w.message) for w in caught)
    trainer.config = dataclasses.replace(trainer.config, checkpoint_every=0)
    trainer.train(4)  # the final save replaces the corrupt step 4
    assert make_trainer(tmp_path, resume=True).step == 4
    for step in (2, 4):
        _corrupt_header(checkpoints / f"step_{step:06d}" / "model.safetensors")
    with pytest.raises(CheckpointError) as info:
        make_trainer(tmp_path, resume=True)
    assert "\n" not in str(info.value)


def test_a_full_disk_stops_training_in_one_line_naming_the_last_checkpoint(
    tmp_path, monkeypatch
):
    """ENOSPC while saving step 4: an OSError (errno ENOSPC) whose one-line message says
    the disk is full and names the step-2 checkpoint; a resume continues from it."""
    real = checkpoint_module.atomic.write_bytes

    def full(path, data):
        if "step_000004" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    with monkeypatch.context() as patch:
        patch.setattr(checkpoint_module.atomic, "write_bytes", full)
        with pytest.raises(OSError, match="step_000002") as info:
            make_trainer(tmp_path, checkpoint_every=2).train(4)
    assert info.value.errno == errno.ENOSPC and "No space left" in str(info.value)
    assert "\n" not in str(info.value)
    assert make_trainer(tmp_path, resume=True).step == 2


TORN_TAILS = ["", "\x00" * 7, "\n\x00\x00\x00", '{"step": 6, "loss": 0.1', '{"step": 6}\x00']


def test_resume_trims_a_log_torn_at_any_byte_and_keeps_every_complete_record(tmp_path):
    """Cut the record of step 6 after each of its bytes in turn (a power cut or a full
    disk while appending), or follow the log by NUL bytes: resume keeps the records of
    steps 2 and 4 exactly, drops the torn tail, warns in one line, and training appends
    after them."""
    make_trainer(tmp_path / "base", checkpoint_every=2).train(4)
    log = (tmp_path / "base" / "metrics.jsonl").read_text(encoding="utf-8")
    record = json.dumps({"step": 6, "loss": 0.5, "grad_norm": 1.0, "lr": 0.01}) + "\n"
    tails = [record[:cut] for cut in range(1, len(record) - 1)] + TORN_TAILS
    for i, tail in enumerate(tails):
        run = tmp_path / f"run_{i}"
        shutil.copytree(tmp_path / "base", run)
        with open(run / "metrics.jsonl", "a", encoding="utf-8") as file:
            file.write(tail)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer = make_trainer(run, resume=True)
        assert (run / "metrics.jsonl").read_text(encoding="utf-8") == log, repr(tail)
        messages = [str(w.message) for w in caught]
        assert all("\n" not in m for m in messages)
        assert any("metrics.jsonl" in m for m in messages) == (tail not in ("",)), repr(tail)
        if i == len(tails) - 1:
            trainer.train(6)
            lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
            assert [json.loads(line)["step"] for line in lines] == [2, 4, 6]


def test_resume_finishes_a_clean_up_killed_after_the_final_checkpoint(tmp_path, monkeypatch):
    """Kill the final save (keep_last=1) at every file-system call after its commit
    point; the resume that follows has nothing left to train, yet it finishes the
    clean-up: one step folder, no temporaries, set-aside or trash folders."""
    log: list = []
    with monkeypatch.context() as patch:
        make_trainer(tmp_path / "count", checkpoint_every=2, keep_last=1).train(2)
        _instrument(patch, None, log)
        make_trainer(tmp_path / "count", checkpoint_every=2, keep_last=1, resume=True).train(4)
    commit = next(i for i, (name, args) in enumerate(log, 1)
                  if name == "replace" and args[1].name == "latest.json")  # fmt: skip
    for crash_at in range(commit + 1, len(log) + 1):
        run = tmp_path / f"crash_{crash_at}"
        make_trainer(run, checkpoint_every=2, keep_last=1).train(2)
        with monkeypatch.context() as patch:
            _instrument(patch, crash_at, [])
            with pytest.raises(_Crash):
                make_trainer(run, checkpoint_every=2, keep_last=1, resume=True).train(4)
        trainer = make_trainer(run, checkpoint_every=2, keep_last=1, resume=True)
        trainer.train(4)
        assert trainer.step == 4
        names = sorted(p.name for p in (run / "checkpoints").iterdir())
        assert names == ["latest.json", "step_000004"], (crash_at, names)
