"""``minidiff sample``: a grid of samples from a checkpoint of ``minidiff train``.

    minidiff sample --checkpoint runs/digits --out grid.png
    minidiff sample --checkpoint runs/cifar10 --sampler ddim --steps 50 --n 64 --out grid.png
    minidiff sample --checkpoint runs/digits-cond --class 7 --guidance 3 --out seven.png
    minidiff sample --checkpoint runs/digits-cond --class all --out classes.png
    minidiff sample --checkpoint runs/digits-caption --prompt "a thick seven" --out seven.png
    minidiff sample --checkpoint runs/text-kjv --n 5 --length 256      # prints text
    minidiff sample --checkpoint runs/text-kjv --prompt "In the beginning ____ the earth"
    minidiff sample --checkpoint runs/audio --n 8 --out tones/         # WAVs + spectrograms

The model is rebuilt from the preset stored in the checkpoint and sampled with its EMA
weights (`minidiff.runs.load_run`, `minidiff.runs.sample`). A class-conditional run (a
``-cond`` preset) samples --class with classifier-free guidance of scale --guidance (s = 0
unconditional, 1 conditional; default: the preset's ``sampling.guidance``); ``--class all``
draws one row per class. A caption run (``digits-caption``) samples --prompt the same way,
guided against the empty caption; the prompt is read with the vocabulary stored in the
checkpoint, and a word outside it is read as the unknown token, with a warning that names
it. An existing --out file is never overwritten.

A text run (``text-kjv``) prints its samples, one block each (and writes them to --out
if given); ``--prompt`` keeps its characters and generates those written ``_``. An audio
run (``audio``, ``audio-digits``) writes --out/sample_I.wav and --out/spectrograms.png
into a new folder --out (`minidiff.runs.save_audio`).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from minidiff.cli._common import add_device_option, fail, float_at_least, int_at_least

__all__ = ["add_parser", "run"]


def add_parser(commands) -> argparse.ArgumentParser:
    """Add ``sample`` to the subcommands ``commands`` (an argparse subparsers object)."""
    sample = commands.add_parser(
        "sample",
        help="draw a grid of samples from a checkpoint of `minidiff train`",
        description="Rebuild the model of a checkpoint (a run folder, its checkpoints/ "
        "folder or one step_N folder), draw samples from its EMA weights and write them "
        "as one PNG grid (a scatter plot for 2-D data).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sample.add_argument("--checkpoint", required=True, type=Path, metavar="PATH")
    sample.add_argument("--out", type=Path, default=None,
                        help="the PNG file to write (images); a new folder for the WAV files "
                        "and spectrograms (audio); a text file (text, optional)")  # fmt: skip
    sample.add_argument("--length", type=int_at_least(1), default=None,
                        help="text: characters per sample; audio: samples per clip "
                        "(default: the preset's model.length)")  # fmt: skip
    sample.add_argument("--sampler", default=None,
                        help="ancestral or ddim (default: the preset's sampler)")  # fmt: skip
    sample.add_argument("--steps", type=int_at_least(1), default=None,
                        help="DDIM steps (default: the preset's sampling_steps, or T)")  # fmt: skip
    sample.add_argument("--eta", type=float_at_least(0.0), default=None,
                        help="DDIM stochasticity: 0 deterministic, 1 ancestral-like "
                        "(default: the preset's sampling_eta)")  # fmt: skip
    sample.add_argument("--n", type=int_at_least(1), default=None,
                        help="number of samples (default: 64 images; the preset's "
                        "sampling.num_samples for text and audio)")  # fmt: skip
    sample.add_argument("--seed", type=int_at_least(0), default=0, help="random seed")
    sample.add_argument("--batch-size", type=int_at_least(1), default=None,
                        help="samples drawn at once (default: all, at most 256)")  # fmt: skip
    sample.add_argument("--nrow", type=int_at_least(1), default=None,
                        help="images per row (default: a square grid)")  # fmt: skip
    sample.add_argument("--scale", type=int_at_least(1), default=1,
                        help="enlarge each pixel to scale x scale")  # fmt: skip
    sample.add_argument("--class", dest="label", default=None, metavar="CLASS",
                        help="a class of a class-conditional run, or 'all' (one row per "
                        "class, ceil(n / classes) samples each)")  # fmt: skip
    sample.add_argument("--prompt", default=None, metavar="TEXT",
                        help="a caption run (digits-caption): the caption, e.g. 'a thick "
                        "seven'; a text run: infill this prompt, generating its '_' "
                        "characters")  # fmt: skip
    sample.add_argument("--guidance", type=float_at_least(0.0), default=None,
                        help="classifier-free guidance scale s with --class or --prompt: 0 "
                        "unconditional, 1 conditional (default: the preset's "
                        "sampling.guidance)")  # fmt: skip
    add_device_option(sample)
    sample.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return sample


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``minidiff sample`` with parsed arguments; returns the exit status."""
    from minidiff import atomic, runs
    from minidiff.configs import SAMPLERS
    from minidiff.training.checkpoint import CheckpointError

    if args.sampler is not None and args.sampler not in SAMPLERS:
        fail("sample", f"--sampler must be one of {SAMPLERS}, got {args.sampler!r}")
    if args.label is not None and args.prompt is not None:
        fail("sample", "give --class or --prompt, not both")
    out: Path | None = args.out
    if out is not None and (out.exists() or out.is_symlink()):
        fail("sample", f"--out {str(out)!r} exists; it is never overwritten: choose another name")
    try:
        device = runs.resolve_device(args.device)
        loaded = runs.load_run(args.checkpoint, device=device)
        kind = loaded.preset.model_kind
        _check_options(args, kind)
        n = args.n if args.n is not None else (
            64 if kind in ("unet", "mlp") else loaded.preset.sampling.num_samples)
        if out is not None:
            atomic.check_output_location(out, "--out", folder=kind == "diffwave")
        if loaded.preset.diffusion_kind in runs.TEXT_KINDS:
            texts = runs.sample_run_text(loaded, n, length=args.length, prompt=args.prompt,
                                         steps=args.steps, seed=args.seed)  # fmt: skip
            return _print_text(texts, out, loaded)
        if kind == "diffwave" and args.length is not None:  # clips of another length
            model = dataclasses.replace(loaded.preset.model, length=args.length)
            loaded = dataclasses.replace(
                loaded, preset=dataclasses.replace(loaded.preset, model=model))
        labels, nrow = None, args.nrow
        if args.label is not None:
            labels = runs.class_labels(loaded.preset, _class(args.label), n)
            if args.label == "all":  # one row per class
                nrow = labels.numel() // loaded.preset.model.num_classes
        elif args.prompt is not None:
            labels = runs.caption_tokens(loaded.preset, args.prompt, n)
            _warn_unknown_words(loaded.preset, args.prompt)
        x0 = runs.sample(
            loaded, len(labels) if labels is not None else n, sampler=args.sampler,
            steps=args.steps, eta=args.eta, seed=args.seed, batch_size=args.batch_size,
            progress=not args.no_progress, labels=labels, guidance=args.guidance,
        )  # fmt: skip
    except (ValueError, CheckpointError) as err:
        fail("sample", str(err))
    if out.exists():  # created while sampling
        fail("sample", f"--out {str(out)!r} appeared while sampling; it is not overwritten")
    p = loaded.preset
    if kind == "diffwave":
        titles = None if labels is None else [f"digit {int(d)}" for d in labels]
        paths = runs.save_audio(x0, out, titles=titles)
        print(f"{out}: {len(paths) - 1} WAV files and {paths[-1].name} of {p.name} "
              f"(step {loaded.step}) from {loaded.path}")  # fmt: skip
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    runs.save_image_grid(x0, out, nrow, scale=args.scale)
    sampler = args.sampler or p.sampling.sampler
    scale = p.sampling.guidance if args.guidance is None else args.guidance
    asked = f"class {args.label}" if args.prompt is None else f"prompt {args.prompt!r}"
    guided = "" if labels is None else f", {asked}, guidance {scale:g}"
    print(f"{out}: {x0.shape[0]} samples of {p.name} (step {loaded.step}, {sampler}{guided}) "
          f"from {loaded.path}")  # fmt: skip
    return 0


