"""Tests of `minidiff.runs`: a run folder from training to samples, exact resumption,
refusal of folders that hold another run or other betas, presets stored as plain data
(and run folders of the flat format before the sections), image grids."""

from __future__ import annotations

import importlib
import json
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minidiff.configs import PRESETS, override, preset
from minidiff.data.fashion_mnist import FASHION_MNIST_DIR, FASHION_MNIST_PACKAGE
from minidiff.runs import (
    GRID_SAMPLES,
    RunError,
    check_run_folder,
    image_grid,
    load_run,
    preset_from_dict,
    preset_to_dict,
    sample,
    save_image_grid,
    stored_preset,
    train,
    training_data,
)
from minidiff.training import (
    CheckpointNotFoundError,
    TrainConfig,
    Trainer,
    find_latest_checkpoint,
    read_checkpoint_config,
)
from tests.data.fake_cifar import make_batches, write_folder
from tests.requirements import needs

torch.set_num_threads(1)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# a one-level 8x8 U-Net, T = 20: a step takes milliseconds
TINY = [
    "image_size=8", "pad_to=none", "base_channels=32", "channel_mults=1",
    "attention_resolutions=", "T=20", "sampling_steps=5", "batch_size=8", "steps=4",
    "warmup_steps=2", "log_every=2", "checkpoint_every=2", "sample_every=2", "num_samples=6",
]  # fmt: skip


def tiny(*extra: str):
    return override(preset("digits"), [*TINY, *extra])


def snapshot(folder) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {str(f.relative_to(folder)): f.read_bytes() for f in folder.rglob("*") if f.is_file()}


def assert_resumes_bit_for_bit(p, folder, straight: Trainer) -> None:
    """Train ``p`` for 2 steps into ``folder``, stop, resume to its 4 steps: the model and
    the EMA equal those of ``straight`` (4 steps in one go), bit for bit."""
    train(override(p, ["steps=2"]), folder, device="cpu", progress=False)
    resumed = train(p, folder, resume=True, device="cpu", progress=False)
    assert resumed.step == 4
    for name, tensor in straight.ema.shadow.items():
        assert torch.equal(tensor, resumed.ema.shadow[name])
    for x, y in zip(straight.model.state_dict().values(), resumed.model.state_dict().values(),
                    strict=True):  # fmt: skip
        assert torch.equal(x, y)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One tiny digits run of 4 steps: (preset, out folder, trainer)."""
    out = tmp_path_factory.mktemp("runs") / "run"
    p = tiny()
    trainer = train(p, out, device="cpu", progress=False)
    return p, out, trainer


def test_train_writes_the_run_folder(finished):
    """A run folder holds run.json (the preset), metrics.jsonl (every log_every steps),
    checkpoints/ (every checkpoint_every steps and at the end) and one sample grid PNG
    every sample_every steps, named by the step."""
    p, out, trainer = finished
    record = json.loads((out / "run.json").read_text())
    assert record["format"] == "minidiff-run" and preset_from_dict(record["preset"]) == p
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4] and trainer.step == 4
    assert find_latest_checkpoint(out / "checkpoints").name == "step_000004"
    grids = sorted(f.name for f in (out / "samples").iterdir())
    assert grids == ["step_000002.png", "step_000004.png"]
    assert all((out / "samples" / g).read_bytes()[:8] == PNG_MAGIC for g in grids)


def test_load_run_rebuilds_the_model_with_the_ema_weights(finished):
    """load_run, from the run folder, its checkpoints/ folder or a step folder, gives the
    stored preset, the checkpoint's step and a model in eval mode holding exactly the
    trainer's EMA weights."""
    p, out, trainer = finished
    for path in (out, out / "checkpoints", out / "checkpoints" / "step_000004"):
        run = load_run(path, device="cpu")
        assert run.preset == p and run.step == 4 and not run.model.training
        assert run.path == out / "checkpoints" / "step_000004"
        state = run.model.state_dict()
        for name, tensor in trainer.ema.shadow.items():
            assert torch.equal(state[name], tensor)


