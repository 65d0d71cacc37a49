"""Benchmark: train the `digits` preset on 2 CPU cores and judge its samples.

1. trains the ``digits`` preset (`minidiff.configs.preset("digits")`, optionally with
   ``--steps`` / ``--set section.field=value`` overrides) with `minidiff.runs.train`, timing it;
2. loads the run (EMA weights, `minidiff.runs.load_run`) and draws ``--samples`` (1,000)
   samples with the preset's sampler (`minidiff.runs.sample`), timing it;
3. fits the digits classifier of `minidiff.evaluation` on the real "train" split and
   scores the samples (`digit_quality`): the share classified with probability >= 0.9,
   the class histogram, its entropy and the classes present, and the Fréchet distance in
   the classifier's 64 features to the held-out "test" split, next to its floor (the same
   distance from the real train split to the test split).

Targets (issue "Training for real"): >= 90% confident samples, all ten classes present,
and the whole benchmark (training, sampling, classifier and scoring) within 10 minutes.
The real test digits' own confident share is printed beside the samples' for scale.

Run:  .venv/bin/python benchmarks/digits.py [--threads 2] [--steps N] [--samples 1000]
      [--out RUN_DIR] [--set field=value ...]
Writes benchmarks/results/digits.json and digits.png (100 samples, 10 per row).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `benchmarks` as a package

from benchmarks.toy2d import write_results  # noqa: E402
from minidiff.configs import describe, override, preset  # noqa: E402
from minidiff.evaluation import (  # noqa: E402
    CONFIDENCE_THRESHOLD,
    DigitsClassifier,
    digit_quality,
    digits_reference,
)

RESULTS = Path(__file__).resolve().parent / "results" / "digits.json"
TARGET_CONFIDENT = 0.90  # share of samples with max_k p(k | x) >= 0.9
TARGET_CLASSES = 10
TARGET_SECONDS = 600.0  # the whole benchmark, on 2 CPU cores
GRID_SAMPLES = 100
GRID_SCALE = 4  # each pixel drawn as 4 x 4


def train_and_sample(p, out_dir: Path, *, n_samples: int, seed: int, device: str, progress: bool):
    """Train preset ``p`` into ``out_dir``, load the run and draw ``n_samples`` samples.

    Returns:
        samples (n, 1, S, S) on the CPU, and a dict of timings and run facts.
    """
    from minidiff import runs

    cpu_start, start = time.process_time(), time.perf_counter()
    trainer = runs.train(p, out_dir, device=device, progress=progress)
    train_seconds = time.perf_counter() - start
    train_cpu_seconds = time.process_time() - cpu_start
    run = runs.load_run(out_dir, device=device)
    start = time.perf_counter()
    samples = runs.sample(run, n_samples, seed=seed, progress=progress).cpu()
    sample_seconds = time.perf_counter() - start
    facts = {
        "steps": int(trainer.step),
        "train_seconds": train_seconds,
        "train_cpu_seconds": train_cpu_seconds,
        "steps_per_second": trainer.step / train_seconds if train_seconds > 0 else math.nan,
        "sample_seconds": sample_seconds,
        "final_loss": _last_loss(out_dir),
    }
    return samples, facts


def _last_loss(out_dir: Path) -> float | None:
    """The loss of the last line of the run's metrics.jsonl (None if there is none)."""
    import json

    from minidiff.training.trainer import METRICS_FILE

    path = out_dir / METRICS_FILE
    if not path.exists():
        return None
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return json.loads(lines[-1]).get("loss") if lines else None


def evaluate(samples, *, classifier_seed: int = 0) -> dict:
    """Fit the classifier and score ``samples`` (N, 1, S, S) in [-1, 1]; the scores of
    `digit_quality` plus the classifier's test accuracy and the time taken."""
    start = time.perf_counter()
    classifier = DigitsClassifier.fit(seed=classifier_seed)
    quality = digit_quality(samples, classifier, reference=digits_reference(classifier))
    return {
        **quality,
        "classifier_test_accuracy": classifier.test_accuracy,
        "evaluate_seconds": time.perf_counter() - start,
    }


def check_targets(row: dict) -> dict[str, bool]:
    """Each target of the benchmark: met or not."""
    return {
        "confident_share": row["confident_share"] >= TARGET_CONFIDENT,
        "classes_present": row["classes_present"] >= TARGET_CLASSES,
        "total_seconds": row["total_seconds"] <= TARGET_SECONDS,
    }