def _warn_unknown_words(p, prompt: str) -> None:
    """One line on stderr naming the prompt's words outside the run's vocabulary."""
    import warnings

    unknown = p.model.tokenizer().unknown_words(prompt)
    if unknown:
        warnings.warn(f"{len(unknown)} word(s) of --prompt not in the vocabulary of "
                      f"{p.name!r}, read as the unknown token: {', '.join(unknown)}; "
                      f"known words: {' '.join(p.model.vocabulary)}", stacklevel=2)  # fmt: skip


def _class(text: str) -> int | str:
    """``"all"`` or the integer of ``text`` (range checked by `minidiff.runs.class_labels`)."""
    if text == "all":
        return text
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--class must be 'all' or an integer class, got {text!r}") from None


def _check_options(args: argparse.Namespace, kind: str) -> None:
    """Refuse the options the run's kind does not take, and a missing --out."""
    if kind in ("mlp", "diffwave") and args.prompt is not None:  # images: `caption_tokens`
        raise ValueError(f"--prompt is for caption and text runs; this run's model is {kind!r}")
    if kind not in ("sequence", "diffwave") and args.length is not None:
        raise ValueError(f"--length is for text and audio runs; this run's model is {kind!r}")
    if kind != "sequence" and args.out is None:
        raise ValueError("--out is required: the PNG file (images) or the new folder (audio)")
    if kind == "sequence" and args.label is not None:
        raise ValueError("--class is for class-conditional image or audio runs")


def _print_text(texts: list[str], out: Path | None, loaded) -> int:
    """Print each sample under a rule; write them to ``out`` too if given."""
    from minidiff import atomic

    blocks = [f"--- sample {i} ---\n{text}" for i, text in enumerate(texts)]
    print("\n".join(blocks))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(out, "\n".join(blocks) + "\n")
        print(f"{out}: {len(texts)} samples of {loaded.preset.name} (step {loaded.step})")
    return 0