def test_samples_are_images_in_range_and_reproducible_by_seed(finished, tmp_path):
    """sample gives (n, C, H, W) in [-1, 1] for both samplers; the same seed and batch
    size give the same samples, another seed others; the grid PNG is written."""
    p, out, _ = finished
    run = load_run(out, device="cpu")
    x = sample(run, 5, seed=1, batch_size=2)
    assert x.shape == (5, 1, 8, 8) and x.abs().max() <= 1.0
    assert torch.equal(x, sample(run, 5, seed=1, batch_size=2))
    assert not torch.equal(x, sample(run, 5, seed=2, batch_size=2))
    y = sample(run, 3, sampler="ancestral", progress=True)
    assert y.shape == (3, 1, 8, 8) and y.abs().max() <= 1.0
    path = save_image_grid(x, tmp_path / "grid.png", scale=2)
    assert path.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"sampler": "euler"}, "sampler"), ({"sampler": "ancestral", "steps": 3}, "ddim sampler only"),
     ({"steps": 21}, "steps must be"), ({"eta": -1.0}, "eta"), ({"batch_size": 0}, "batch_size"),
     ({"seed": -1}, "seed")],
)  # fmt: skip
def test_sample_refuses_bad_arguments_by_name(finished, kwargs, match):
    """A bad sampler, steps for the ancestral sampler, steps beyond T, a negative eta, seed
    or batch size: a ValueError naming the argument."""
    run = load_run(finished[1], device="cpu")
    with pytest.raises(ValueError, match=match):
        sample(run, 2, **kwargs)


def test_sample_grid_during_training_is_drawn_from_the_ema_weights_with_a_fixed_seed(finished):
    """The grid of the last step equals the grid of `sample` from the final checkpoint
    (the EMA weights) with the preset's sampler and seed, pixel for pixel."""
    p, out, _ = finished
    run = load_run(out, device="cpu")
    x = sample(run, min(p.sampling.num_samples, GRID_SAMPLES), seed=p.training.seed)
    from PIL import Image

    written = np.asarray(Image.open(out / "samples" / "step_000004.png"))
    expected = image_grid(x).repeat(4, axis=0).repeat(4, axis=1)[..., 0]  # 8x8 drawn 4x larger
    np.testing.assert_array_equal(written, expected)


def test_resume_equals_an_uninterrupted_run_bit_for_bit(finished, tmp_path):
    """2 steps, a stop, and a resumed run to step 4 give the same model, EMA and sample
    grids, bit for bit, as 4 steps in one go."""
    p, out, straight = finished
    first = tmp_path / "b"
    assert_resumes_bit_for_bit(p, first, straight)
    for name in ("step_000002.png", "step_000004.png"):
        assert (first / "samples" / name).read_bytes() == (out / "samples" / name).read_bytes()
    assert json.loads((first / "run.json").read_text())["preset"]["training"]["steps"] == 4


def test_a_folder_holding_a_run_is_refused_without_resume_and_left_alone(finished):
    """train(resume=False) on a run folder raises RunError saying what is there and how
    to resume; no file changes."""
    p, out, _ = finished
    before = snapshot(out)
    with pytest.raises(RunError, match="already holds a run.*resume"):
        train(p, out, device="cpu", progress=False)
    assert snapshot(out) == before


def test_resuming_with_another_preset_is_refused_and_names_the_fields(finished):
    """train(resume=True) with a different trajectory setting raises RunError listing the
    field with its saved and given values; no file changes. Settings that leave the
    trajectory alone (steps, intervals) may change."""
    p, out, _ = finished
    before = snapshot(out)
    message = f"training.lr: saved {p.training.lr!r}, given 0.5"
    with pytest.raises(RunError, match=re.escape(message)):
        train(override(p, ["lr=0.5"]), out, resume=True, device="cpu", progress=False)
    assert snapshot(out) == before
    assert check_run_folder(override(p, ["steps=9", "sample_every=0"]), out, resume=True)


def test_checkpoints_without_a_preset_are_refused(tmp_path):
    """A folder whose checkpoints were saved by a bare Trainer (no stored preset) cannot be
    resumed or loaded as a run: RunError naming the checkpoint."""
    p = tiny()
    x0 = training_data(p)
    bare = Trainer(torch.nn.Conv2d(1, 1, 1), None, x0, TrainConfig(batch_size=8, steps=0),
                   out_dir=tmp_path)  # fmt: skip
    bare.save()
    with pytest.raises(RunError, match="stores no preset"):
        train(p, tmp_path, resume=True, device="cpu", progress=False)
    with pytest.raises(RunError, match="step_000000.*stores no preset"):
        load_run(tmp_path)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["checkpoints"]


