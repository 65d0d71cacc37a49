"""Benchmark: sample quality of the PyTorch samplers against the number of denoiser calls.

With the exact denoiser of a 2-D Gaussian mixture (`minidiff.toy.eight_gaussians_mixture`,
8 modes of std 0.1; linear schedule, T = 1000, eps-prediction), the only error left is the
sampler's own discretisation error. For each sampler and each budget of denoiser calls
(5, 10, 20, 50, 100, 1000 by default) the script draws ``n`` samples and measures their
distance to exact samples of the mixture:

- SW: sliced Wasserstein W_1 (256 directions);
- MMD2: the unbiased squared MMD (RBF widths 0.05, 0.1, 0.2: the scale of one mode);
- the floors: the same distances between a fresh exact sample and the reference, what a
  perfect sampler scores on average (MMD2's floor is about 0: the estimate is unbiased).

Each number is the mean over ``repeats`` independent runs (own x_T, noise, exact
reference sample and directions), with its standard error.

Calls are counted, not steps: Heun uses 2 calls per step but 1 on its last (Euler) jump,
predictor-corrector 2 per step (predictor + one Langevin step), annealed Langevin 5 per
level plus the final denoising call. Each sampler gets the largest setting whose count
does not exceed the budget (the table shows the actual count); a budget too small for a
sampler is left out.

``--spacing default`` runs each sampler on its own default grid (annealed Langevin keeps
its quadratic levels in every case).

Run:  OMP_NUM_THREADS=1 python benchmarks/samplers.py [--n 2000] [--budgets 5 10 20 50 100 1000]
Writes benchmarks/results/samplers.json and benchmarks/results/samplers.png.

With ``--ode`` it runs instead `benchmarks/samplers_ode.py`: the error of each
deterministic sampler, grid and budget (5, 10, 20, 50 calls by default) to the exact
probability-flow ODE solution on an 8-D Gaussian mixture, with diffusers' schedulers
driven by the same exact denoiser as reference rows:
      OMP_NUM_THREADS=1 python benchmarks/samplers.py --ode [--n 1000] [--budgets 5 10 20 50]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from minidiff.diffusion import GaussianDiffusion, TorchDenoiser  # noqa: E402
from minidiff.diffusion.langevin import sample_annealed_langevin, sample_pc  # noqa: E402
from minidiff.diffusion.samplers import sample_ddim  # noqa: E402
from minidiff.diffusion.sde import (  # noqa: E402
    sample_dpm_solver_pp_2m,
    sample_dpm_solver_pp_3m,
    sample_ode,
    sample_sde,
)
from minidiff.process import SPACINGS, linear_schedule  # noqa: E402
from minidiff.toy.datasets import eight_gaussians_mixture  # noqa: E402
from minidiff.toy.metrics import mmd, sliced_wasserstein  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
BUDGETS = (5, 10, 20, 50, 100, 1000)
BANDWIDTHS = (0.05, 0.1, 0.2)
LANGEVIN_STEPS = 5  # corrector steps per level of annealed Langevin


class CountingDenoiser:
    """Counts the denoiser calls."""

    def __init__(self, denoiser):
        self.denoiser, self.calls = denoiser, 0

    def __call__(self, xt, t):
        self.calls += 1
        return self.denoiser(xt, t)


def _settings(name: str, budget: int, spacing: str) -> dict | None:
    """The sampler's keyword arguments for at most ``budget`` calls (None: too few)."""
    grid = {} if spacing == "default" else {"spacing": spacing}
    if name in ("ddpm (ddim eta=1)", "ddim eta=0", "sde euler-maruyama", "dpm-solver++(2m)",
                "dpm-solver++(3m)"):  # fmt: skip
        return {"steps": budget, **grid}
    if name in ("ode heun", "pc (1 corrector)"):  # 2 s - 1 calls
        return {"steps": (budget + 1) // 2, **grid}
    if name == "annealed langevin":  # 5 L + 1 calls
        levels = (budget - 1) // LANGEVIN_STEPS
        return {"steps": levels, "spacing": "quadratic"} if levels >= 1 else None
    raise ValueError(f"unknown sampler {name!r}")


BENCHMARKED_SAMPLERS = {
    "ddpm (ddim eta=1)": lambda *a, **k: sample_ddim(*a, eta=1.0, **k),
    "ddim eta=0": lambda *a, **k: sample_ddim(*a, eta=0.0, **k),
    "ode heun": lambda *a, **k: sample_ode(*a, method="heun", **k),
    "sde euler-maruyama": sample_sde,
    "dpm-solver++(2m)": sample_dpm_solver_pp_2m,
    "dpm-solver++(3m)": sample_dpm_solver_pp_3m,
    "pc (1 corrector)": lambda *a, **k: sample_pc(*a, corrector_steps=1, **k),
    "annealed langevin": lambda *a, **k: sample_annealed_langevin(
        *a, corrector_steps=LANGEVIN_STEPS, **k
    ),
}


def floors(mixture, references, seed: int) -> dict:
    """SW and MMD^2 of fresh exact samples against the references: the exact-vs-exact
    floor that a perfect sampler scores on average."""
    sw, mm = [], []
    for r, reference in enumerate(references):
        exact = mixture.sample(len(reference), np.random.default_rng(seed + 10_000 + r))
        sw.append(sliced_wasserstein(exact, reference, np.random.default_rng(seed + 20_000 + r)))
        mm.append(mmd(exact, reference, BANDWIDTHS))
    return {**_summary("sw", sw), **_summary("mmd", mm)}


def run(
    name: str, budget: int, *, mixture, schedule, references, n: int, seed: int, spacing: str
) -> dict | None:
    """One sampler at one budget: ``len(references)`` independent runs (own x_T and noise),
    each compared with its own exact reference; the means and standard errors."""
    settings = _settings(name, budget, spacing)
    if settings is None:
        return None
    diffusion = GaussianDiffusion(schedule)
    sw, mm, calls, seconds = [], [], 0, 0.0
    for r, reference in enumerate(references):
        denoiser = CountingDenoiser(TorchDenoiser(mixture.denoiser(schedule)))
        generator = torch.Generator().manual_seed(seed + 100 + r)
        start = time.perf_counter()
        x0 = BENCHMARKED_SAMPLERS[name](
            denoiser, diffusion, (n, 2), generator=generator, dtype=torch.float64, **settings
        ).numpy()
        seconds += time.perf_counter() - start
        calls = denoiser.calls
        sw.append(sliced_wasserstein(x0, reference, np.random.default_rng(seed + 30_000 + r)))
        mm.append(mmd(x0, reference, BANDWIDTHS))
    return {
        "sampler": name,
        "budget": budget,
        "calls": calls,
        "settings": settings,
        **_summary("sw", sw),
        **_summary("mmd", mm),
        "seconds_per_run": seconds / len(references),
    }


def _summary(key: str, values: list[float]) -> dict:
    se = float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else None
    return {key: float(np.mean(values)), f"{key}_se": se}


def format_table(rows: list[dict], floor: dict) -> str:
    header = (
        f"{'sampler':<20}{'budget':>7}{'calls':>7}{'SW':>9}{'+-':>8}{'SW/floor':>10}"
        f"{'MMD2':>11}{'+-':>10}{'s/run':>7}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['sampler']:<20}{r['budget']:>7}{r['calls']:>7}{r['sw']:>9.4f}{r['sw_se']:>8.4f}"
            f"{r['sw'] / floor['sw']:>10.2f}{r['mmd']:>11.1e}{r['mmd_se']:>10.1e}"
            f"{r['seconds_per_run']:>7.1f}"
        )
    lines.append(
        f"{'exact floor':<34}{floor['sw']:>9.4f}{floor['sw_se']:>8.4f}{1.0:>10.2f}"
        f"{floor['mmd']:>11.1e}{floor['mmd_se']:>10.1e}"
    )
    return "\n".join(lines)


def plot(rows: list[dict], floor: dict, path: Path) -> None:
    """Log-log SW against denoiser calls, one line per sampler, the floor dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in BENCHMARKED_SAMPLERS:
        mine = [r for r in rows if r["sampler"] == name]
        if mine:
            ax.plot([r["calls"] for r in mine], [r["sw"] for r in mine], "o-", label=name)
    ax.axhline(floor["sw"], color="k", linestyle="--", label="exact-vs-exact floor")
    ax.set(xscale="log", yscale="log", xlabel="denoiser calls", ylabel="sliced W1 to exact samples")
    ax.set_title("8 Gaussians, exact denoiser, linear T = 1000")
    ax.legend(fontsize=8)
    fig.tight_layout()
    temporary = path.with_name(path.stem + ".tmp.png")
    fig.savefig(temporary, dpi=120)
    plt.close(fig)
    os.replace(temporary, path)


def main(
    *,
    budgets=BUDGETS,
    samplers=tuple(BENCHMARKED_SAMPLERS),
    n: int = 2000,
    T: int = 1000,
    repeats: int = 5,
    seed: int = 0,
    spacing: str = "quadratic",
    out: Path | str | None = RESULTS,
) -> list[dict]:
    """Run the benchmark, print the table, write the JSON and the PNG into ``out`` (unless
    None) and return the rows."""
    unknown = [name for name in samplers if name not in BENCHMARKED_SAMPLERS]
    if unknown:
        raise ValueError(
            f"unknown samplers {unknown}; expected names from {tuple(BENCHMARKED_SAMPLERS)}"
        )
    torch.set_num_threads(1)
    mixture, schedule = eight_gaussians_mixture(), linear_schedule(T)
    references = [mixture.sample(n, np.random.default_rng(seed + 1 + r)) for r in range(repeats)]
    floor = floors(mixture, references, seed)
    rows = []
    for name in samplers:
        for budget in budgets:
            row = run(name, min(budget, T), mixture=mixture, schedule=schedule,
                      references=references, n=n, seed=seed, spacing=spacing)  # fmt: skip
            if row is not None:
                rows.append(row)
                print(f"{name} {row['calls']} calls: SW {row['sw']:.4f}", flush=True)
    print()
    print(format_table(rows, floor))
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        settings = dict(
            budgets=list(budgets), n=n, T=T, repeats=repeats, seed=seed, spacing=spacing
        )
        machine = dict(
            python=platform.python_version(),
            torch=torch.__version__,
            processor=platform.processor() or platform.machine(),
        )
        payload = {"settings": settings, "machine": machine, "floor": floor, "rows": rows}
        temporary = out / "samplers.json.tmp"
        temporary.write_text(json.dumps(payload, indent=2))
        os.replace(temporary, out / "samplers.json")
        plot(rows, floor, out / "samplers.png")
        print(f"\nwrote {out / 'samplers.json'} and {out / 'samplers.png'}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", nargs="+", type=int, default=list(BUDGETS))
    names = list(BENCHMARKED_SAMPLERS)
    parser.add_argument("--samplers", nargs="+", default=names, choices=names)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--T", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spacing", default="quadratic", choices=[*SPACINGS, "default"])
    parser.add_argument(
        "--ode", action="store_true", help="error to the exact ODE solution (samplers_ode.py)"
    )
    args = parser.parse_args()
    if args.ode:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `benchmarks`
        from benchmarks.samplers_ode import main as ode_main

        budgets = tuple(args.budgets) if args.budgets != list(BUDGETS) else (5, 10, 20, 50)
        ode_main(budgets=budgets, n=args.n if args.n != 2000 else 1000, seed=args.seed)
        raise SystemExit(0)
    main(
        budgets=tuple(args.budgets), samplers=tuple(args.samplers), n=args.n, T=args.T,
        repeats=args.repeats, seed=args.seed, spacing=args.spacing,
    )  # fmt: skip
