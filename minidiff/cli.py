"""The ``minidiff`` command line: a thin layer over the package.

    minidiff toy --dataset swissroll --out runs/swissroll   # train and sample a 2-D DDPM
    minidiff demo --out demo-output                         # the toy on two datasets + report

Every subcommand validates all of its arguments before it creates a directory or writes a
file; bad input exits with status 2 and a message listing the valid choices. Files are
written under a temporary name and renamed into place, so a run that is interrupted never
leaves a half-written file under the final name.

One thread is enough for these small problems and usually fastest: run with
``OMP_NUM_THREADS=1`` (the Makefile sets it), or install ``threadpoolctl``, which the
command then uses to limit the BLAS threads itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from minidiff.toy.datasets import DATASETS, make_dataset
from minidiff.toy.metrics import energy_distance, mmd, sliced_wasserstein
from minidiff.toy.sampling import sample_ancestral, sample_ddim
from minidiff.toy.train import DEFAULT_STEPS, DEFAULT_T, toy_schedule, train_ddpm

__all__ = [
    "DEMO_DATASETS",
    "SAMPLERS",
    "ToySettings",
    "build_parser",
    "main",
    "run_demo",
    "run_toy",
]

SAMPLERS = ("ancestral", "ddim")
DEMO_DATASETS = ("swissroll", "8gaussians")
QUICK_STEPS = 3000  # training steps of ``minidiff demo --quick``
QUICK_SAMPLES = 1000  # samples per dataset of ``minidiff demo --quick``
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
    sampler: str = "ancestral"  # one of SAMPLERS
    ddim_steps: int = 50  # denoiser calls of the DDIM sampler
    progress: bool = True  # tqdm progress bars on stderr


TOY_OPTIONS = tuple(field.name for field in fields(ToySettings) if field.name != "progress")


# -- argument parsing ---------------------------------------------------------------------
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("minidiff")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def _int_at_least(low: int) -> Callable[[str], int]:
    """An argparse type: an integer >= low (a bad value exits with status 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value

    return parse


def _add_run_options(parser: argparse.ArgumentParser, steps, n_samples, seed) -> None:
    """The options that ``toy`` and ``demo`` share."""
    parser.add_argument("--steps", type=_int_at_least(1), default=steps, help="training steps")
    parser.add_argument(
        "--n-samples",
        type=_int_at_least(2),
        default=n_samples,
        help="samples to draw, and held-out points to compare them with",
    )
    parser.add_argument("--seed", type=_int_at_least(0), default=seed, help="random seed")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``minidiff`` and its subcommands."""
    defaults = ToySettings(dataset=DATASETS[0])
    parser = argparse.ArgumentParser(
        prog="minidiff",
        description="Diffusion models built from scratch, layer by layer.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"minidiff {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    toy = commands.add_parser(
        "toy",
        help="train a DDPM on a 2-D dataset in NumPy and sample from it",
        description="Train the NumPy MLP on a 2-D dataset (Ho et al. 2020, Algorithm 1), "
        "sample from it, and write OUT/samples.png and OUT/metrics.json.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    toy.add_argument("--dataset", required=True, choices=DATASETS)
    toy.add_argument("--out", required=True, type=Path, help="output directory")
    _add_run_options(toy, defaults.steps, defaults.n_samples, defaults.seed)
    toy.add_argument(
        "--n-train", type=_int_at_least(1), default=defaults.n_train, help="training set size"
    )
    toy.add_argument("--T", type=_int_at_least(21), default=defaults.T, help="diffusion steps")
    toy.add_argument("--sampler", choices=SAMPLERS, default=defaults.sampler)
    toy.add_argument(
        "--ddim-steps", type=_int_at_least(1), default=defaults.ddim_steps, help="DDIM steps, <= T"
    )

    demo = commands.add_parser(
        "demo",
        help="run the toy on two datasets and write a report",
        description=f"Run `minidiff toy` on {', '.join(DEMO_DATASETS)} into OUT/<dataset>/ "
        "and summarise the metrics in OUT/report.md.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    demo.add_argument("--out", type=Path, default=Path("demo-output"), help="output directory")
    demo.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_STEPS} training steps and {QUICK_SAMPLES} samples per dataset",
    )
    _add_run_options(demo, None, None, 0)
    return parser


def _check_out(parser: argparse.ArgumentParser, out: Path) -> None:
    if out.exists() and not out.is_dir():
        parser.error(f"--out {str(out)!r} exists and is not a directory")


# -- writing files safely -----------------------------------------------------------------
def _write_atomic(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(temporary_path)``, then rename the file to ``path`` in one step."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(str(temporary))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def _write_text(path: Path, text: str) -> None:
    _write_atomic(path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))


@contextlib.contextmanager
def _one_blas_thread():
    """Limit BLAS to one thread with threadpoolctl when it is installed (else a no-op:
    set OMP_NUM_THREADS=1 in the environment instead)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


# -- the toy run --------------------------------------------------------------------------
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
    _write_atomic(path, lambda temporary: figure.savefig(temporary, format="png", dpi=110))


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
        steps = np.arange(schedule.T, -1, -1)
        ts = [int(steps[i]) for i in _panels(steps, schedule)]  # trajectory[t] is x_t
        return samples, trajectory, ts, ts
    elif settings.sampler == "ddim":
        samples, trajectory, grid = sample_ddim(
            denoiser,
            schedule,
            x_T,
            rng,
            steps=settings.ddim_steps,
            return_trajectory=True,
            progress=progress,
        )
        ts = _panels(grid, schedule)  # trajectory[i] is the state at step grid[i]
        return samples, trajectory, ts, [int(grid[i]) for i in ts]
    else:
        raise ValueError(f"unknown sampler {settings.sampler!r}; expected one of {SAMPLERS}")


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
    _write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics


# -- the demo ------------------------------------------------------------------------------
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


def run_demo(
    out: Path,
    *,
    quick: bool = False,
    steps: int | None = None,
    n_samples: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, dict]:
    """Run the toy on `DEMO_DATASETS` into ``out/<dataset>/`` and write ``out/report.md``."""
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
        results[name] = run_toy(settings, out / name)
    _write_text(out / "report.md", _report(results))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``minidiff`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_out(parser, args.out)
    with _one_blas_thread():
        if args.command == "toy":
            if args.sampler == "ddim" and args.ddim_steps > args.T:
                parser.error(f"--ddim-steps must be <= --T = {args.T}, got {args.ddim_steps}")
            options = {key: value for key, value in vars(args).items() if key in TOY_OPTIONS}
            settings = ToySettings(**options, progress=not args.no_progress)
            metrics = run_toy(settings, args.out)
            sw = metrics["samples_vs_held_out"]["sliced_wasserstein"]
            print(
                f"{args.out / 'metrics.json'}: sliced Wasserstein {sw:.4f} "
                f"({metrics['sliced_wasserstein_over_floor']:.2f} x the data-vs-data floor)"
            )
        elif args.command == "demo":
            run_demo(
                args.out,
                quick=args.quick,
                steps=args.steps,
                n_samples=args.n_samples,
                seed=args.seed,
                progress=not args.no_progress,
            )
            print(f"{args.out / 'report.md'}")
        else:
            parser.error(f"unknown command {args.command!r}")
    return 0