def test_load_run_of_a_missing_or_empty_folder_names_the_path(tmp_path):
    """A path that does not exist, or a folder without a checkpoint, raises
    CheckpointNotFoundError naming the path."""
    with pytest.raises(CheckpointNotFoundError, match="nothing"):
        load_run(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointNotFoundError, match="empty holds no minidiff checkpoint"):
        stored_preset(tmp_path / "empty")


@pytest.mark.parametrize("name", PRESETS)
def test_presets_survive_json_as_plain_data(name):
    """preset_from_dict(json round trip of preset_to_dict(p)) == p for every preset."""
    p = preset(name)
    assert preset_from_dict(json.loads(json.dumps(preset_to_dict(p)))) == p


def _with(data: dict, section: str, **values) -> dict:
    """``data`` (a stored preset) with ``values`` set in ``section``."""
    return {**data, section: {**data[section], **values}}


DIGITS = preset_to_dict(preset("digits"))


@pytest.mark.parametrize(
    ("data", "match"),
    [({**DIGITS, "colour": 1}, "here.*unknown sections \\['colour'\\]"),
     (_with(DIGITS, "training", colour=1), "here.*training has unknown fields \\['colour'\\]"),
     (_with(DIGITS, "diffusion", T=0), "here.*T must be"),
     (_with(DIGITS, "model", kind="resnet"), "here.*model kind must be one of"),
     ([1, 2], "here.*not a mapping")],
    ids=["unknown section", "unknown field", "bad value", "unknown network", "not a mapping"],
)  # fmt: skip
def test_stored_presets_with_unknown_or_bad_fields_are_refused(data, match):
    """An unknown section or field, a bad value, an unknown network or a non-mapping is a
    RunError naming the source."""
    with pytest.raises(RunError, match=match):
        preset_from_dict(data, "here")


def test_training_data_has_the_presets_shape():
    """digits: (N, 1, S, S) in [-1, 1] with S = the preset's image size; a 2-D preset gets
    (N, 2) points; a preset whose image size does not match its data is refused."""
    p = tiny()
    x0 = training_data(p)
    assert x0.shape[1:] == (1, 8, 8) and x0.min() >= -1 and x0.max() <= 1
    assert training_data(preset("toy2d")).shape[1] == 2
    with pytest.raises(ValueError, match=r"shape \(1, 8, 8\).*expects \(1, 16, 16\)"):
        training_data(tiny("image_size=16"))
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        training_data(tiny("dataset=mnist"))


