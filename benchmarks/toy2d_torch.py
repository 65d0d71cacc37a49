"""Benchmark: the 2-D toy DDPM trained in PyTorch (`minidiff.nn.ToyMLP`) side by side with
the NumPy model (`minidiff.toy.train_ddpm`), on one CPU core.

Both train the same network (same architecture, initialisation scheme, schedule and loss
L_simple of Ho et al. 2020, eq. 14) with the same budget and optimizer settings: Adam with
the warmup and cosine decay of `minidiff.toy.learning_rate`, gradient clipping and an EMA
of the weights. The torch model trains in float32 with `GaussianDiffusion.q_sample` and
`.target`. Both are then sampled with the same NumPy ancestral sampler (Algorithm 2) and
scored with the metric of `benchmarks/toy2d.py`: the sliced Wasserstein distance (and
MMD^2) to held-out data, next to the data-vs-data floor and the moment-matched Gaussian.

Run:  OMP_NUM_THREADS=1 python benchmarks/toy2d_torch.py [--datasets moons] [--steps N]
Writes benchmarks/results/toy2d_torch.json.
"""

from __future__ import annotations

import os

# One BLAS thread, set before NumPy and torch load when this file runs as a script.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `benchmarks` as a package

from benchmarks.toy2d import (  # noqa: E402
    TARGET_DATASETS,
    blas_threads,
    evaluate,
    format_table,
    write_results,
)
from minidiff.diffusion import GaussianDiffusion  # noqa: E402
from minidiff.nn.mlp import ToyMLP  # noqa: E402
from minidiff.process import Schedule, toy_schedule  # noqa: E402
from minidiff.toy.datasets import DATASETS, make_dataset  # noqa: E402
from minidiff.toy.sampling import sample_ancestral  # noqa: E402
from minidiff.toy.train import (  # noqa: E402
    DEFAULT_BATCH_SIZE,
    DEFAULT_CLIP_NORM,
    DEFAULT_EMA_DECAY,
    DEFAULT_EMBED_DIM,
    DEFAULT_HIDDEN,
    DEFAULT_LR,
    DEFAULT_STEPS,
    DEFAULT_T,
    DEFAULT_WARMUP,
    learning_rate,
    train_ddpm,
)

RESULTS = Path(__file__).resolve().parent / "results" / "toy2d_torch.json"
IMPLEMENTATIONS = ("numpy", "torch")


@dataclass(frozen=True, eq=False)
class TorchTrainResult:
    """What `train_toy_mlp` returns: the final and EMA networks, the per-step losses and
    the wall-clock time of the training loop."""

    model: ToyMLP
    ema_model: ToyMLP
    losses: np.ndarray
    train_seconds: float

    def numpy_denoiser(self):
        """The EMA network as a NumPy denoiser ``(xt: (B, D), t: (B,)) -> eps`` (float64 out)."""
        model = self.ema_model
        dtype = next(model.parameters()).dtype

        @torch.no_grad()
        def denoise(xt: np.ndarray, t: np.ndarray) -> np.ndarray:
            out = model(torch.from_numpy(np.asarray(xt)).to(dtype), torch.from_numpy(np.asarray(t)))
            return out.double().numpy()

        return denoise


def train_toy_mlp(
    data: np.ndarray,
    schedule: Schedule,
    generator: torch.Generator,
    *,
    steps: int = DEFAULT_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    warmup: int = DEFAULT_WARMUP,
    hidden: Sequence[int] = DEFAULT_HIDDEN,
    embed_dim: int = DEFAULT_EMBED_DIM,
    ema_decay: float = DEFAULT_EMA_DECAY,
    clip_norm: float | None = DEFAULT_CLIP_NORM,
    dtype: torch.dtype = torch.float32,
) -> TorchTrainResult:
    """Algorithm 1 of Ho et al. (2020) for `ToyMLP`, with the settings of
    `minidiff.toy.train_ddpm` (Adam, warmup + cosine decay, clipping, EMA with the same
    ramp-up min(decay, (1 + k) / (10 + k)))."""
    diffusion = GaussianDiffusion(schedule)  # eps parameterization, L_simple
    x_data = torch.from_numpy(np.asarray(data, dtype=np.float64)).to(dtype)
    model = ToyMLP(data.shape[1], hidden, embed_dim, generator=generator).to(dtype)
    ema_model = ToyMLP(data.shape[1], hidden, embed_dim).to(dtype)
    ema_model.load_state_dict(model.state_dict())
    ema_model.requires_grad_(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
    losses = np.empty(steps)
    start = time.perf_counter()
    for step in range(steps):
        index = torch.randint(0, x_data.shape[0], (batch_size,), generator=generator)
        x0 = x_data[index]  # (B, D)
        t = torch.randint(1, schedule.T + 1, (batch_size,), generator=generator)  # (B,)
        eps = torch.randn(x0.shape, generator=generator, dtype=dtype)  # (B, D)
        xt = diffusion.q_sample(x0, t, eps)  # eq. 4
        loss = (model(xt, t) - diffusion.target(x0, t, eps)).pow(2).mean()  # eq. 14
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, steps, lr, warmup)
        optimizer.step()
        decay = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for ema_p, p in zip(ema_model.parameters(), model.parameters(), strict=True):
                ema_p.lerp_(p, 1.0 - decay)  # ema <- decay ema + (1 - decay) p
        losses[step] = loss.item()
    return TorchTrainResult(model, ema_model, losses, time.perf_counter() - start)


