"""Benchmark: error of the deterministic samplers to the exact probability-flow ODE solution.

On an 8-D Gaussian mixture (8 components, random means and covariances, seed 0; linear
schedule, T = 1000, eps-prediction) the exact denoiser E[x_0 | x_t] is known at every noise
level, so the probability-flow ODE from a given x_T has one exact solution x_0, which a
sampler approximates. Written in y = x / sqrt(alpha_bar) against s = log sigma,
sigma = sqrt((1 - alpha_bar) / alpha_bar) (Song, Meng & Ermon 2021, eq. 14; Karras et al.
2022), the ODE reads dy / ds = y - D(y, sigma), D the exact denoiser; the reference runs
classical RK4 in s from sigma_T down to sigma = 1e-4 (step 0.01; the same with step 0.02
is printed as the reference's own error) and ends with D there. The ODE depends only on
the path of sigma, so the reference is the solution of the discrete schedule's ODE too.

Each row: the RMS over the n points of |x_0 - x_0^exact| (per point, 8-D Euclidean), for
one sampler, grid and budget of denoiser calls (5, 10, 20, 50). minidiff's samplers run
with their default grid ("default") and with each named grid; diffusers' schedulers,
driven by the same exact denoiser from the same x_T in the same run, are the reference
rows (diffusers timestep s is minidiff's step s + 1; same betas). Heun calls the denoiser
2 N - 1 times for N jumps: it gets the largest N within the budget.

Run:  OMP_NUM_THREADS=1 python benchmarks/samplers.py --ode [--n 1000]
Writes benchmarks/results/samplers_ode.json.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np
import torch

from benchmarks.samplers import CountingDenoiser
from minidiff.diffusion import GaussianDiffusion, TorchDenoiser
from minidiff.diffusion.samplers import sample_ddim
from minidiff.diffusion.sde import sample_dpm_solver_pp_2m, sample_dpm_solver_pp_3m, sample_ode
from minidiff.process import SPACINGS, Schedule, linear_schedule
from minidiff.toy.mixture import GaussianMixture

RESULTS = Path(__file__).resolve().parent / "results"
BUDGETS = (5, 10, 20, 50)
SIGMA_END = 1e-4  # where the reference stops integrating and denoises

MINIDIFF = {  # name: (sampler, calls -> keyword arguments)
    "ddim": (sample_ddim, lambda calls: {"steps": calls}),
    "heun": (lambda *a, **k: sample_ode(*a, method="heun", **k),
             lambda calls: {"steps": (calls + 1) // 2}),
    "dpm-solver++(2m)": (sample_dpm_solver_pp_2m, lambda calls: {"steps": calls}),
    "dpm-solver++(3m)": (sample_dpm_solver_pp_3m, lambda calls: {"steps": calls}),
}  # fmt: skip


def diffusers_schedulers() -> dict:
    """diffusers' schedulers with their defaults (and DPM-Solver++'s two other grids)."""
    import diffusers

    return {
        "diffusers DDIMScheduler()": lambda: diffusers.DDIMScheduler(),
        "diffusers DPMSolverMultistepScheduler()": diffusers.DPMSolverMultistepScheduler,
        "diffusers DPMSolverMultistep(use_karras_sigmas)": lambda: (
            diffusers.DPMSolverMultistepScheduler(use_karras_sigmas=True)),
        "diffusers DPMSolverMultistep(use_lu_lambdas)": lambda: (
            diffusers.DPMSolverMultistepScheduler(use_lu_lambdas=True)),
        "diffusers DPMSolverMultistep(solver_order=3)": lambda: (
            diffusers.DPMSolverMultistepScheduler(solver_order=3)),
        "diffusers UniPCMultistepScheduler()": diffusers.UniPCMultistepScheduler,
    }  # fmt: skip


def mixture_8d(seed: int = 0, K: int = 8, D: int = 8) -> GaussianMixture:
    """K components in D dimensions: means N(0, I), covariances 0.01 I + 0.05 A A^T / D."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((K, D, D))
    covs = 0.01 * np.eye(D) + 0.05 * a @ a.transpose(0, 2, 1) / D
    return GaussianMixture(np.full(K, 1 / K), rng.standard_normal((K, D)), covs)