def test_a_2d_run_samples_points_and_draws_a_scatter_plot(tmp_path):
    """A toy2d run (MLP on 2-D points) trains, loads and samples (n, 2) points, and its
    sample figures are PNG scatter plots."""
    p = override(preset("toy2d"), ["steps=2", "batch_size=16", "T=30", "sample_every=2",
                                   "num_samples=50", "log_every=1"])  # fmt: skip
    train(p, tmp_path, device="cpu", progress=False)
    run = load_run(tmp_path, device="cpu")
    assert sample(run, 7).shape == (7, 2)
    assert (tmp_path / "samples" / "step_000002.png").read_bytes()[:8] == PNG_MAGIC


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 12), c=st.sampled_from([1, 3]), h=st.integers(1, 5), w=st.integers(1, 5),
    nrow=st.integers(1, 6), padding=st.integers(0, 3), seed=st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_image_grid_places_image_i_at_row_i_div_nrow_and_column_i_mod_nrow(
    n, c, h, w, nrow, padding, seed
):
    """For arbitrary images in [-1, 1], image i sits at row i // nrow, column i % nrow, as
    u = round((x + 1) * 127.5); the grid is rows x nrow tiles with the padding around and
    between them, grey (128) elsewhere."""
    x = torch.rand((n, c, h, w), generator=torch.Generator().manual_seed(seed),
                   dtype=torch.float64) * 2 - 1  # fmt: skip
    grid = image_grid(x, nrow, padding=padding)
    rows = -(-n // nrow)
    assert grid.shape == (rows * (h + padding) + padding, nrow * (w + padding) + padding, c)
    assert grid.dtype == np.uint8
    covered = np.zeros(grid.shape[:2], dtype=bool)
    for i in range(n):
        top, left = padding + (i // nrow) * (h + padding), padding + (i % nrow) * (w + padding)
        expected = ((x[i] + 1) * 127.5).round().permute(1, 2, 0).numpy().astype(np.uint8)
        np.testing.assert_array_equal(grid[top : top + h, left : left + w], expected)
        covered[top : top + h, left : left + w] = True
    assert (grid[~covered] == 128).all()


def test_image_grid_clips_to_the_data_range_and_refuses_bad_shapes():
    """Values beyond [-1, 1] map to 0 and 255; a batch that is not (N, 1 or 3, H, W) or a
    bad nrow is a ValueError."""
    grid = image_grid(torch.tensor([[[[-5.0, 5.0]]]]), padding=0)
    assert grid[..., 0].tolist() == [[0, 255]]
    with pytest.raises(ValueError, match="images must have shape"):
        image_grid(torch.zeros(2, 2, 4, 4))
    with pytest.raises(ValueError, match="nrow"):
        image_grid(torch.zeros(2, 1, 4, 4), nrow=0)


def test_cifar10_data_is_a_loader_of_flipped_images_in_the_presets_shape(tmp_path):
    """cifar10: the uint8 images of a CIFAR-10 folder (here a generated one in the real
    format) come through a shuffling loader as float batches (B, 3, 32, 32) in [-1, 1]; a
    missing folder is a FileNotFoundError saying where to put the data."""
    write_folder(tmp_path, make_batches())
    loader = training_data(override(preset("cifar10-small"), ["batch_size=8"]), root=tmp_path)
    (x0,) = next(iter(loader))
    assert x0.shape == (8, 3, 32, 32) and x0.dtype == torch.float32
    assert x0.min() >= -1 and x0.max() <= 1
    with pytest.raises(FileNotFoundError, match="CIFAR-10 not found"):
        training_data(preset("cifar10"), root=tmp_path / "missing")


# The digits preset with the TINY settings, as the flat mapping that run.json and every
# checkpoint stored before the sections (one key per setting; "model" named the network).
FLAT_TINY_DIGITS = {
    "name": "digits", "dataset": "digits", "image_size": 8, "pad_to": None,
    "random_flip": False, "model": "unet", "in_channels": 1, "base_channels": 32,
    "channel_mults": [1], "num_res_blocks": 1, "attention_resolutions": [], "dropout": 0.0,
    "mlp_hidden": [128, 128, 128], "mlp_embed_dim": 32, "schedule": "linear", "T": 20,
    "parameterization": "eps", "variance": "fixed_large", "loss": "simple", "lr": 0.002,
    "batch_size": 8, "steps": 4, "warmup_steps": 2, "grad_clip": 1.0, "ema_decay": 0.999,
    "num_bins": 17, "seed": 0, "sampler": "ddim", "sampling_steps": 5, "sampling_eta": 1.0,
    "num_samples": 6, "precision": "auto", "memory_format": "auto", "compile": False,
    "log_every": 2, "sample_every": 2, "checkpoint_every": 2, "keep_last": 3,
}  # fmt: skip
# toy2d as the flat mapping (the MLP's settings were mlp_hidden and mlp_embed_dim)
FLAT_TOY2D = {
    **FLAT_TINY_DIGITS, "name": "toy2d", "dataset": "swissroll", "image_size": None,
    "model": "mlp", "in_channels": 2, "mlp_hidden": [16], "mlp_embed_dim": 8,
    "schedule": "toy", "T": 30, "variance": "fixed_small", "num_bins": None,
    "sampler": "ancestral", "sampling_steps": None, "sampling_eta": 0.0,
}  # fmt: skip


def test_flat_presets_of_earlier_runs_convert_to_their_sections():
    """A preset stored as one flat mapping reads back as the preset with the same settings
    in their sections: the U-Net's under their UNetConfig names, the MLP's (in_channels,
    mlp_hidden, mlp_embed_dim) as ToyMLPConfig's dim, hidden and embed_dim."""
    assert preset_from_dict(FLAT_TINY_DIGITS) == tiny()
    toy = preset_from_dict(FLAT_TOY2D)
    assert (toy.model.dim, toy.model.hidden, toy.model.embed_dim) == (2, (16,), 8)
    assert (toy.diffusion.schedule, toy.diffusion.T, toy.training.num_bins) == ("toy", 30, None)
    with pytest.raises(RunError, match="here.*unknown fields \\['colour'\\]"):
        preset_from_dict({**FLAT_TOY2D, "colour": 1}, "here")


def test_a_run_folder_of_the_flat_format_loads_and_resumes_bit_for_bit(finished, tmp_path,
                                                                        monkeypatch):  # fmt: skip
    """A run folder as written before the sections and the stored betas (run.json and the
    checkpoints' preset as one flat mapping, no betas in the checkpoint; generated here by
    the current code with those two writers swapped back) loads as a run, and resumed to
    step 4 gives the weights of the uninterrupted run, bit for bit."""
    import minidiff.runs.training
    import minidiff.training.trainer
    from minidiff.training.resume import BETA_KEY

    p, _, straight = finished
    flat = {**FLAT_TINY_DIGITS, "steps": 2}
    save = minidiff.training.trainer.save_checkpoint

    def save_without_betas(*args, config, **kwargs):
        return save(*args, config={k: v for k, v in config.items() if k != BETA_KEY}, **kwargs)

    monkeypatch.setattr(minidiff.runs.training, "preset_to_dict", lambda _: flat)
    monkeypatch.setattr(minidiff.training.trainer, "save_checkpoint", save_without_betas)
    out = tmp_path / "old"
    train(override(p, ["steps=2"]), out, device="cpu", progress=False)
    monkeypatch.undo()
    assert json.loads((out / "run.json").read_text())["preset"] == flat
    config = read_checkpoint_config(find_latest_checkpoint(out / "checkpoints"))
    assert BETA_KEY not in config and config["run"]["preset"] == flat

    run = load_run(out, device="cpu")
    assert run.preset == override(p, ["steps=2"]) and run.step == 2
    assert sample(run, 2, seed=0).shape == (2, 1, 8, 8)
    resumed = train(p, out, resume=True, device="cpu", progress=False)
    for name, tensor in straight.ema.shadow.items():
        assert torch.equal(tensor, resumed.ema.shadow[name])
    assert json.loads((out / "run.json").read_text())["preset"] == preset_to_dict(p)


def test_a_changed_schedule_default_is_refused_when_loading_or_resuming(finished, monkeypatch):
    """Every checkpoint stores beta_0..beta_T; if the preset's schedule now builds other
    betas (a changed default, simulated by another beta_T), load_run and a resumed run
    refuse with a RunError naming the checkpoint and the first differing step."""
    import minidiff.kinds
    from minidiff.process import linear_schedule

    p, out, _ = finished
    config = read_checkpoint_config(find_latest_checkpoint(out / "checkpoints"))
    assert config["beta"] == [float(b) for b in load_run(out).diffusion.schedule.beta]
    monkeypatch.setattr(minidiff.kinds, "make_schedule",
                        lambda name, T: linear_schedule(T, beta_end=0.021))  # fmt: skip
    with pytest.raises(RunError, match="step_000004 was trained with other betas.*t = 2"):
        load_run(out, device="cpu")
    with pytest.raises(RunError, match="other betas"):
        check_run_folder(p, out, resume=True)


def test_every_public_name_of_runs_resolves_to_its_module():
    """Each name of `minidiff.runs.__all__` is defined by the module the package names
    for it (the package loads its modules on first use)."""
    import minidiff.runs as runs

    for name in runs.__all__:
        value = getattr(runs, name)
        module = importlib.import_module(f"minidiff.runs.{runs._SOURCE[name]}")
        assert getattr(module, name) is value
    assert sorted(runs.__all__) == sorted(runs._SOURCE)


def test_image_data_with_a_network_for_points_names_the_model(tmp_path):
    """The digits preset with an MLP model section: the error names the model and the
    points it takes, rather than an expected shape."""
    from dataclasses import replace

    from minidiff.nn import ToyMLPConfig

    p = replace(preset("digits"), model=ToyMLPConfig(dim=64, hidden=(16,), embed_dim=8))
    with pytest.raises(ValueError, match="model 'mlp' takes points of shape \\(64,\\)") as info:
        training_data(p)
    assert "expects" not in str(info.value)


@needs(
    (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file(),
    f"Debian package {FASHION_MNIST_PACKAGE} is not installed (make system-deps)",
)
def test_fashion_mnist_preset_trains_on_the_train_split_with_labels_when_conditional():
    """The fashion-mnist preset's data: the 60 000 training images (N, 1, 28, 28) in
    [-1, 1]; with model.num_classes=10 the labels 0..9 come too."""
    p = preset("fashion-mnist")
    x0 = training_data(p)
    assert x0.shape == (60_000, 1, 28, 28) and x0.min() == -1 and x0.max() == 1
    x0, y = training_data(override(p, ["model.num_classes=10"]))
    assert y.shape == (60_000,) and set(y.unique().tolist()) == set(range(10))
