"""Benchmark: guidance on the 8x8 digits, judged by the digits classifier.

Each stage trains its preset with the command line, ``minidiff train --config NAME``
(the `minidiff.training.Trainer`), in a subprocess on ``--train-threads`` threads (2: the
two cores of the reference machine), timing it (wall clock and the subprocess's CPU
time); a run folder already in ``--cache`` with the same settings is reused with its
recorded times. Sampling and scoring run on ``--threads`` threads (1: on a busy machine
two threads mostly wait for each other).

Stage ``class`` (``digits-cond``):
1. for each guidance scale s in {0, 1, 2, 3, 5}, draws ``--per-class`` samples of every
   class with classifier-free guidance (`minidiff.runs.sample`) and scores them with the
   digits classifier of `minidiff.evaluation` (fitted on the real train split): the share
   assigned to the class asked for (chance 10%; target >= 95% at the best s), the
   confident share (top probability >= 0.9), and the Fréchet distance in the
   classifier's features to the held-out test digits, next to its floor (train vs test
   digits); it says whether that distance falls, then rises, with s;
2. trains a noise-aware classifier p(y | x_t, t) and does the same with classifier
   guidance (eps form, Dhariwal & Nichol 2021, Algorithm 2) on the run's unconditional
   prediction (the null label).

Stage ``caption`` (``digits-caption``):
1. accuracy of the digit for captions from the training templates and from the held-out
   templates, without guidance (s = 1) and with it (s = 3);
2. attribute words: for "a thick N" / "a thin N" and "a N leaning right" / "a N leaning
   left", the mean measured ink (thickness) and slant of the samples, per digit, and the
   share of digits where the attribute moves the way the caption says.

Run on a machine shared with other work: timings are pessimistic. Quality figures do not
depend on timing.

Run:  python benchmarks/guidance.py --stage class [--steps N] [--train-threads 2] [--cache DIR]
      python benchmarks/guidance.py --stage caption [--steps N] [--cache DIR]
Writes benchmarks/results/guidance_<stage>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `benchmarks` as a package

from benchmarks.toy2d import write_results  # noqa: E402
from minidiff import runs  # noqa: E402
from minidiff.applications import captions  # noqa: E402
from minidiff.applications.pipeline import (  # noqa: E402
    sample_classifier_guided,
    train_digits_classifier,
)
from minidiff.evaluation import DigitsClassifier, digit_quality, digits_reference  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SCALES = (0.0, 1.0, 2.0, 3.0, 5.0)
TARGET_ACCURACY = 0.95
PRESETS = {"class": "digits-cond", "caption": "digits-caption"}
TIMES_FILE = "benchmark_training.json"  # the recorded training times, in the run folder


def train_with_cli(name: str, settings: list[str], threads: int, cache: Path | None) -> dict:
    """``minidiff train --config name --set ...`` in a subprocess on ``threads`` threads
    (or the run of the same settings in ``cache``); returns the folder and its times."""
    tag = "-".join(s.replace("training.", "").replace("=", "") for s in settings)
    folder = (cache or Path(tempfile.mkdtemp())) / f"{name}-{tag}".rstrip("-")
    record_path = folder / TIMES_FILE
    if record_path.is_file():
        return json.loads(record_path.read_text())
    argv = [sys.executable, "-m", "minidiff", "train", "--config", name,
            *[a for s in settings for a in ("--set", s)], "--out", str(folder),
            "--device", "cpu", "--no-progress"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    logged = runs.read_metrics(folder) if (folder / "metrics.jsonl").is_file() else []
    losses = [None] + [r["loss"] for r in logged if r.get("loss") is not None]
    record = {"folder": str(folder), "command": " ".join(argv[1:]), "threads": threads,
              "wall_seconds": wall, "cpu_seconds": cpu, "final_loss": losses[-1]}  # fmt: skip
    record_path.write_text(json.dumps(record, indent=2))
    return record


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
    lines = [title, f"{'s':>5}{'accuracy':>10}{'confident':>11}{'Frechet':>10}{'floor':>7}"
                    f"{'seconds':>9}"]  # fmt: skip
    lines += [f"{r['scale']:>5g}{r['accuracy']:>10.3f}{r['confident_share']:>11.3f}"
              f"{r['frechet']:>10.2f}{r['frechet_floor']:>7.2f}{r['seconds']:>9.1f}"
              for r in rows]  # fmt: skip
    return "\n".join(lines)


def frechet_trend(rows: list[dict]) -> str:
    """Whether the Fréchet distance falls and then rises over the scales, in words."""
    values = [r["frechet"] for r in rows]
    best = int(np.argmin(values))
    falls = all(values[i] > values[i + 1] for i in range(best))
    rises = all(values[i] < values[i + 1] for i in range(best, len(values) - 1))
    shape = ("falls, then rises" if falls and rises and 0 < best < len(values) - 1
             else "falls throughout" if best == len(values) - 1 and falls
             else "does not fall then rise")  # fmt: skip
    return (f"Frechet distance {shape}: lowest {values[best]:.2f} at s = "
            f"{rows[best]['scale']:g} (floor {rows[0]['frechet_floor']:.2f})")


def _timed(draw) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    x = draw()
    return x, time.perf_counter() - start


def class_stage(run, per_class: int, sampling_steps: int, classifier_steps: int) -> dict:
    judge = DigitsClassifier.fit(seed=0)
    reference = digits_reference(judge)
    labels = torch.arange(10).repeat_interleave(per_class)
    rows = {"classifier_free": [], "classifier": []}
    for s in SCALES:
        x, seconds = _timed(lambda s=s: runs.sample(run, len(labels), labels=labels, guidance=s,
                                                    steps=sampling_steps, seed=1))  # fmt: skip
        rows["classifier_free"].append({"scale": s, **score(x, labels.numpy(), judge, reference),
                                        "seconds": seconds})  # fmt: skip
    print(_table("classifier-free guidance", rows["classifier_free"]))
    print(frechet_trend(rows["classifier_free"]), flush=True)
    start = time.perf_counter()
    classifier = train_digits_classifier(run, steps=classifier_steps)
    classifier_seconds = time.perf_counter() - start
    for s in SCALES:
        x, seconds = _timed(lambda s=s: sample_classifier_guided(
            run, classifier, labels, s, steps=sampling_steps, seed=1))  # fmt: skip
        rows["classifier"].append({"scale": s, **score(x, labels.numpy(), judge, reference),
                                   "seconds": seconds})  # fmt: skip
    print(_table(f"classifier guidance (noise-aware classifier: {classifier_steps} steps, "
                 f"{classifier_seconds:.0f} s)", rows["classifier"]))  # fmt: skip
    print(frechet_trend(rows["classifier"]))
    best = max(r["accuracy"] for r in rows["classifier_free"])
    print(f"best classifier-free accuracy {best:.3f} (target >= {TARGET_ACCURACY}): "
          f"{'PASS' if best >= TARGET_ACCURACY else 'FAIL'}")  # fmt: skip
    return {"classifier_seconds": classifier_seconds, "frechet_floor": reference.frechet_floor,
            **rows}  # fmt: skip


def _label_only(templates) -> list[str]:
    """The templates that name the digit and no attribute."""
    return [t for t in templates if not any(slot in t for slot in ("{w}", "{a}", "{s}"))]


def _caption_samples(run, texts: list[str], s: float, steps: int, seed: int) -> torch.Tensor:
    tokens = runs.caption_tokens(run.preset, texts, len(texts))
    return runs.sample(run, len(texts), labels=tokens, guidance=s, steps=steps, seed=seed)


def caption_stage(run, per_class: int, sampling_steps: int) -> dict:
    judge = DigitsClassifier.fit(seed=0)
    reference = digits_reference(judge)
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), per_class)
    result = {"templates": [], "attributes": {}}
    lines = [f"{'templates':<12}{'s':>5}{'accuracy':>10}{'confident':>11}{'Frechet':>10}"]
    for name, templates in (("training", _label_only(captions.TRAIN_TEMPLATES)),
                            ("held-out", _label_only(captions.HELD_OUT_TEMPLATES))):  # fmt: skip
        texts = [captions.caption(templates[rng.integers(len(templates))], k) for k in labels]
        for s in (1.0, 3.0):
            x = _caption_samples(run, texts, s, sampling_steps, seed=2)
            row = {"templates": name, "scale": s, **score(x, labels, judge, reference)}
            result["templates"].append(row)
            lines.append(f"{name:<12}{s:>5g}{row['accuracy']:>10.3f}"
                         f"{row['confident_share']:>11.3f}{row['frechet']:>10.2f}")  # fmt: skip
    print("\n".join(lines), flush=True)
    pairs = {
        "thickness (ink)": (("a {w} {n}", ("thick", "")), ("a {w} {n}", ("thin", "")),
                            captions.ink),  # fmt: skip
        "slant": (("a {n} {s}", ("", "right")), ("a {n} {s}", ("", "left")), captions.slant),
    }
    for name, (high, low, measure) in pairs.items():
        for s in (1.0, 3.0):
            values = []
            for template, attributes in (high, low):
                texts = [captions.caption(template, k, *attributes) for k in labels]
                x = _caption_samples(run, texts, s, sampling_steps, seed=3)
                values.append(np.array([measure(x[labels == k]).mean() for k in range(10)]))
            moved = float(np.mean(values[0] > values[1]))
            result["attributes"][f"{name} s={s:g}"] = {
                "high": values[0].tolist(), "low": values[1].tolist(), "share_moved": moved,
            }  # fmt: skip
            print(f"{name:<16} s={s:g}: mean {values[0].mean():.3f} (high word) vs "
                  f"{values[1].mean():.3f} (low word); moves the right way for "
                  f"{moved * 10:.0f}/10 digits", flush=True)  # fmt: skip
    return result


def main(
    stage: str, *, steps: int | None = None, ema_decay: float | None = None, per_class: int = 20,
    sampling_steps: int = 25, classifier_steps: int = 400, threads: int = 1,
    train_threads: int = 2, cache: Path | None = None,
) -> dict:  # fmt: skip
    """Train (through the CLI) and measure one stage; print its tables, write its JSON."""
    if stage not in PRESETS:
        raise ValueError(f"stage must be one of {tuple(PRESETS)}, got {stage!r}")
    settings = [f"training.steps={steps}"] if steps is not None else []
    # a short run needs a shorter weight average than the preset's 0.999 (see the README)
    settings += [f"training.ema_decay={ema_decay}"] if ema_decay is not None else []
    torch.set_num_threads(threads)
    trained = train_with_cli(PRESETS[stage], settings, train_threads, cache)
    run = runs.load_run(trained["folder"], device="cpu")
    t = run.preset.training
    print(f"{run.preset.name}: {run.step} steps of batch {t.batch_size}, EMA decay "
          f"{t.ema_decay}, p_uncond {t.p_uncond}; DDIM {sampling_steps} steps (eta "
          f"{run.preset.sampling.sampling_eta}), {per_class} samples per class and setting "
          f"on {threads} thread(s); machine shared", flush=True)  # fmt: skip
    print(f"training ({trained['command']}, OMP_NUM_THREADS={trained['threads']}): "
          f"{trained['wall_seconds']:.0f} s wall, {trained['cpu_seconds']:.0f} s CPU for "
          f"{run.step} steps ({trained['wall_seconds'] / run.step:.2f} s/step; last logged "
          f"loss {trained['final_loss']})", flush=True)  # fmt: skip
    if stage == "class":
        result = class_stage(run, per_class, sampling_steps, classifier_steps)
    else:
        result = caption_stage(run, per_class, sampling_steps)
    result = {"training": trained, "steps": run.step, **result}
    write_results(RESULTS / f"guidance_{stage}.json",
                  dict(stage=stage, preset=run.preset.name, overrides=settings,
                       per_class=per_class, sampling_steps=sampling_steps, threads=threads,
                       train_threads=train_threads), [result],
                  torch=torch.__version__)  # fmt: skip
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", choices=tuple(PRESETS), required=True)
    parser.add_argument("--steps", type=int, default=None, help="training steps (preset: 2800)")
    parser.add_argument("--ema-decay", type=float, default=None, help="preset: 0.999")
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--sampling-steps", type=int, default=25)
    parser.add_argument("--classifier-steps", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1, help="sampling and scoring")
    parser.add_argument("--train-threads", type=int, default=2, help="minidiff train")
    parser.add_argument("--cache", type=Path, default=None, help="keep/reuse the run folders here")
    args = parser.parse_args()
    main(args.stage, steps=args.steps, ema_decay=args.ema_decay, per_class=args.per_class,
         sampling_steps=args.sampling_steps, classifier_steps=args.classifier_steps,
         threads=args.threads, train_threads=args.train_threads,
         cache=args.cache)  # fmt: skip
