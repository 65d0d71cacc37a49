"""Benchmark: 1-D diffusion (DiffWave-style network) on tones and spoken digits.

1. tones: an unconditional model on synthetic tones (`minidiff.data.audio.synthetic_tones`);
   the 1-Wasserstein distance between the dominant-frequency distributions of samples and
   of fresh data, next to the data-vs-data floor (two independent draws);
2. spoken digits (espeak-ng, 8 kHz, 1 s, split by voice): a class-conditional model; the
   log-mel judge (`minidiff.evaluation.audio.SpokenDigitsJudge`, fitted on the training
   voices) gives its accuracy on the held-out voices, the accuracy on the samples (their
   requested digit against the judge's), and the Fréchet distance in its features from the
   samples to the test voices, next to the train-vs-test floor.

Each model trains for a CPU-time budget (and a wall-clock cap) on one thread; the machine
is shared, so wall times overstate the work done.

Run:  .venv/bin/python benchmarks/audio.py [--tone-cpu-minutes 4] [--digit-cpu-minutes 6]
      [--wall-minutes 30] [--samples-per-digit 5]
Writes benchmarks/results/audio.json and a few WAV files under benchmarks/results/audio/.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `benchmarks` as a package

from benchmarks.text import progress_printer  # noqa: E402
from benchmarks.toy2d import write_results  # noqa: E402
from minidiff.data.audio import SAMPLE_RATE, spoken_digits, synthetic_tones, write_wav  # noqa: E402
from minidiff.diffusion.audio import (  # noqa: E402
    AudioDiffusionConfig,
    config_record,
    sample_audio,
    train_audio,
)
from minidiff.evaluation.audio import SpokenDigitsJudge, dominant_frequency, frequency_distance  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TONE_LENGTH = 1024


def _run_record(config, history: list[dict], sample_cpu: float, n_samples: int) -> dict:
    """The facts of one training run and its sampling, for the JSON file."""
    return {
        "config": config_record(config),
        "history": history,
        "steps": history[-1]["step"],
        "train_seconds": history[-1]["seconds"],
        "train_cpu_seconds": history[-1]["cpu_seconds"],
        "sample_cpu_seconds": sample_cpu,
        "n_samples": n_samples,
    }


def tones(cpu_minutes: float, wall_minutes: float, n_samples: int) -> dict:
    """Train on fresh tones; compare dominant frequencies of samples and data."""
    data, _ = synthetic_tones(4096, TONE_LENGTH, generator=torch.Generator().manual_seed(0))
    config = AudioDiffusionConfig(
        channels=32,
        layers=10,
        dilation_cycle=5,
        batch=16,
        steps=10**9,
        lr=1e-3,
        max_cpu_seconds=60 * cpu_minutes,
        max_seconds=60 * wall_minutes,
    )
    model, history = train_audio(config, data, log=progress_printer("tones"))
    start = time.process_time()
    samples = sample_audio(
        model, n_samples, TONE_LENGTH, generator=torch.Generator().manual_seed(1)
    )
    sample_cpu = time.process_time() - start
    fresh_a, _ = synthetic_tones(n_samples, TONE_LENGTH, generator=torch.Generator().manual_seed(2))
    fresh_b, _ = synthetic_tones(n_samples, TONE_LENGTH, generator=torch.Generator().manual_seed(3))
    f_samples, f_a, f_b = (dominant_frequency(x, SAMPLE_RATE) for x in (samples, fresh_a, fresh_b))
    for i in range(3):
        write_wav(RESULTS / "audio" / f"tone_{i}.wav", samples[i, 0])
    return {
        **_run_record(config, history, sample_cpu, n_samples),
        "frequency_w1": frequency_distance(f_samples, f_a),
        "frequency_w1_floor": frequency_distance(f_b, f_a),
        "in_band_share": float(((f_samples >= 200) & (f_samples <= 1000)).mean()),
    }


def digits(cpu_minutes: float, wall_minutes: float, per_digit: int, ddim_steps: int) -> dict:
    """Train a class-conditional model on the training voices and judge its samples."""
    x_train, y_train = spoken_digits("train")
    x_test, y_test = spoken_digits("test")
    judge = SpokenDigitsJudge.fit(x_train, y_train, SAMPLE_RATE)
    config = AudioDiffusionConfig(
        channels=32,
        layers=12,
        dilation_cycle=6,
        num_classes=10,
        batch=8,
        steps=10**9,
        lr=1e-3,
        max_cpu_seconds=60 * cpu_minutes,
        max_seconds=60 * wall_minutes,
    )
    model, history = train_audio(config, x_train, y_train, log=progress_printer("digits"))
    labels = torch.arange(10).repeat_interleave(per_digit)
    start = time.process_time()
    samples = sample_audio(
        model,
        len(labels),
        SAMPLE_RATE,
        labels=labels,
        ddim_steps=ddim_steps,
        generator=torch.Generator().manual_seed(1),
    )
    sample_cpu = time.process_time() - start
    for d in range(10):
        write_wav(RESULTS / "audio" / f"digit_{d}.wav", samples[d * per_digit, 0])
    return {
        **_run_record(config, history, sample_cpu, len(labels)),
        "ddim_steps": ddim_steps,
        "n_train": len(y_train),
        "n_test": len(y_test),
        "judge_test_accuracy": judge.accuracy(x_test, y_test),
        "sample_accuracy": judge.accuracy(samples, labels),
        "frechet": judge.frechet(samples, x_test),
        "frechet_floor": judge.frechet(x_train, x_test),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tone-cpu-minutes", type=float, default=4.0)
    parser.add_argument("--digit-cpu-minutes", type=float, default=6.0)
    parser.add_argument("--tone-wall-minutes", type=float, default=30.0, help="wall cap")
    parser.add_argument("--digit-wall-minutes", type=float, default=30.0, help="wall cap")
    parser.add_argument("--tone-samples", type=int, default=200)
    parser.add_argument("--samples-per-digit", type=int, default=5)
    parser.add_argument("--ddim-steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    (RESULTS / "audio").mkdir(parents=True, exist_ok=True)
    tone = tones(args.tone_cpu_minutes, args.tone_wall_minutes, args.tone_samples)
    digit = digits(
        args.digit_cpu_minutes, args.digit_wall_minutes, args.samples_per_digit, args.ddim_steps
    )
    rows = [
        (
            "tones: steps / train wall s / train CPU s",
            f"{tone['steps']} / {tone['train_seconds']:.0f} / {tone['train_cpu_seconds']:.0f}",
            "",
        ),
        (
            "tones: dominant-frequency W1 (Hz)",
            f"{tone['frequency_w1']:.1f}",
            f"floor {tone['frequency_w1_floor']:.1f}",
        ),
        ("tones: samples peaking in 200-1000 Hz", f"{tone['in_band_share']:.3f}", "data 1.000"),
        (
            "digits: steps / train wall s / train CPU s",
            f"{digit['steps']} / {digit['train_seconds']:.0f} / {digit['train_cpu_seconds']:.0f}",
            "",
        ),
        (
            "digits: judge accuracy, held-out voices",
            f"{digit['judge_test_accuracy']:.3f}",
            "chance 0.100",
        ),
        ("digits: judge accuracy on samples", f"{digit['sample_accuracy']:.3f}", "chance 0.100"),
        (
            "digits: Fréchet (samples vs test voices)",
            f"{digit['frechet']:.2f}",
            f"floor (train vs test) {digit['frechet_floor']:.2f}",
        ),
    ]
    print(f"\n{'quantity':<46}{'value':>22}   reference")
    print("-" * 92)
    for name, value, reference in rows:
        print(f"{name:<46}{value:>22}   {reference}")
    print(f"\n{args.threads} thread(s), machine shared: wall times are pessimistic")
    settings = {**vars(args), "machine_shared": True}
    result = {"tones": tone, "digits": digit}
    write_results(
        RESULTS / "audio.json",
        settings,
        [result],
        torch=torch.__version__,
        numpy_check=str(np.__version__),
    )
    return result


if __name__ == "__main__":
    main()
