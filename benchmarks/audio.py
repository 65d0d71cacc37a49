"""Benchmark: 1-D diffusion (DiffWave-style network) on tones and spoken digits.

Both models are presets of `minidiff.configs` trained with `minidiff.runs.train` (the
`Trainer` of every preset) on one thread until a CPU-time budget (or a wall-clock cap) is
spent, then loaded from their checkpoints and sampled with the preset's sampler:

1. tones (preset ``audio``): an unconditional model on synthetic tones
   (`minidiff.data.audio.synthetic_tones`); the 1-Wasserstein distance between the
   dominant-frequency distributions of samples and of fresh data, next to the
   data-vs-data floor (two independent draws of the same size);
2. spoken digits (preset ``audio-digits``, shrunk for a CPU with ``--digit-set``;
   espeak-ng, 8 kHz, 1 s, split by voice): a class-conditional model; the log-mel judge
   (`minidiff.evaluation.audio.SpokenDigitsJudge`, fitted on the training voices) gives
   its accuracy on the held-out voices, the accuracy on the samples (their requested digit
   against the judge's), and the Fréchet distance in its features from the samples to the
   test voices, next to the train-vs-test floor.

The machine is shared, so wall times overstate the work done.

Run:  .venv/bin/python benchmarks/audio.py [--tone-cpu-minutes 8] [--digit-cpu-minutes 12]
      [--skip-digits] [--samples-per-digit 5]
Writes benchmarks/results/audio.json, the run folders under benchmarks/results/runs/ and
WAV files with spectrograms under benchmarks/results/audio/.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `benchmarks` as a package

from benchmarks.toy2d import write_results  # noqa: E402
from minidiff import runs  # noqa: E402
from minidiff.configs import override, preset  # noqa: E402
from minidiff.data.audio import SAMPLE_RATE, spoken_digits, synthetic_tones  # noqa: E402
from minidiff.evaluation.audio import SpokenDigitsJudge, dominant_frequency, frequency_distance  # noqa: E402
from minidiff.training.budget import Budget  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# spoken digits on one CPU thread: a smaller network than the preset's GPU one
DIGIT_CPU_SET = ["channels=32", "layers=12", "batch_size=8"]


def train_run(p, name: str, cpu_minutes: float, wall_minutes: float) -> tuple[runs.Run, dict]:
    """Train ``p`` into a fresh folder until the budget is spent; the loaded run and the
    facts of its training."""
    folder = RESULTS / "runs" / name
    shutil.rmtree(folder, ignore_errors=True)
    budget = Budget(max_seconds=60 * wall_minutes, max_cpu_seconds=60 * cpu_minutes)
    trainer = runs.train(p, folder, progress=False, stop=budget)
    facts = {"preset": runs.preset_to_dict(p), "steps": trainer.step,
             "train_seconds": budget.seconds, "train_cpu_seconds": budget.cpu_seconds,
             "history": runs.read_metrics(folder)}  # fmt: skip
    return runs.load_run(folder, device="cpu"), facts


def sampled(run: runs.Run, n: int, labels: torch.Tensor | None = None
            ) -> tuple[torch.Tensor, float]:  # fmt: skip
    """``n`` samples (with ``labels``) and the CPU seconds they took."""
    start = time.process_time()
    x = runs.sample(run, n, seed=1, labels=labels)
    return x, time.process_time() - start


def tones(cpu_minutes: float, wall_minutes: float, n_samples: int) -> dict:
    """Train on tones; compare dominant frequencies of samples and fresh data."""
    p = override(preset("audio"), ["training.steps=1000000000"])
    run, facts = train_run(p, "audio_tones", cpu_minutes, wall_minutes)
    samples, sample_cpu = sampled(run, n_samples)
    length = p.model.length
    fresh_a, _ = synthetic_tones(n_samples, length, generator=torch.Generator().manual_seed(2))
    fresh_b, _ = synthetic_tones(n_samples, length, generator=torch.Generator().manual_seed(3))
    f_samples, f_a, f_b = (dominant_frequency(x, SAMPLE_RATE) for x in (samples, fresh_a, fresh_b))
    runs.save_audio(samples[:4], RESULTS / "audio" / "tones")
    return {
        **facts, "sample_cpu_seconds": sample_cpu, "n_samples": n_samples,
        "frequency_w1": frequency_distance(f_samples, f_a),
        "frequency_w1_floor": frequency_distance(f_b, f_a),
        "in_band_share": float(((f_samples >= 200) & (f_samples <= 1000)).mean()),
    }  # fmt: skip


def digits(cpu_minutes: float, wall_minutes: float, per_digit: int) -> dict:
    """Train a class-conditional model on the training voices and judge its samples."""
    x_train, y_train = spoken_digits("train")
    x_test, y_test = spoken_digits("test")
    judge = SpokenDigitsJudge.fit(x_train, y_train, SAMPLE_RATE)
    p = override(preset("audio-digits"), ["training.steps=1000000000", *DIGIT_CPU_SET])
    run, facts = train_run(p, "audio_digits", cpu_minutes, wall_minutes)
    labels = torch.arange(10).repeat_interleave(per_digit)
    samples, sample_cpu = sampled(run, len(labels), labels)
    runs.save_audio(samples[::per_digit], RESULTS / "audio" / "digits",
                    titles=[f"digit {d}" for d in range(10)])  # fmt: skip
    return {
        **facts, "sample_cpu_seconds": sample_cpu, "n_samples": len(labels),
        "n_train": len(y_train), "n_test": len(y_test),
        "judge_test_accuracy": judge.accuracy(x_test, y_test),
        "sample_accuracy": judge.accuracy(samples, labels),
        "frechet": judge.frechet(samples, x_test),
        "frechet_floor": judge.frechet(x_train, x_test),
    }  # fmt: skip


def table(tone: dict, digit: dict | None) -> list[tuple[str, str, str]]:
    """The printed rows: (quantity, value, reference)."""
    def times(r: dict) -> str:
        return f"{r['steps']} / {r['train_seconds']:.0f} / {r['train_cpu_seconds']:.0f}"

    rows = [
        ("tones: steps / train wall s / train CPU s", times(tone), ""),
        ("tones: dominant-frequency W1 (Hz)", f"{tone['frequency_w1']:.1f}",
         f"floor {tone['frequency_w1_floor']:.1f}"),
        ("tones: samples peaking in 200-1000 Hz", f"{tone['in_band_share']:.3f}", "data 1.000"),
    ]  # fmt: skip
    if digit is not None:
        rows += [
            ("digits: steps / train wall s / train CPU s", times(digit), ""),
            ("digits: judge accuracy, held-out voices", f"{digit['judge_test_accuracy']:.3f}",
             "chance 0.100"),
            ("digits: judge accuracy on samples", f"{digit['sample_accuracy']:.3f}",
             "chance 0.100"),
            ("digits: Fréchet (samples vs test voices)", f"{digit['frechet']:.2f}",
             f"floor (train vs test) {digit['frechet_floor']:.2f}"),
        ]  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tone-cpu-minutes", type=float, default=8.0)
    parser.add_argument("--digit-cpu-minutes", type=float, default=12.0)
    parser.add_argument("--wall-minutes", type=float, default=40.0, help="wall cap of each run")
    parser.add_argument("--tone-samples", type=int, default=200)
    parser.add_argument("--samples-per-digit", type=int, default=5)
    parser.add_argument("--skip-digits", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    tone = tones(args.tone_cpu_minutes, args.wall_minutes, args.tone_samples)
    digit = None if args.skip_digits else digits(
        args.digit_cpu_minutes, args.wall_minutes, args.samples_per_digit)  # fmt: skip
    print(f"\n{'quantity':<46}{'value':>22}   reference")
    print("-" * 92)
    for name, value, reference in table(tone, digit):
        print(f"{name:<46}{value:>22}   {reference}")
    print(f"\n{args.threads} thread(s), machine shared: wall times are pessimistic")
    settings = {**vars(args), "digit_cpu_set": DIGIT_CPU_SET, "machine_shared": True}
    result = {"tones": tone, "digits": digit}
    write_results(RESULTS / "audio.json", settings, [result], torch=torch.__version__,
                  numpy_check=str(np.__version__))  # fmt: skip
    return result


if __name__ == "__main__":
    main()
