"""Benchmark: guidance on the 8x8 digits, judged by the digits classifier.

Stage ``class`` (a class-conditional U-Net, `minidiff.applications.train_conditional`):
1. trains it (or loads it from ``--cache``), timing the training;
2. for each guidance scale s in {0, 1, 2, 3, 5}, draws ``--per-class`` samples of every
   class with classifier-free guidance and scores them with the digits classifier of
   `minidiff.evaluation` (fitted on the real train split): the share assigned to the
   class asked for (chance 10%; target >= 95% at the best s), the confident share (top
   probability >= 0.9), and the Fréchet distance in the classifier's features to the
   held-out test digits (expected to fall, then rise, with s);
3. trains a noise-aware classifier p(y | x_t, t) and does the same with classifier
   guidance (eps form, Dhariwal & Nichol 2021, Algorithm 2) on the model's
   unconditional prediction (the null label).

Stage ``caption`` (a caption-conditioned U-Net with a small caption encoder):
1. trains it (or loads it), timing the training;
2. accuracy of the digit for captions from the training templates and from the held-out
   templates, at s = 1 (no guidance) and s = 3;
3. attribute words: for "a thick N" / "a thin N" and "a N leaning right" / "a N leaning
   left", the mean measured ink (thickness) and slant of the samples, per digit, and the
   share of digits where the attribute moves the way the caption says.

Run on one thread (``--threads 1``) of a machine shared with other work: timings are
pessimistic. Quality figures do not depend on timing.

Run:  python benchmarks/guidance.py --stage class [--steps N] [--per-class 20] [--cache DIR]
      python benchmarks/guidance.py --stage caption [--steps N] [--cache DIR]
Writes benchmarks/results/guidance_<stage>.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `benchmarks` as a package

from benchmarks.toy2d import write_results  # noqa: E402
from minidiff.applications import captions  # noqa: E402
from minidiff.applications.pipeline import (  # noqa: E402
    ConditionalConfig,
    ConditionalModel,
    build_diffusion,
    build_model,
    sample_classifier_guided,
    sample_guided,
    train_conditional,
    train_digits_classifier,
)
from minidiff.evaluation import DigitsClassifier, digit_quality, digits_reference  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SCALES = (0.0, 1.0, 2.0, 3.0, 5.0)
TARGET_ACCURACY = 0.95


def _load_or_train(config: ConditionalConfig, cache: Path | None) -> ConditionalModel:
    """Train (and save to ``cache``), or load a model trained with the same config."""
    name = f"{config.condition}-{config.steps}-{config.ema_decay}.pt"
    path = None if cache is None else cache / name
    if path is not None and path.exists():
        saved = torch.load(path, weights_only=False)
        if saved["config"] == asdict(config):
            from minidiff.data import load_digits

            tokenizer = thresholds = None
            if config.condition == "caption":
                tokenizer = captions.WordTokenizer.for_digits()
                thresholds = captions.AttributeThresholds.fit(*load_digits("train", labels=True))
            model = build_model(config, len(tokenizer) if tokenizer else None)
            model.load_state_dict(saved["state"])
            return ConditionalModel(
                config, model.eval(), build_diffusion(config), tokenizer, thresholds,
                saved["losses"], saved["train_seconds"],
            )  # fmt: skip
    trained = train_conditional(config, progress=True)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"config": asdict(config), "state": trained.model.state_dict(),
                  "losses": trained.losses, "train_seconds": trained.train_seconds}  # fmt: skip
        torch.save(record, path)
    return trained


def score(samples: torch.Tensor, requested: np.ndarray, judge, reference) -> dict:
    """Accuracy (predicted == requested), confident share and Fréchet distance."""
    probabilities = judge.predict_proba(samples)
    quality = digit_quality(samples, judge, reference=reference)
    return {
        "accuracy": float(np.mean(probabilities.argmax(axis=1) == requested)),
        "confident_share": quality["confident_share"],
        "frechet": quality["frechet"],
        "frechet_floor": quality["frechet_floor"],
    }


def _table(title: str, rows: list[dict]) -> str:
    lines = [title, f"{'s':>5}{'accuracy':>10}{'confident':>11}{'Frechet':>10}{'seconds':>9}"]
    lines += [f"{r['scale']:>5g}{r['accuracy']:>10.3f}{r['confident_share']:>11.3f}"
              f"{r['frechet']:>10.2f}{r['seconds']:>9.1f}" for r in rows]  # fmt: skip
    return "\n".join(lines)


def class_stage(config, per_class: int, sampling_steps: int, classifier_steps: int, cache):
    trained = _load_or_train(config, cache)
    judge = DigitsClassifier.fit(seed=0)
    reference = digits_reference(judge)
    labels = np.repeat(np.arange(10), per_class)
    rows = {"classifier_free": [], "classifier": []}
    for s in SCALES:
        start = time.perf_counter()
        x = sample_guided(trained, labels, s, steps=sampling_steps,
                          generator=torch.Generator().manual_seed(1))  # fmt: skip
        row = {"scale": s, **score(x, labels, judge, reference)}
        rows["classifier_free"].append({**row, "seconds": time.perf_counter() - start})
    print(_table("classifier-free guidance", rows["classifier_free"]), flush=True)
    start = time.perf_counter()
    classifier = train_digits_classifier(trained, steps=classifier_steps)
    classifier_seconds = time.perf_counter() - start
    for s in SCALES:
        start = time.perf_counter()
        x = sample_classifier_guided(trained, classifier, labels, s, steps=sampling_steps,
                                     generator=torch.Generator().manual_seed(1))  # fmt: skip
        row = {"scale": s, **score(x, labels, judge, reference)}
        rows["classifier"].append({**row, "seconds": time.perf_counter() - start})
    print(_table(f"classifier guidance (noise-aware classifier: {classifier_steps} steps, "
                 f"{classifier_seconds:.0f} s)", rows["classifier"]))  # fmt: skip
    best = max(r["accuracy"] for r in rows["classifier_free"])
    print(f"best classifier-free accuracy {best:.3f} (target >= {TARGET_ACCURACY}): "
          f"{'PASS' if best >= TARGET_ACCURACY else 'FAIL'}")  # fmt: skip
    return {
        "train_seconds": trained.train_seconds,
        "final_loss": float(np.mean(trained.losses[-50:])),
        "classifier_seconds": classifier_seconds,
        "frechet_floor": reference.frechet_floor,
        **rows,
    }


def _label_only(templates) -> list[str]:
    """The templates that name the digit and no attribute."""
    return [t for t in templates if not any(slot in t for slot in ("{w}", "{a}", "{s}"))]


def caption_stage(config, per_class: int, sampling_steps: int, cache):
    trained = _load_or_train(config, cache)
    judge = DigitsClassifier.fit(seed=0)
    reference = digits_reference(judge)
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), per_class)
    result = {"train_seconds": trained.train_seconds,
              "final_loss": float(np.mean(trained.losses[-50:])), "templates": []}  # fmt: skip
    lines = [f"{'templates':<12}{'s':>5}{'accuracy':>10}{'confident':>11}{'Frechet':>10}"]
    for name, templates in (("training", _label_only(captions.TRAIN_TEMPLATES)),
                            ("held-out", _label_only(captions.HELD_OUT_TEMPLATES))):  # fmt: skip
        texts = [captions.caption(templates[rng.integers(len(templates))], k) for k in labels]
        for s in (1.0, 3.0):
            x = sample_guided(trained, texts, s, steps=sampling_steps,
                              generator=torch.Generator().manual_seed(2))  # fmt: skip
            row = {"templates": name, "scale": s, **score(x, labels, judge, reference)}
            result["templates"].append(row)
            lines.append(f"{name:<12}{s:>5g}{row['accuracy']:>10.3f}"
                         f"{row['confident_share']:>11.3f}{row['frechet']:>10.2f}")  # fmt: skip
    print("\n".join(lines), flush=True)
    pairs = {
        "thickness (ink)": (
            ("a {w} {n}", ("thick", "")),
            ("a {w} {n}", ("thin", "")),
            captions.ink,
        ),
        "slant": (("a {n} {s}", ("", "right")), ("a {n} {s}", ("", "left")), captions.slant),
    }
    digits = np.repeat(np.arange(10), per_class)
    result["attributes"] = {}
    for name, (high, low, measure) in pairs.items():
        for s in (1.0, 3.0):
            values = []
            for template, attributes in (high, low):
                texts = [captions.caption(template, k, *attributes) for k in digits]
                x = sample_guided(trained, texts, s, steps=sampling_steps,
                                  generator=torch.Generator().manual_seed(3))  # fmt: skip
                values.append(np.array([measure(x[digits == k]).mean() for k in range(10)]))
            moved = float(np.mean(values[0] > values[1]))
            result["attributes"][f"{name} s={s:g}"] = {
                "high": values[0].tolist(),
                "low": values[1].tolist(),
                "share_moved": moved,
            }
            print(f"{name:<16} s={s:g}: mean {values[0].mean():.3f} (high word) vs "
                  f"{values[1].mean():.3f} (low word); moves the right way for "
                  f"{moved * 10:.0f}/10 digits", flush=True)  # fmt: skip
    return result


def main(
    stage: str, *, steps: int | None = None, per_class: int = 20, sampling_steps: int = 25,
    classifier_steps: int = 400, threads: int = 1, cache: Path | None = None,
    ema_decay: float | None = None,
) -> dict:  # fmt: skip
    """Run one stage, print its tables and write its JSON."""
    if stage not in ("class", "caption"):
        raise ValueError(f"stage must be 'class' or 'caption', got {stage!r}")
    torch.set_num_threads(threads)
    config = ConditionalConfig(condition=stage)
    if steps is not None:
        config = replace(config, steps=steps)
    if ema_decay is not None:  # a short run needs a shorter average than the preset's 0.999
        config = replace(config, ema_decay=ema_decay)
    print(f"{stage} model: {config.steps} steps of batch {config.batch_size}, EMA decay "
          f"{config.ema_decay}, DDIM "
          f"{sampling_steps} steps (eta {config.sampling_eta}), {per_class} samples per "
          f"class and setting, {threads} torch thread(s), machine shared", flush=True)  # fmt: skip
    if stage == "class":
        result = class_stage(config, per_class, sampling_steps, classifier_steps, cache)
    else:
        result = caption_stage(config, per_class, sampling_steps, cache)
    print(f"training: {result['train_seconds']:.0f} s for {config.steps} steps "
          f"(final loss {result['final_loss']:.4f})")  # fmt: skip
    settings = dict(stage=stage, config=asdict(config), per_class=per_class,
                    sampling_steps=sampling_steps, threads=threads)  # fmt: skip
    write_results(RESULTS / f"guidance_{stage}.json", settings, [result], torch=torch.__version__)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", choices=("class", "caption"), required=True)
    parser.add_argument("--steps", type=int, default=None, help="training steps (default 2800)")
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--sampling-steps", type=int, default=25)
    parser.add_argument("--classifier-steps", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=None, help="save/load trained models here")
    parser.add_argument("--ema-decay", type=float, default=None, help="default: 0.999")
    args = parser.parse_args()
    main(args.stage, steps=args.steps, per_class=args.per_class,
         sampling_steps=args.sampling_steps, classifier_steps=args.classifier_steps,
         threads=args.threads, cache=args.cache, ema_decay=args.ema_decay)  # fmt: skip
