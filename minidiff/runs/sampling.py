"""A trained run, loaded from its checkpoint, and its samples (Ho et al. 2020, Algorithm 2;
Song et al. 2021, eq. 12), drawn from the EMA weights."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from minidiff.applications.captions import NUMBER_WORDS
from minidiff.applications.guidance import ClassifierFreeGuidance
from minidiff.applications.text import CaptionUNetConfig
from minidiff.configs import IMAGE_MODELS, SAMPLERS, Preset, build_diffusion
from minidiff.diffusion.gaussian import GaussianDiffusion
from minidiff.diffusion.samplers import sample_ancestral, sample_ddim
from minidiff.runs.data import new_model, resolve_device
from minidiff.runs.store import RunError, checkpoint_folder, stored_preset
from minidiff.training.checkpoint import load_checkpoint
from minidiff.training.checkpoint_files import read_latest
from minidiff.training.conditioning import null_condition_of
from minidiff.training.ema import EMA
from minidiff.training.resume import ScheduleMismatchError, check_schedule

__all__ = ["Run", "caption_tokens", "class_labels", "default_steps", "draw_samples",
           "grid_condition", "load_run", "sample"]  # fmt: skip

GRID_CAPTION = "the digit {d}"  # the caption of each row of a caption model's grid

CLIPPED_KINDS = (*IMAGE_MODELS, "diffwave")  # model kinds whose data lie in [-1, 1]


@dataclass(frozen=True)
class Run:
    """A trained model, ready to sample.

    Attributes:
        preset: the `Preset` the run was trained with.
        model: its network holding the EMA weights, in eval mode.
        diffusion: the process of the preset (`minidiff.configs.build_diffusion`).
        step: the training step of the checkpoint.
        path: the checkpoint folder (``.../checkpoints/step_N``).
    """

    preset: Preset
    model: nn.Module
    diffusion: Any
    step: int
    path: Path


def load_run(path: str | os.PathLike, *, device: torch.device | str | None = None) -> Run:
    """The model of a checkpoint, rebuilt from its stored preset, with its EMA weights.

    Args:
        path: a run folder (its latest checkpoint), its ``checkpoints/`` folder, or one
            ``step_N`` checkpoint folder.
        device: where to put the model (None: CUDA if available, else the CPU).

    Raises:
        CheckpointNotFoundError: nothing at ``path``, or no checkpoint in it.
        CheckpointError: a checkpoint that is incomplete, corrupt or does not fit.
        RunError: a checkpoint that stores no preset, or betas other than those its
            preset's schedule builds now (`minidiff.training.resume.check_schedule`).
    """
    device = resolve_device(device)
    built: dict = {}  # the network of a preset, kept when a read is retried

    def load(folder: Path) -> Run:
        p = stored_preset(folder)
        if built.get("preset") != p:
            model = new_model(p).to(device)
            built.update(preset=p, model=model, diffusion=build_diffusion(p),
                         ema=EMA(model, decay=p.training.ema_decay))  # fmt: skip
        model, ema, diffusion = built["model"], built["ema"], built["diffusion"]
        state = load_checkpoint(folder, model=model, ema=ema, map_location=device)
        try:
            check_schedule(state["config"], diffusion, f"the checkpoint {folder}")
        except ScheduleMismatchError as err:
            raise RunError(str(err)) from err
        ema.copy_to(model)
        return Run(p, model.eval(), diffusion, int(state["step"]), folder)

    # a run that is training: read again if the trainer replaced the checkpoint meanwhile
    return read_latest(lambda: checkpoint_folder(Path(path)), load)


def class_labels(p: Preset, which: int | str, n: int) -> torch.Tensor:
    """The labels to sample a class-conditional preset ``p`` with.

    Args:
        p: the preset (``p.model.num_classes`` = C must be set).
        which: a class in 0..C-1 (``n`` copies), or ``"all"``: every class in turn,
            ceil(n / C) copies each (one grid row per class).
        n: the samples asked for, >= 1.

    Returns:
        (n,) or (C * ceil(n / C),) int64 labels.

    Raises:
        ValueError: an unconditional preset, or ``which`` not a class nor ``"all"``.
    """
    classes = getattr(p.model, "num_classes", None)
    if isinstance(p.model, CaptionUNetConfig):
        raise ValueError(f"a class was given but preset {p.name!r} is conditioned on captions: "
                         f"give a prompt (--prompt TEXT) instead")  # fmt: skip
    if classes is None:
        raise ValueError(f"a class was given but preset {p.name!r} is unconditional "
                         f"(model.num_classes=None): train a -cond preset")  # fmt: skip
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if which == "all":
        return torch.arange(classes).repeat_interleave(math.ceil(n / classes))
    if isinstance(which, bool) or not isinstance(which, int) or not 0 <= which < classes:
        raise ValueError(f"class must be 'all' or an integer in 0..{classes - 1} (preset "
                         f"{p.name!r} has {classes} classes), got {which!r}")  # fmt: skip
    return torch.full((n,), which, dtype=torch.int64)


def caption_tokens(p: Preset, prompts: str | list[str], n: int) -> torch.Tensor:
    """The caption ids to sample a caption preset ``p`` with.

    Args:
        p: the preset (its model a `CaptionUNetConfig`, whose vocabulary reads the words).
        prompts: one prompt (``n`` copies) or a list of ``n``; a word outside the
            vocabulary becomes the unknown token (`WordTokenizer.unknown_words` lists
            them); "" is the empty caption, the unconditional model.
        n: the samples asked for, >= 1.

    Returns:
        (n, caption_length) int64 ids.

    Raises:
        ValueError: ``p`` is not a caption preset, ``n`` is bad, or a prompt has more
            words than the model reads (caption_length - 1).
    """
    if not isinstance(p.model, CaptionUNetConfig):
        what = ("is conditioned on classes: give a class (--class N or all)"
                if p.model.num_classes else
                "is unconditional: train a caption preset such as digits-caption")  # fmt: skip
        raise ValueError(f"a prompt was given but preset {p.name!r} {what}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    texts = [prompts] * n if isinstance(prompts, str) else list(prompts)
    if len(texts) != n or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"prompts must be a string or a list of {n} strings, got {prompts!r}")
    tokenizer, length = p.model.tokenizer(), p.model.caption_length
    for text in texts:
        if tokenizer.length_of(text) > length:
            raise ValueError(f"prompt {text!r} has {tokenizer.length_of(text) - 1} words; "
                             f"preset {p.name!r} reads at most {length - 1}")  # fmt: skip
    return tokenizer.encode(texts, length)


def grid_condition(p: Preset, n: int) -> tuple[torch.Tensor | None, int | None]:
    """The conditions of a grid of about ``n`` samples, one row per class: (labels of
    `class_labels` "all", or the captions `GRID_CAPTION` of each digit, for a
    conditional preset; None otherwise) and the images per row (None: a square grid)."""
    if isinstance(p.model, CaptionUNetConfig):
        per_row = math.ceil(n / len(NUMBER_WORDS))
        texts = [GRID_CAPTION.format(d=d) for d in range(len(NUMBER_WORDS)) for _ in range(per_row)]
        return caption_tokens(p, texts, len(texts)), per_row
    if p.model.num_classes is None:
        return None, None
    labels = class_labels(p, "all", n)
    return labels, labels.numel() // p.model.num_classes


def default_steps(p: Preset, sampler: str) -> int | None:
    """The DDIM steps of preset ``p`` (None: all T) for ``sampler``; None for ancestral."""
    return p.sampling.sampling_steps if sampler == "ddim" else None


def sample(
    run: Run,
    n: int,
    *,
    sampler: str | None = None,
    steps: int | None = None,
    eta: float | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    progress: bool = False,
    labels: torch.Tensor | None = None,
    guidance: float | None = None,
) -> torch.Tensor:
    """Draw ``n`` samples from a loaded run, guided towards ``labels`` if given.

    Args:
        run: from `load_run`.
        n: the number of samples, >= 1.
        sampler: ``"ancestral"`` (Ho et al. 2020, Algorithm 2) or ``"ddim"`` (Song et al.
            2021, eq. 12); default: the preset's.
        steps: DDIM's denoiser calls, 1..T (default: the preset's ``sampling_steps``, or
            all T); not for the ancestral sampler.
        eta: DDIM's stochasticity (eq. 16): 0 deterministic, 1 ancestral-like (default:
            the preset's ``sampling_eta``); not for the ancestral sampler.
        seed: seeds x_T and the noise; the samples are a function of (seed, batch_size).
        batch_size: samples drawn at once (default: all n, at most 256).
        progress: a tqdm bar over the denoiser calls.
        labels: the condition of each sample: (n,) classes (`class_labels`) for a
            class-conditional run, (n, L) caption ids (`caption_tokens`) for a caption
            run; None: unconditional samples (null labels, empty captions).
        guidance: the classifier-free guidance scale s >= 0 (0 unconditional, 1 the
            conditional model, s > 1 beyond it; Ho & Salimans 2022, eq. 6 with w = s - 1);
            default: the preset's ``sampling.guidance``; only with ``labels``.

    Returns:
        (n, C, H, W) images in [-1, 1] (x0_hat clipped to [-1, 1] at every step), or
        (n, D) points for a 2-D preset, on the run's device.

    Raises:
        ValueError: a bad ``n``, ``sampler``, ``steps``, ``eta``, ``seed``, ``batch_size``,
            ``labels`` or ``guidance``.
    """
    p = run.preset
    if labels is None and guidance is not None:
        raise ValueError(f"guidance applies to class-conditional sampling only: give labels "
                         f"too, got guidance={guidance!r} without labels")  # fmt: skip
    if labels is not None:
        labels = _check_labels(p, labels, n)
        guidance = p.sampling.guidance if guidance is None else guidance
        if isinstance(guidance, bool) or not (isinstance(guidance, (int, float))
                                              and 0 <= guidance < math.inf):  # fmt: skip
            raise ValueError(f"guidance must be a finite number >= 0, got {guidance!r}")
    sampler = p.sampling.sampler if sampler is None else sampler
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    for name, value, low in (("n", n, 1), ("seed", seed, 0), ("batch_size", batch_size, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < low):  # fmt: skip
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if sampler == "ancestral" and (steps is not None or eta not in (None, 0.0)):
        raise ValueError(f"steps and eta apply to the ddim sampler only, got steps={steps!r}, "
                         f"eta={eta!r} with sampler 'ancestral'")  # fmt: skip
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)
                              or not 1 <= steps <= run.diffusion.T):  # fmt: skip
        raise ValueError(f"steps must be an integer in 1..T = {run.diffusion.T}, got {steps!r}")
    eta = (p.sampling.sampling_eta if sampler == "ddim" else 0.0) if eta is None else eta
    if not (isinstance(eta, (int, float)) and math.isfinite(eta) and eta >= 0):
        raise ValueError(f"eta must be a finite number >= 0, got {eta!r}")
    steps = default_steps(p, sampler) if steps is None else steps
    batch_size = min(n, 256) if batch_size is None else batch_size
    return draw_samples(
        run.model, run.diffusion, p, n, sampler=sampler, steps=steps, eta=float(eta), seed=seed,
        batch_size=batch_size, progress=progress, labels=labels, guidance=guidance,
    )  # fmt: skip


def _check_labels(p: Preset, labels, n: int) -> torch.Tensor:
    if isinstance(p.model, CaptionUNetConfig):
        shape, words = (n, p.model.caption_length), len(p.model.tokenizer())
        if (not isinstance(labels, torch.Tensor) or tuple(labels.shape) != shape
                or labels.is_floating_point() or labels.is_complex()):  # fmt: skip
            got = (f"{labels.dtype} of shape {tuple(labels.shape)}"
                   if isinstance(labels, torch.Tensor) else type(labels).__name__)
            raise ValueError(f"labels of a caption run must be {shape} integer caption ids "
                             f"(caption_tokens), got {got}")  # fmt: skip
        if not 0 <= int(labels.min()) <= int(labels.max()) < words:
            raise ValueError(f"caption ids must lie in 0..{words - 1}")
        return labels.to(torch.int64)
    classes = getattr(p.model, "num_classes", None)
    if classes is None:
        raise ValueError(f"labels were given but preset {p.name!r} is unconditional "
                         f"(model.num_classes=None)")  # fmt: skip
    if (not isinstance(labels, torch.Tensor) or labels.shape != (n,)
            or labels.is_floating_point() or labels.is_complex()):  # fmt: skip
        raise ValueError(f"labels must be a ({n},) integer tensor, got {labels!r}")
    if labels.numel() and not 0 <= int(labels.min()) <= int(labels.max()) < classes:
        raise ValueError(f"labels must lie in 0..{classes - 1}, got values in "
                         f"[{int(labels.min())}, {int(labels.max())}]")  # fmt: skip
    return labels.to(torch.int64)


def _conditional(model: nn.Module, y: torch.Tensor, guidance: float,
                 diffusion: GaussianDiffusion):  # fmt: skip
    """The denoiser of conditions y, labels (b,) or caption ids (b, L): classifier-free
    guidance against the model's null condition (`null_condition_of`: the null label, the
    empty caption), or the conditional network itself for one without a null condition."""
    null = null_condition_of(model)
    if null is None:
        return lambda xt, t: model(xt, t, y)
    null = (torch.full_like(y, null) if not isinstance(null, torch.Tensor)
            else null.to(y.device)[None].expand_as(y))  # fmt: skip
    return ClassifierFreeGuidance(model, y, null, guidance, diffusion=diffusion)


def draw_samples(
    model: nn.Module,
    diffusion: GaussianDiffusion,
    p: Preset,
    n: int,
    *,
    sampler: str,
    steps: int | None,
    eta: float,
    seed: int,
    batch_size: int,
    progress: bool = False,
    labels: torch.Tensor | None = None,
    guidance: float = 1.0,
) -> torch.Tensor:
    """``n`` samples of preset ``p``'s shape from ``model`` (arguments as in `sample`,
    unchecked), in batches of ``batch_size`` drawn from one generator seeded with ``seed``
    on the model's device; x0_hat is clipped to [-1, 1] for images and waveforms. With
    ``labels`` (n,) or caption ids (n, L) each batch is sampled through
    `minidiff.applications.guidance.ClassifierFreeGuidance` with scale ``guidance`` and
    the model's null condition (`minidiff.training.conditioning.null_condition_of`: the
    null label, the empty caption), or, for a network without a null label (DiffWave),
    from the conditional network.

    Returns:
        (n, C, H, W), (n, D) or (n, 1, S).
    """
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    shape = p.sample_shape
    clip = 1.0 if p.model_kind in CLIPPED_KINDS else None  # images, waveforms in [-1, 1]
    calls_per_sample = diffusion.T if sampler == "ancestral" else (steps or diffusion.T)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        total = math.ceil(n / batch_size) * calls_per_sample
        bar = tqdm(total=total, desc=f"sampling {n} ({sampler})", unit="call", dynamic_ncols=True)

    net = model  # the denoiser of the current batch

    def denoiser(xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if bar is not None:
            bar.update(1)
        return net(xt, t)

    was_training = model.training
    model.eval()
    batches = []
    try:
        for start in range(0, n, batch_size):
            size = (min(batch_size, n - start), *shape)
            if labels is not None:
                y = labels[start : start + size[0]].to(device)  # (b,) or (b, L)
                net = _conditional(model, y, guidance, diffusion)
            if sampler == "ancestral":
                x0 = sample_ancestral(denoiser, diffusion, size, clip_x0=clip, generator=generator,
                                      device=device)  # fmt: skip
            elif sampler == "ddim":
                x0 = sample_ddim(denoiser, diffusion, size, steps=steps, eta=eta, clip_x0=clip,
                                 generator=generator, device=device)  # fmt: skip
            else:
                raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
            batches.append(x0)
    finally:
        model.train(was_training)
        if bar is not None:
            bar.close()
    return torch.cat(batches)
