"""Conditional runs (the ``-cond`` presets and ``digits-caption``): labelled or captioned
training data, condition dropout that resumes bit for bit, and samples guided towards a
class or a prompt (Ho & Salimans 2022)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from minidiff.applications.captions import WordTokenizer
from minidiff.configs import override, preset
from minidiff.runs import (
    caption_tokens,
    class_labels,
    grid_condition,
    load_run,
    sample,
    train,
    training_data,
)
from tests.test_runs import TINY, assert_resumes_bit_for_bit

torch.set_num_threads(1)


def tiny_cond(*extra: str):
    return override(preset("digits-cond"), [*TINY, *extra])


def finish(tmp_path_factory, p):
    """A tiny run of ``p`` (4 steps): (preset, out folder, trainer)."""
    out = tmp_path_factory.mktemp(p.name) / "run"
    return p, out, train(p, out, device="cpu", progress=False)


def perturbed_run(folder):
    """The run in ``folder`` with its weights moved away from the zero-initialised output
    layer (four steps leave the EMA near it), so that the prediction depends on y."""
    run = load_run(folder, device="cpu")
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for q in run.model.parameters():
            q.add_(0.1 * torch.randn(q.shape, generator=g))
    return run


@pytest.fixture(scope="module")
def finished_cond(tmp_path_factory):
    """One tiny digits-cond run of 4 steps: (preset, out folder, trainer)."""
    return finish(tmp_path_factory, tiny_cond())


def test_the_cond_presets_are_their_bases_with_ten_classes():
    """digits-cond and cifar10-cond differ from digits and cifar10 only in the name and
    num_classes = 10; a class count the data set does not have is refused."""
    for name in ("digits", "cifar10"):
        base, cond = preset(name), preset(f"{name}-cond")
        assert cond.model.num_classes == 10 and cond.training.p_uncond == 0.1
        assert cond.data == base.data and cond.training == base.training
        assert cond.model == replace(base.model, num_classes=10) and cond.sampling == base.sampling
    with pytest.raises(ValueError, match="num_classes must be None or"):
        override(preset("digits-cond"), ["num_classes=3"])


def test_training_data_of_a_cond_preset_carries_the_digit_labels():
    """digits-cond: (x_0, y) with y the (N,) int64 digit of each image, all ten present."""
    x0, y = training_data(tiny_cond())
    assert x0.shape[1:] == (1, 8, 8) and y.shape == (x0.shape[0],) and y.dtype == torch.int64
    assert set(y.tolist()) == set(range(10))
    assert isinstance(training_data(override(preset("digits"), TINY)), torch.Tensor)


def test_a_cond_run_resumes_bit_for_bit(finished_cond, tmp_path):
    """2 steps, a stop, and a resumed run to step 4 give the same model and EMA, bit for
    bit, as 4 steps in one go (the label drops come from the run's generator)."""
    p, _, straight = finished_cond
    assert_resumes_bit_for_bit(p, tmp_path / "b", straight)


def test_the_grids_during_training_hold_one_row_per_class(finished_cond):
    """A -cond run's samples/step_N.png: ceil(6 / 10) = 1 guided sample of each class, a
    row each: 10 rows of 8x8 images with 2 pixels of padding, drawn 4x larger."""
    from PIL import Image

    grid = Image.open(finished_cond[1] / "samples" / "step_000004.png")
    assert grid.size == (4 * (8 + 2 + 2), 4 * (10 * (8 + 2) + 2))  # (width, height)


def test_class_labels_give_one_class_or_every_class_in_turn():
    p = tiny_cond()
    assert class_labels(p, 7, 3).tolist() == [7, 7, 7]
    assert class_labels(p, "all", 12).tolist() == [c for c in range(10) for _ in range(2)]
    for bad in (10, -1, "seven"):
        with pytest.raises(ValueError, match=r"class must be 'all' or an integer in 0\.\.9"):
            class_labels(p, bad, 3)
    with pytest.raises(ValueError, match="is unconditional"):
        class_labels(override(preset("digits"), TINY), 7, 3)


def test_guided_samples_are_the_unconditional_ones_at_scale_zero(finished_cond):
    """Scale 0 is the null-label model: the samples equal those drawn without labels;
    scale 3 gives other samples, in range and reproducible. (Four steps leave the EMA
    near its zero-initialised output layer, so the weights are perturbed first.)"""
    run = perturbed_run(finished_cond[1])
    labels = class_labels(run.preset, 7, 4)
    free = sample(run, 4, seed=1)
    assert torch.allclose(sample(run, 4, seed=1, labels=labels, guidance=0.0), free, atol=1e-5)
    guided = sample(run, 4, seed=1, labels=labels, guidance=3.0)
    assert guided.shape == (4, 1, 8, 8) and guided.abs().max() <= 1.0
    assert torch.equal(guided, sample(run, 4, seed=1, labels=labels, guidance=3.0))
    assert not torch.allclose(guided, free)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"guidance": -1.0}, "guidance must be a finite number >= 0"),
     ({"guidance": float("nan")}, "guidance must be a finite number >= 0"),
     ({"labels": torch.tensor([0, 10])}, r"labels must lie in 0\.\.9"),
     ({"labels": torch.tensor([0.5, 1.0])}, r"labels must be a \(2,\) integer tensor")],
)  # fmt: skip
def test_sample_refuses_bad_labels_and_guidance(finished_cond, kwargs, match):
    run = load_run(finished_cond[1], device="cpu")
    kwargs = {"labels": torch.tensor([1, 2]), **kwargs}
    with pytest.raises(ValueError, match=match):
        sample(run, 2, **kwargs)