def run_dataset(
    name: str,
    implementation: str,
    *,
    steps: int,
    T: int,
    n_train: int,
    n_samples: int,
    seed: int,
    repeats: int,
) -> dict:
    """Train one implementation on one dataset, sample and evaluate: one row."""
    data_rng, train_rng, sample_rng, eval_rng = (
        np.random.default_rng(s)
        for s in np.random.SeedSequence([seed, DATASETS.index(name)]).spawn(4)
    )
    schedule = toy_schedule(T)
    data = make_dataset(name, n_train, data_rng)
    cpu_start = time.process_time()
    if implementation == "numpy":
        result = train_ddpm(data, schedule, train_rng, steps=steps, progress=False)
        denoiser, seconds, losses = result.denoiser, result.train_seconds, result.losses
    elif implementation == "torch":
        generator = torch.Generator().manual_seed(int(train_rng.integers(2**63)))
        result = train_toy_mlp(data, schedule, generator, steps=steps)
        denoiser, seconds, losses = result.numpy_denoiser(), result.train_seconds, result.losses
    else:
        raise ValueError(f"unknown implementation {implementation!r}; expected {IMPLEMENTATIONS}")
    train_cpu = time.process_time() - cpu_start
    x_T = sample_rng.standard_normal((n_samples, 2))
    samples = sample_ancestral(denoiser, schedule, x_T, sample_rng)
    scores = evaluate(name, samples, data, eval_rng, repeats)
    return {
        "dataset": name,
        "implementation": implementation,
        "steps": steps,
        "train_seconds": seconds,
        "train_cpu_seconds": train_cpu,
        "steps_per_second": steps / seconds,
        "threads": f"{blas_threads()}/{torch.get_num_threads()}",
        "final_loss": float(losses[-max(1, steps // 10) :].mean()),
        **{f"{key}_{metric}": v for key, row in scores.items() for metric, v in row.items()},
        "sw_over_floor": scores["model"]["sw"] / scores["floor"]["sw"],
    }


def main(
    *,
    datasets=TARGET_DATASETS,
    steps: int = DEFAULT_STEPS,
    T: int = DEFAULT_T,
    n_train: int = 20_000,
    n_samples: int = 2000,
    seed: int = 0,
    repeats: int = 5,
    out: Path | str | None = RESULTS,
) -> list[dict]:
    """Run both implementations on each dataset, print the table and the comparison,
    write the JSON (unless ``out`` is None) and return the rows."""
    unknown = [name for name in datasets if name not in DATASETS]
    if unknown:
        raise ValueError(f"unknown datasets {unknown}; expected names from {DATASETS}")
    torch.set_num_threads(1)
    settings = dict(
        steps=steps, T=T, n_train=n_train, n_samples=n_samples, seed=seed, repeats=repeats
    )
    rows = []
    for name in datasets:
        for implementation in IMPLEMENTATIONS:
            rows.append(run_dataset(name, implementation, **settings))
            r = rows[-1]
            print(
                f"{name} ({implementation}): SW {r['model_sw']:.4f} = "
                f"{r['sw_over_floor']:.2f} x floor, {r['train_seconds']:.1f} s",
                flush=True,
            )
    print()
    print(format_table(rows))
    by_key = {(r["dataset"], r["implementation"]): r for r in rows}
    for name in datasets:
        ratio = by_key[name, "torch"]["model_sw"] / by_key[name, "numpy"]["model_sw"]
        print(f"{name}: SW torch / SW numpy = {ratio:.2f}")
    if out is not None:
        out = Path(out)
        write_results(out, settings, rows, torch=torch.__version__)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(TARGET_DATASETS), choices=DATASETS)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--T", type=int, default=DEFAULT_T)
    parser.add_argument("--n-samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    main(
        datasets=tuple(args.datasets),
        steps=args.steps,
        T=args.T,
        n_samples=args.n_samples,
        seed=args.seed,
        repeats=args.repeats,
    )