def format_table(row: dict) -> str:
    """The results as a fixed-width table: quantity, model, reference, target, result."""
    met = check_targets(row)

    def verdict(key: str) -> str:
        return "PASS" if met[key] else "FAIL"

    ratio = row["frechet"] / row["frechet_floor"] if row["frechet_floor"] > 0 else math.nan
    lines = [
        ("train wall time (s)", f"{row['train_seconds']:.1f}", "", "", ""),
        ("train CPU time (s)", f"{row['train_cpu_seconds']:.1f}", "", "", ""),
        ("steps (steps/s)", f"{row['steps']} ({row['steps_per_second']:.2f})", "", "", ""),
        ("sampling wall time (s)", f"{row['sample_seconds']:.1f}",
         f"{row['n_samples']} samples", "", ""),
        ("classifier + scoring (s)", f"{row['evaluate_seconds']:.1f}",
         f"test acc {row['classifier_test_accuracy']:.3f}", "", ""),
        ("total wall time (s)", f"{row['total_seconds']:.1f}", "",
         f"<= {TARGET_SECONDS:.0f}", verdict("total_seconds")),
        ("torch threads", f"{row['threads']}", "", "", ""),
        (f"confident share (p >= {CONFIDENCE_THRESHOLD:g})", f"{row['confident_share']:.3f}",
         f"{row['reference_confident_share']:.3f} real test", f">= {TARGET_CONFIDENT:.2f}",
         verdict("confident_share")),
        ("classes present", f"{row['classes_present']}", "", f"{TARGET_CLASSES}",
         verdict("classes_present")),
        ("class entropy (nats)", f"{row['class_entropy']:.3f}",
         f"{row['max_class_entropy']:.3f} = log 10", "", ""),
        ("Frechet distance", f"{row['frechet']:.3f}", f"{row['frechet_floor']:.3f} floor", "",
         ""),
        ("Frechet / floor", f"{ratio:.2f}", "1 = data", "", ""),
    ]  # fmt: skip
    header = f"{'quantity':<30}{'model':>14}{'reference':>22}{'target':>10}{'result':>8}"
    body = [f"{a:<30}{b:>14}{c:>22}{d:>10}{e:>8}" for a, b, c, d, e in lines]
    counts = " ".join(str(c) for c in row["class_counts"])
    return "\n".join([header, "-" * len(header), *body, f"class counts 0..9: {counts}"])


def save_grid(samples: torch.Tensor, path: Path) -> Path:
    """The first `GRID_SAMPLES` samples as a PNG, ten per row, each pixel enlarged."""
    from minidiff.runs import save_image_grid

    return save_image_grid(samples[:GRID_SAMPLES], path, nrow=10, scale=GRID_SCALE)


def main(
    *,
    steps: int | None = None,
    overrides: tuple[str, ...] = (),
    out_dir: Path | str | None = None,
    n_samples: int = 1000,
    seed: int = 0,
    threads: int = 2,
    device: str = "cpu",
    progress: bool = True,
    results: Path | str | None = RESULTS,
) -> dict:
    """Run the benchmark, print the table, write the JSON and the sample grid (unless
    ``results`` is None) and return the row.

    Args:
        steps: training steps (default: the preset's).
        overrides: further ``"field=value"`` overrides of the preset.
        out_dir: the run folder, kept afterwards (default: a temporary folder, removed);
            it must not hold another run.
        n_samples: samples drawn and scored.
        seed: the sampling seed.
        threads: torch's intra-op threads (`torch.set_num_threads`).
        device: where to train and sample.
        progress: progress bars for training and sampling.
        results: the JSON to write (the grid goes beside it, as .png).
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2:
        raise ValueError(f"n_samples must be an integer >= 2, got {n_samples!r}")
    assignments = list(overrides) + ([f"steps={steps}"] if steps is not None else [])
    p = override(preset("digits"), assignments)  # validates the overrides
    torch.set_num_threads(threads)
    t, s, T = p.training, p.sampling, p.diffusion.T
    print(f"digits preset: {t.steps} steps of batch {t.batch_size}, image size "
          f"{p.model.image_size}, {describe(p)['parameters']:,} parameters, sampler {s.sampler} "
          f"({s.sampling_steps or T} steps), {threads} torch threads", flush=True)  # fmt: skip
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="minidiff-digits-") as temporary:
        run_dir = Path(out_dir) if out_dir is not None else Path(temporary) / "run"
        samples, facts = train_and_sample(
            p, run_dir, n_samples=n_samples, seed=seed, device=device, progress=progress
        )
    scores = evaluate(samples)
    row = {
        "preset": p.name,
        **facts,
        "threads": torch.get_num_threads(),
        "device": device,
        **scores,
        "total_seconds": time.perf_counter() - start,
    }
    row["targets_met"] = check_targets(row)
    print()
    print(format_table(row))
    if results is not None:
        results = Path(results)
        results.parent.mkdir(parents=True, exist_ok=True)
        print(f"wrote {save_grid(samples, results.with_suffix('.png'))}")
        settings = dict(
            preset=p.name, overrides=assignments, n_samples=n_samples, seed=seed,
            threads=threads, device=device, batch_size=t.batch_size,
            image_size=p.model.image_size, sampler=s.sampler, sampling_steps=s.sampling_steps, T=T,
            parameters=describe(p)["parameters"],
        )  # fmt: skip
        write_results(results, settings, [row], torch=torch.__version__)
    return row


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: preset)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE",
        help="override a preset setting (repeatable; a bare FIELD where unique)",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, default=None, help="keep the run in this folder (default: temporary)"
    )
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    args = parser.parse_args()
    try:
        main(
            steps=args.steps,
            overrides=tuple(args.overrides),
            out_dir=args.out,
            n_samples=args.samples,
            seed=args.seed,
            threads=args.threads,
            device=args.device,
            progress=args.progress,
        )
    except ValueError as error:  # bad options: a clear message, exit status 2
        parser.exit(2, f"error: {error}\n")
