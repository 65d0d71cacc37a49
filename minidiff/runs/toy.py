"""The NumPy toy run behind ``minidiff toy``: train the NumPy DDPM on a 2-D data set,
sample, measure, plot.

`run_toy(settings, out)` writes ``out/samples.png`` (data vs samples and the reverse
trajectory) and ``out/metrics.json`` (the settings, timings and three sample distances,
with their data-vs-data floor and a Gaussian baseline). Everything but the file writing is
NumPy (`minidiff.toy`).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from minidiff.atomic import write_file, write_text
from minidiff.process import DEFAULT_SPACING, ddim_timesteps, sampling_timesteps, toy_schedule
from minidiff.toy.datasets import make_dataset
from minidiff.toy.metrics import energy_distance, mmd, sliced_wasserstein
from minidiff.toy.sampling import TOY_SAMPLERS, ToySampler, sample_ancestral, sample_ddim
from minidiff.toy.train import DEFAULT_STEPS, DEFAULT_T, train_ddpm

__all__ = [
    "METRIC_REPEATS", "TOY_SAMPLERS", "ToySampler", "ToySettings", "one_blas_thread", "run_toy",
]  # fmt: skip

METRIC_REPEATS = 3  # held-out sets that each distance is averaged over
NOISE_LEVELS = (0.8, 0.45, 0.2)  # sqrt(1 - alpha_bar_t) of the middle trajectory panels


@dataclass(frozen=True)
class ToySettings:
    """One run of ``minidiff toy``; every field is a command-line option of the same name."""

    dataset: str
    steps: int = DEFAULT_STEPS  # optimizer steps
    seed: int = 0  # seeds data, initial weights, minibatches and sampling
    n_samples: int = 2000  # samples drawn, and held-out points they are compared with
    n_train: int = 20_000  # size of the training set
    T: int = DEFAULT_T  # diffusion steps of the toy schedule
    sampler: ToySampler = "ancestral"  # one of TOY_SAMPLERS
    ddim_steps: int = 50  # denoiser calls of the DDIM sampler
    progress: bool = True  # tqdm progress bars on stderr


def _distances(x, y, seed: int) -> dict[str, float]:
    """Sliced Wasserstein (256 directions), MMD^2 and energy distance between samples."""
    rng = np.random.default_rng(seed)
    return {
        "sliced_wasserstein": sliced_wasserstein(x, y, rng),
        "mmd": mmd(x, y),
        "energy_distance": energy_distance(x, y),
    }


def _save_figure(
    path: Path, data, samples, trajectory, ts: Sequence[int], labels, title: str
) -> None:
    """Data vs samples on top, the reverse trajectory at the steps ``ts`` below."""
    from matplotlib.figure import Figure

    from minidiff.toy.plots import plot_samples, plot_trajectory

    figure = Figure(figsize=(2.4 * len(ts), 7.5), layout="constrained")
    grid = figure.add_gridspec(2, len(ts), height_ratios=[2.4, 1.0])
    plot_samples(data, samples, ax=figure.add_subplot(grid[0, 1:-1]), title=title)
    plot_trajectory(
        trajectory, ts, axes=[figure.add_subplot(grid[1, i]) for i in range(len(ts))], labels=labels
    )
    write_file(path, lambda file: figure.savefig(file, format="png", dpi=110))


def _panels(steps, schedule) -> list[int]:
    """Positions in ``steps`` (the time steps of a trajectory, T down to 0) to plot: the
    first, the last, and those whose noise scale sqrt(1 - alpha_bar_t) is nearest to each
    of `NOISE_LEVELS`, where the shape of the data emerges."""
    noise = schedule.sqrt_one_minus_alpha_bar[steps]
    nearest = {int(np.argmin(np.abs(noise - level))) for level in NOISE_LEVELS}
    return sorted({0, len(steps) - 1} | nearest)


def _sample(settings: ToySettings, denoiser, schedule, rng):
    """Samples, the trajectory, the trajectory indices to plot and their time labels."""
    x_T = rng.standard_normal((settings.n_samples, 2))
    progress = settings.progress
    if settings.sampler == "ancestral":
        samples, trajectory = sample_ancestral(
            denoiser, schedule, x_T, rng, return_trajectory=True, progress=progress
        )
        grid = ddim_timesteps(schedule.T)  # T, ..., 0
    elif settings.sampler == "ddim":
        samples, trajectory = sample_ddim(
            denoiser,
            schedule,
            x_T,
            rng,
            steps=settings.ddim_steps,
            return_trajectory=True,
            progress=progress,
        )
        grid = sampling_timesteps(schedule, settings.ddim_steps, DEFAULT_SPACING)  # the sampler's
    else:
        raise ValueError(f"unknown sampler {settings.sampler!r}; expected one of {TOY_SAMPLERS}")
    ts = _panels(grid, schedule)  # trajectory[i] is the state at step grid[i]
    return samples, trajectory, ts, [int(grid[i]) for i in ts]


def _evaluate(name: str, samples, data, rng, repeats: int = METRIC_REPEATS) -> dict[str, dict]:
    """Distances to ``repeats`` fresh held-out sets, averaged, of the samples, of a fresh
    data sample (the floor) and of the Gaussian with the data's mean and covariance (the
    baseline). Averaging tames the sampling noise of the distances (about 10% for SW)."""
    n = samples.shape[0]
    gaussian = rng.multivariate_normal(data.mean(axis=0), np.cov(data.T), n)
    runs = {
        "samples_vs_held_out": [],
        "floor_data_vs_held_out": [],
        "baseline_gaussian_vs_held_out": [],
    }
    for _ in range(repeats):
        held_out = make_dataset(name, n, rng)
        seed = int(rng.integers(2**63))  # the same directions for the three comparisons
        for key, x in zip(runs, (samples, make_dataset(name, n, rng), gaussian), strict=True):
            runs[key].append(_distances(x, held_out, seed))
    return {
        key: {metric: float(np.mean([d[metric] for d in values])) for metric in values[0]}
        for key, values in runs.items()
    }


def run_toy(settings: ToySettings, out: Path) -> dict:
    """Train, sample, measure and write ``out/samples.png`` and ``out/metrics.json``.

    The seed is split (numpy SeedSequence) into independent streams for the training set,
    the training run, the sampler and the metrics' held-out sets.

    Returns:
        the metrics written to ``metrics.json``.
    """
    out = Path(out)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(settings.seed).spawn(4)]
    data_rng, train_rng, sample_rng, metrics_rng = streams
    schedule = toy_schedule(settings.T)
    data = make_dataset(settings.dataset, settings.n_train, data_rng)
    result = train_ddpm(data, schedule, train_rng, steps=settings.steps, progress=settings.progress)
    start = time.perf_counter()
    samples, trajectory, ts, labels = _sample(settings, result.denoiser, schedule, sample_rng)
    sample_seconds = time.perf_counter() - start

    metrics = {
        **{key: value for key, value in asdict(settings).items() if key != "progress"},
        "train_seconds": result.train_seconds,
        "steps_per_second": result.steps / result.train_seconds,
        "sample_seconds": sample_seconds,
        "final_loss": float(result.losses[-max(1, result.steps // 10) :].mean()),
        "metric_repeats": METRIC_REPEATS,
        **_evaluate(settings.dataset, samples, data, metrics_rng),
    }
    metrics["sliced_wasserstein_over_floor"] = (
        metrics["samples_vs_held_out"]["sliced_wasserstein"]
        / metrics["floor_data_vs_held_out"]["sliced_wasserstein"]
    )
    out.mkdir(parents=True, exist_ok=True)
    title = f"{settings.dataset}: {settings.steps} steps, {settings.sampler}"
    _save_figure(
        out / "samples.png", data[: settings.n_samples], samples, trajectory, ts, labels, title
    )
    write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics


@contextlib.contextmanager
def one_blas_thread():
    """Limit BLAS to one thread with threadpoolctl when it is installed (else a no-op:
    set OMP_NUM_THREADS=1 in the environment instead)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
