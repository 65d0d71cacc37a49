"""The pipeline behind ``minidiff demo``: the toy on two data sets, the digits model, and
a report.

`run_demo(out)` runs `minidiff.runs.toy.run_toy` on each of `DEMO_DATASETS` (NumPy,
seconds each), then `run_digits`: trains the ``digits`` preset (`minidiff.configs`, a
small U-Net on the 8x8 digits; PyTorch on the CPU, a few minutes) into ``out/digits/run``,
samples it, scores the samples with a classifier trained on real digits
(`minidiff.evaluation.digit_quality`) and writes ``out/report.md``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from minidiff.atomic import write_text
from minidiff.runs.toy import ToySettings, one_blas_thread, run_toy

__all__ = ["DEMO_DATASETS", "run_demo", "run_digits"]

DEMO_DATASETS = ("swissroll", "8gaussians")
QUICK_STEPS = 3000  # training steps of ``minidiff demo --quick``
QUICK_SAMPLES = 1000  # samples per dataset of ``minidiff demo --quick``
DIGITS_SAMPLES = 500  # digits drawn and scored (the grid shows the first 64)
DEMO_DIGITS_STEPS = 1500  # digits training steps: ~5 minutes on 2 cores (the preset: 2800)
QUICK_DIGITS_STEPS = 500  # digits training steps of ``minidiff demo --quick``
GRID_IMAGES = 64


def _report(results: dict[str, dict]) -> str:
    """A markdown summary of the demo's runs."""
    lines = [
        "# minidiff demo",
        "",
        "A 2-D DDPM (NumPy MLP, hand-written backprop, Adam) per dataset, trained with",
        "Algorithm 1 of Ho et al. (2020) and sampled with Algorithm 2. Distances are to",
        "held-out data; the floor is the distance between two independent data samples of",
        "the same size, the baseline a Gaussian with the data's mean and covariance.",
        "",
        "| dataset | steps | train s | SW | SW floor | SW Gaussian | SW / floor "
        "| MMD^2 | MMD^2 floor | energy | energy floor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in results.items():
        model, floor, gauss = (
            m["samples_vs_held_out"],
            m["floor_data_vs_held_out"],
            m["baseline_gaussian_vs_held_out"],
        )
        lines.append(
            f"| {name} | {m['steps']} | {m['train_seconds']:.1f} "
            f"| {model['sliced_wasserstein']:.4f} "
            f"| {floor['sliced_wasserstein']:.4f} | {gauss['sliced_wasserstein']:.4f} "
            f"| {m['sliced_wasserstein_over_floor']:.2f} | {model['mmd']:.2e} | {floor['mmd']:.2e} "
            f"| {model['energy_distance']:.2e} | {floor['energy_distance']:.2e} |"
        )
    lines.append("")
    for name in results:
        lines += [f"## {name}", "", f"![{name}]({name}/samples.png)", ""]
    return "\n".join(lines)


def _digits_report(m: dict) -> str:
    """The digits section of the report."""
    q = m["quality"]
    grids = "".join(f"![step {step}](digits/run/samples/step_{step:06d}.png) "
                    for step in m["grid_steps"])  # fmt: skip
    return "\n".join([
        "## digits",
        "",
        f"The `digits` preset: a {m['parameters']:,}-parameter U-Net on the 8x8 digits of",
        f"scikit-learn, {m['steps']} steps at batch {m['batch_size']} in "
        f"{m['train_seconds']:.0f} s ({m['threads']} torch threads), then {q['n_samples']}",
        f"samples ({m['sampler']}, {m['sampling_steps']} steps) in {m['sample_seconds']:.0f} s,",
        "scored by a classifier trained on real digits (`minidiff.evaluation`); the real",
        "held-out digits' figures beside them. The preset's full run "
        f"({m['preset_steps']} steps) is `minidiff train --config digits`; "
        "`benchmarks/digits.py` measures it.",
        "",
        "| | samples | real test digits |",
        "|---|---:|---:|",
        f"| share classified with confidence >= 0.9 | {q['confident_share']:.3f} "
        f"| {q['reference_confident_share']:.3f} |",
        f"| classes present | {q['classes_present']} | 10 |",
        f"| class-histogram entropy (nats; log 10 = {q['max_class_entropy']:.3f}) "
        f"| {q['class_entropy']:.3f} | |",
        f"| Frechet distance to the test digits (classifier features) | {q['frechet']:.2f} "
        f"| {q['frechet_floor']:.2f} (train vs test) |",
        "",
        "![digits](digits/samples.png) ![loss](digits/loss.png)",
        "",
        "Grids drawn during training, with the same noise each time:",
        "",
        grids,
        "",
    ])  # fmt: skip


def run_digits(
    out: Path,
    *,
    steps: int | None = None,
    n_samples: int = DIGITS_SAMPLES,
    seed: int = 0,
    threads: int = 1,
    progress: bool = True,
) -> dict:
    """Train the ``digits`` preset (``steps`` steps, default `DEMO_DIGITS_STEPS`) into
    ``out/run``, sample and score it.

    Writes ``out/samples.png`` (the first 64 samples), ``out/loss.png`` and
    ``out/metrics.json`` (times, settings and `minidiff.evaluation.digit_quality`).
    """
    import torch

    from minidiff import runs
    from minidiff.configs import override, preset
    from minidiff.evaluation import DigitsClassifier, digit_quality

    base = preset("digits")
    steps = DEMO_DIGITS_STEPS if steps is None else steps
    every = max(steps // 4, 1)  # four grids and checkpoints along the way
    log_every = min(base.training.log_every, max(steps // 20, 1))  # at least ~20 points
    p = override(base, [f"steps={steps}", f"seed={seed}", f"sample_every={every}",
                        f"checkpoint_every={every}", f"log_every={log_every}"])  # fmt: skip
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        start = time.perf_counter()
        trainer = runs.train(p, out / "run", device="cpu", progress=progress)
        train_seconds = time.perf_counter() - start
        run = runs.load_run(out / "run", device="cpu")
        start = time.perf_counter()
        samples = runs.sample(run, n_samples, seed=seed, progress=progress)
        sample_seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(previous_threads)
    runs.save_image_grid(samples[:GRID_IMAGES], out / "samples.png", scale=4)
    runs.save_loss_plot(out / "run", out / "loss.png")
    quality = digit_quality(samples, DigitsClassifier.fit(seed=0))
    grids = (out / "run" / "samples").glob("step_*.png")
    metrics = {
        "preset": p.name,
        "parameters": sum(q.numel() for q in trainer.model.parameters()),
        "steps": trainer.step,
        "preset_steps": base.training.steps,
        "batch_size": p.training.batch_size,
        "sampler": p.sampling.sampler,
        "sampling_steps": (p.sampling.sampling_steps or p.diffusion.T)
        if p.sampling.sampler == "ddim"
        else p.diffusion.T,
        "threads": threads,
        "train_seconds": train_seconds,
        "sample_seconds": sample_seconds,
        "grid_steps": sorted(int(f.stem.split("_")[1]) for f in grids),
        "quality": quality,
    }
    write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics


def run_demo(
    out: Path,
    *,
    quick: bool = False,
    steps: int | None = None,
    n_samples: int | None = None,
    seed: int = 0,
    progress: bool = True,
    digits_steps: int | None = None,
    digits_samples: int = DIGITS_SAMPLES,
    threads: int = 1,
) -> dict[str, dict]:
    """Run the toy on `DEMO_DATASETS` into ``out/<dataset>/`` and the digits model into
    ``out/digits/`` (`run_digits`), and write ``out/report.md``. ``quick``: fewer steps
    and samples (`QUICK_STEPS`, `QUICK_SAMPLES`, `QUICK_DIGITS_STEPS`)."""
    out = Path(out)
    results = {}
    for name in DEMO_DATASETS:
        settings = ToySettings(
            dataset=name,
            steps=steps or (QUICK_STEPS if quick else ToySettings.steps),
            n_samples=n_samples or (QUICK_SAMPLES if quick else ToySettings.n_samples),
            seed=seed,
            progress=progress,
        )
        if progress:
            print(f"minidiff demo: {name}", file=sys.stderr)
        with one_blas_thread():
            results[name] = run_toy(settings, out / name)
    if progress:
        print("minidiff demo: digits", file=sys.stderr)
    if digits_steps is None and quick:
        digits_steps = QUICK_DIGITS_STEPS
    results["digits"] = run_digits(
        out / "digits", steps=digits_steps, n_samples=digits_samples, seed=seed,
        threads=threads, progress=progress,
    )  # fmt: skip
    toy = {name: results[name] for name in DEMO_DATASETS}
    write_text(out / "report.md", _report(toy) + "\n" + _digits_report(results["digits"]))
    return results