def test_guidance_without_labels_is_refused(finished_cond):
    run = load_run(finished_cond[1], device="cpu")
    with pytest.raises(ValueError, match="guidance applies to class-conditional sampling only"):
        sample(run, 2, guidance=2.0)


# -- caption runs (digits-caption) -------------------------------------------------------


def tiny_caption(*extra: str):
    return override(preset("digits-caption"), [*TINY, "text_layers=1", *extra])


@pytest.fixture(scope="module")
def finished_caption(tmp_path_factory):
    """One tiny digits-caption run of 4 steps: (preset, out folder, trainer)."""
    return finish(tmp_path_factory, tiny_caption())


def test_the_caption_preset_is_digits_with_a_caption_model():
    """digits-caption keeps the digits data, diffusion, training and sampling; its model
    is the digits U-Net with a caption encoder, holding the words of the digit captions."""
    base, p = preset("digits"), preset("digits-caption")
    assert (p.data, p.diffusion, p.training, p.sampling) == (
        base.data, base.diffusion, base.training, base.sampling)  # fmt: skip
    assert p.model.unet_config() == replace(base.model, context_dim=p.model.context_dim)
    assert p.model.vocabulary == WordTokenizer.for_digits().words
    assert p.model_kind == "caption-unet"


def test_training_data_of_the_caption_preset_pairs_images_with_tokenized_captions():
    x0, tokens = training_data(tiny_caption())
    p = tiny_caption()
    assert tokens.shape == (x0.shape[0], p.model.caption_length) and tokens.dtype == torch.int64
    assert (tokens[:, 0] == WordTokenizer.START).all() and x0.shape[0] >= 3 * 1000


def test_a_caption_run_resumes_bit_for_bit_and_restores_its_preset(finished_caption, tmp_path):
    """2 steps, a stop and a resume to 4 equal 4 steps in one go (the caption drops come
    from the run's generator); the checkpoint alone rebuilds the caption model."""
    p, out, straight = finished_caption
    assert_resumes_bit_for_bit(p, tmp_path / "b", straight)
    run = load_run(out, device="cpu")
    assert run.preset == p and run.model.config == p.model


def test_caption_samples_at_scale_zero_are_the_empty_captions(finished_caption):
    """Scale 0 is the empty-caption model: the same samples as without a prompt; scale 3
    differs, stays in range and repeats with the seed."""
    run = perturbed_run(finished_caption[1])
    tokens = caption_tokens(run.preset, "a thick seven", 3)
    free = sample(run, 3, seed=1)
    assert torch.allclose(sample(run, 3, seed=1, labels=tokens, guidance=0.0), free, atol=1e-5)
    guided = sample(run, 3, seed=1, labels=tokens, guidance=3.0)
    assert guided.abs().max() <= 1.0 and not torch.allclose(guided, free)
    assert torch.equal(guided, sample(run, 3, seed=1, labels=tokens, guidance=3.0))


def test_sample_refuses_caption_ids_of_another_shape_or_range(finished_caption):
    run = load_run(finished_caption[1], device="cpu")
    good = caption_tokens(run.preset, "a seven", 2)
    with pytest.raises(ValueError, match=r"must be \(2, 12\) integer caption ids"):
        sample(run, 2, labels=good[:, :5])
    with pytest.raises(ValueError, match=r"must be \(2, 12\) integer caption ids"):
        sample(run, 2, labels=good.double())
    with pytest.raises(ValueError, match=r"caption ids must lie in 0\.\.35"):
        sample(run, 2, labels=good + 40)


def test_caption_tokens_read_prompts_with_the_presets_vocabulary():
    """One prompt is copied n times, a list is taken as it is; an unknown word is the
    unknown token; a prompt longer than the model reads, a class preset and an
    unconditional one are refused with what to do instead."""
    p = tiny_caption()
    tokenizer = WordTokenizer.for_digits()
    assert torch.equal(caption_tokens(p, "a thick seven", 2),
                       tokenizer.encode(["a thick seven"] * 2, p.model.caption_length))
    assert caption_tokens(p, ["a purple two", ""], 2)[0, 2] == WordTokenizer.UNKNOWN
    with pytest.raises(ValueError, match="reads at most 11"):
        caption_tokens(p, " ".join(["seven"] * 12), 1)
    with pytest.raises(ValueError, match="conditioned on classes"):
        caption_tokens(tiny_cond(), "a seven", 1)
    with pytest.raises(ValueError, match="unconditional"):
        caption_tokens(override(preset("digits"), TINY), "a seven", 1)
    with pytest.raises(ValueError, match="conditioned on captions"):
        class_labels(p, 7, 1)


def test_grid_conditions_give_one_row_per_digit():
    """A class preset: the classes in turn; a caption preset: "the digit d" for each d;
    an unconditional preset: none."""
    labels, per_row = grid_condition(tiny_cond(), 20)
    assert labels.tolist() == [c for c in range(10) for _ in range(2)] and per_row == 2
    tokens, per_row = grid_condition(tiny_caption(), 12)
    texts = WordTokenizer.for_digits().decode(tokens)
    assert per_row == 2 and texts == [f"the digit {d}" for d in range(10) for _ in range(2)]
    assert grid_condition(override(preset("digits"), TINY), 6) == (None, None)
