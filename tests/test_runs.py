"""Tests of `minidiff.runs`: a run folder from training to samples, exact resumption,
refusal of folders that hold another run, presets stored as plain data, image grids."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from minidiff.configs import PRESETS, override, preset
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
)
from tests.data.fake_cifar import make_batches, write_folder

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
    x = sample(run, min(p.num_samples, GRID_SAMPLES), seed=p.seed)
    from PIL import Image

    written = np.asarray(Image.open(out / "samples" / "step_000004.png"))
    expected = image_grid(x).repeat(4, axis=0).repeat(4, axis=1)[..., 0]  # 8x8 drawn 4x larger
    np.testing.assert_array_equal(written, expected)


def test_resume_equals_an_uninterrupted_run_bit_for_bit(finished, tmp_path):
    """2 steps, a stop, and a resumed run to step 4 give the same model, EMA and sample
    grids, bit for bit, as 4 steps in one go."""
    p, out, straight = finished
    first = tmp_path / "b"
    train(override(p, ["steps=2"]), first, device="cpu", progress=False)
    resumed = train(p, first, resume=True, device="cpu", progress=False)
    assert resumed.step == 4
    for name, tensor in straight.ema.shadow.items():
        assert torch.equal(tensor, resumed.ema.shadow[name])
    for a, b in zip(straight.model.state_dict().values(), resumed.model.state_dict().values(),
                    strict=True):  # fmt: skip
        assert torch.equal(a, b)
    for name in ("step_000002.png", "step_000004.png"):
        assert (first / "samples" / name).read_bytes() == (out / "samples" / name).read_bytes()
    assert json.loads((first / "run.json").read_text())["preset"]["steps"] == 4


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
    with pytest.raises(RunError, match=re.escape(f"lr: saved {p.lr!r}, given 0.5")):
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


def test_stored_presets_with_unknown_or_bad_fields_are_refused():
    """An unknown field, a bad value or a non-mapping is a RunError naming the source."""
    data = preset_to_dict(preset("digits"))
    with pytest.raises(RunError, match="here.*unknown fields \\['colour'\\]"):
        preset_from_dict({**data, "colour": 1}, "here")
    with pytest.raises(RunError, match="here.*T must be"):
        preset_from_dict({**data, "T": 0}, "here")
    with pytest.raises(RunError, match="not a mapping"):
        preset_from_dict([1, 2], "here")


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


def test_image_data_with_a_network_for_points_names_the_model(tmp_path):
    """The digits preset with model=mlp: the error names the model and what it takes,
    rather than two equal shapes."""
    with pytest.raises(ValueError, match="mlp") as info:
        training_data(override(preset("digits"), ["model=mlp"]))
    assert "expects (1, 8, 8)" not in str(info.value)