def exact_solution(mixture, schedule: Schedule, x_T: np.ndarray, ds: float) -> np.ndarray:
    """RK4 for dy / ds = y - D(y, sigma), s = log sigma, from sigma_T to SIGMA_END, then D."""
    s_top, s_end = -0.5 * schedule.log_snr[schedule.T], np.log(SIGMA_END)
    n_steps = int(np.ceil((s_top - s_end) / ds))
    s = np.linspace(s_top, s_end, n_steps + 1)
    levels = np.unique(np.concatenate([s, (s[:-1] + s[1:]) / 2]))[::-1]  # decreasing sigma
    table = Schedule.from_alpha_bar(np.concatenate([[1.0], 1 / (1 + np.exp(2 * levels[::-1]))]))
    index = {value: len(levels) - i for i, value in enumerate(levels)}  # s -> table step

    def denoised(y, level):
        t = index[level]
        return mixture.posterior_mean_x0(table, y * table.sqrt_alpha_bar[t], t)

    y = x_T * np.sqrt(1 + np.exp(2 * s_top))
    for a, b in zip(s[:-1], s[1:], strict=True):
        h, mid = b - a, (a + b) / 2
        k1 = y - denoised(y, a)
        k2 = (y + h / 2 * k1) - denoised(y + h / 2 * k1, mid)
        k3 = (y + h / 2 * k2) - denoised(y + h / 2 * k2, mid)
        k4 = (y + h * k3) - denoised(y + h * k3, b)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return denoised(y, s[-1])


def run_diffusers(
    make, denoiser: CountingDenoiser, schedule: Schedule, x_T: torch.Tensor, calls: int
):
    """Drive a diffusers scheduler with the exact denoiser (its timestep s is step s + 1)."""
    scheduler = make()
    scheduler.set_timesteps(calls)
    x = x_T * scheduler.init_noise_sigma
    for s in scheduler.timesteps:
        model_input = scheduler.scale_model_input(x, s)
        eps = denoiser(model_input, torch.full((len(x),), int(s) + 1))
        x = scheduler.step(eps, s, x).prev_sample
    return x


def rms_error(x0: np.ndarray, exact: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.sum((x0 - exact) ** 2, axis=1))))


def main(*, budgets=BUDGETS, n: int = 1000, seed: int = 0, diffusers: bool = True,
         out: Path | str | None = RESULTS) -> list[dict]:  # fmt: skip
    """Run the benchmark, print the table, write the JSON into ``out`` (unless None)."""
    torch.set_num_threads(1)
    mixture, schedule = mixture_8d(seed), linear_schedule(1000)
    x_T = np.random.default_rng(seed + 1).standard_normal((n, mixture.D))
    exact = exact_solution(mixture, schedule, x_T, ds=0.01)
    reference_error = rms_error(exact_solution(mixture, schedule, x_T, ds=0.02), exact)
    diffusion, start = GaussianDiffusion(schedule), torch.from_numpy(x_T)
    rows = []
    for name, (sampler, settings) in MINIDIFF.items():
        for spacing in ("default", *SPACINGS):
            grid = {} if spacing == "default" else {"spacing": spacing}
            for budget in budgets:
                denoiser = CountingDenoiser(TorchDenoiser(mixture.denoiser(schedule)))
                x0 = sampler(denoiser, diffusion, start, **settings(budget), **grid).numpy()
                rows.append(dict(sampler=name, grid=spacing, budget=budget,
                                 calls=denoiser.calls, error=rms_error(x0, exact)))  # fmt: skip
    for name, make in (diffusers_schedulers() if diffusers else {}).items():
        for budget in budgets:
            denoiser = CountingDenoiser(TorchDenoiser(mixture.denoiser(schedule)))
            x0 = run_diffusers(make, denoiser, start, budget).numpy()
            rows.append(dict(sampler=name, grid="its default", budget=budget,
                             calls=denoiser.calls, error=rms_error(x0, exact)))  # fmt: skip
    print(format_table(rows, budgets, reference_error))
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        payload = {
            "settings": dict(budgets=list(budgets), n=n, seed=seed, T=1000, D=mixture.D),
            "machine": dict(python=platform.python_version(), torch=torch.__version__,
                            processor=platform.processor() or platform.machine()),
            "reference_error": reference_error,
            "rows": rows,
        }  # fmt: skip
        temporary = out / "samplers_ode.json.tmp"
        temporary.write_text(json.dumps(payload, indent=2))
        os.replace(temporary, out / "samplers_ode.json")
        print(f"\nwrote {out / 'samplers_ode.json'}")
    return rows


def format_table(rows: list[dict], budgets, reference_error: float) -> str:
    """One line per sampler and grid: the RMS error at each budget (calls in brackets
    where they differ from the budget)."""
    header = f"{'sampler':<48}{'grid':<12}" + "".join(f"{b:>12}" for b in budgets)
    lines = [header, "-" * len(header)]
    keys = list(dict.fromkeys((r["sampler"], r["grid"]) for r in rows))
    for sampler, grid in keys:
        cells = []
        for budget in budgets:
            (r,) = [
                r for r in rows if (r["sampler"], r["grid"], r["budget"]) == (sampler, grid, budget)
            ]
            mark = "" if r["calls"] == budget else f"({r['calls']})"
            cells.append(f"{mark}{r['error']:.3e}".rjust(12))
        lines.append(f"{sampler:<48}{grid:<12}" + "".join(cells))
    lines.append(f"reference RK4 step 0.02 vs 0.01: {reference_error:.1e}")
    return "\n".join(lines)
