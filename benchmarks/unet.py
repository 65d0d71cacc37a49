"""Benchmark: minidiff's DDPM U-Net against diffusers' UNet2DModel of the same design.

Both networks are the CIFAR-10 model of Ho et al. (2020, appendix B) with the layout of
google/ddpm-cifar10-32 (35,746,307 parameters, dropout 0.1), on the CPU in float32 with a
batch of 8 32x32 images. Per network, in its own subprocess:

- forward: wall-clock seconds of one forward pass (eval mode, ``torch.no_grad``);
- train step: one forward + backward of the mean squared error against a random target
  + one AdamW step (train mode, dropout on), ``zero_grad(set_to_none=True)`` included;
- memory: the rise of the process's peak resident set size (``ru_maxrss``) over its
  level after the imports, the network and the inputs were built. The forward figure is
  the rise during the no-grad forward passes; the train figure the rise by the end of
  the training steps, i.e. activations kept for the backward pass, gradients, AdamW's two
  moment buffers and allocator slack. (Python's tracemalloc cannot see torch's
  allocations; a subprocess per network keeps the two peaks apart.)

Each network runs ``rounds`` times in alternating order (A B, B A, ...), each time in a
fresh subprocess with one warm-up and ``repeats`` timed runs; the reported time is the
minimum over all timed runs (on a shared machine the minimum is the least disturbed; the
JSON keeps every run), the memory the minimum over the rounds.

FLOPs. The analytic count adds the multiply-accumulates (MACs) of every convolution,
linear layer and attention matrix product of one forward pass for one image, walking the
architecture (`minidiff.nn.flops.unet_forward_macs`): a 3x3 conv from C_in to C_out on
an H x W output costs 9 C_in C_out H W MACs; attention over N = H W positions costs 4 N
C^2 (q, k, v and the output projection) + 2 N^2 C (q k^T and the weighted sum of v).
Normalisation, activations, softmax and additions are left out (under 1% here). One MAC
is counted as 2 FLOPs (a multiply and an add), the convention of
``torch.utils.flop_counter``, which serves as an independent check (its count is
reported too). The paper's network comes to 12.44 GFLOPs (6.22 GMACs) per image, 92% of
it in convolutions. Achieved GFLOP/s = analytic FLOPs x batch / forward time; for the
train step the usual estimate backward = 2 x forward is used, so train GFLOP/s = 3 x
forward FLOPs x batch / step time.

Run:  OMP_NUM_THREADS=1 python benchmarks/unet.py [--threads N] [--repeats R] [--rounds K]
Writes benchmarks/results/unet.json.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from minidiff.nn.convert import diffusers_ddpm_cifar10_config  # noqa: E402
from minidiff.nn.flops import unet_forward_macs  # noqa: E402
from minidiff.nn.unet import UNet, UNetConfig  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "unet.json"
MODELS = ("minidiff", "diffusers")
TARGET_TRAIN_RATIO = 1.0  # minidiff's train step time / diffusers'


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _build(name: str) -> tuple[torch.nn.Module, object]:
    if name == "minidiff":
        model = UNet.ddpm_cifar10()
        return model, lambda x, t: model(x, t)
    elif name == "diffusers":
        from diffusers import UNet2DModel

        model = UNet2DModel(**diffusers_ddpm_cifar10_config(dropout=0.1))
        return model, lambda x, t: model(x, t).sample
    else:
        raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")


def _timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def worker(name: str, batch: int, repeats: int, threads: int) -> dict:
    """Measure one network in this process (called in a subprocess by `main`)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, forward = _build(name)
    x = torch.randn(batch, 3, 32, 32)
    t = torch.randint(0, 1000, (batch,))
    target = torch.randn(batch, 3, 32, 32)
    rss_base = _peak_rss_mb()

    model.eval()
    with torch.no_grad():
        forward_times = _timed(lambda: forward(x, t), repeats)
    rss_forward = _peak_rss_mb()

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(forward(x, t), target).backward()
        optimizer.step()

    train_times = _timed(train_step, repeats)
    rss_train = _peak_rss_mb()

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        forward(x[:1], t[:1])
    return {
        "model": name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "forward_s": min(forward_times),
        "forward_s_all": forward_times,
        "train_step_s": min(train_times),
        "train_step_s_all": train_times,
        "peak_rss_mb": rss_train,
        "rss_rise_forward_mb": rss_forward - rss_base,
        "rss_rise_train_mb": rss_train - rss_base,
        "counted_gflops_per_image": counter.get_total_flops() / 1e9,
        "torch_threads": torch.get_num_threads(),
    }


def format_table(rows: list[dict], ratio: dict) -> str:
    columns = [
        ("model", "{}"),
        ("parameters", "{:,}"),
        ("forward_s", "{:.3f}"),
        ("train_step_s", "{:.3f}"),
        ("rss_rise_forward_mb", "{:.0f}"),
        ("rss_rise_train_mb", "{:.0f}"),
        ("forward_gflops_per_s", "{:.1f}"),
        ("train_gflops_per_s", "{:.1f}"),
    ]
    cells = [[name for name, _ in columns]]
    cells += [[fmt.format(row[name]) for name, fmt in columns] for row in rows]
    if ratio:
        cells.append(["ratio"] + [
            "-" if name not in ratio else f"{ratio[name]:.2f}" for name, _ in columns[1:]
        ])  # fmt: skip
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(s.rjust(w) for s, w in zip(row, widths, strict=True)) for row in cells
    )


def _merge(runs: list[dict]) -> dict:
    """One row from a model's runs over several rounds: minimum times and memory."""
    row = dict(runs[0])
    for key in ("forward_s_all", "train_step_s_all"):
        row[key] = [value for run in runs for value in run[key]]
    row["forward_s"] = min(row["forward_s_all"])
    row["train_step_s"] = min(row["train_step_s_all"])
    for key in ("peak_rss_mb", "rss_rise_forward_mb", "rss_rise_train_mb"):
        row[key] = min(run[key] for run in runs)
    return row


def main(
    models: tuple[str, ...] = MODELS,
    batch: int = 8,
    repeats: int = 3,
    rounds: int = 2,
    threads: int = 1,
    output: Path | str | None = RESULTS,
) -> dict:
    """Benchmark each network in subprocesses; print a table; write the JSON.

    The networks are measured in ``rounds`` alternating rounds (A B, B A, ...), each run
    in a fresh subprocess doing ``repeats`` timed steps, so that a load that comes and
    goes on a shared machine hits both alike; every time is the minimum over all runs.
    """
    macs = unet_forward_macs(UNetConfig())
    gflops = 2 * sum(macs.values()) / 1e9  # FLOP = 2 x MAC
    runs: dict[str, list[dict]] = {name: [] for name in models}
    for round_index in range(rounds):
        order = models if round_index % 2 == 0 else tuple(reversed(models))
        for name in order:
            command = [sys.executable, __file__, "--worker", name, "--batch", str(batch),
                       "--repeats", str(repeats), "--threads", str(threads)]  # fmt: skip
            result = subprocess.run(command, capture_output=True, text=True, check=True)
            runs[name].append(json.loads(result.stdout.strip().splitlines()[-1]))
    rows = []
    for name in models:
        row = _merge(runs[name])
        row["forward_gflops_per_s"] = gflops * batch / row["forward_s"]
        row["train_gflops_per_s"] = 3 * gflops * batch / row["train_step_s"]
        rows.append(row)
    ratio = {}
    if len(rows) == 2:
        keys = ("parameters", "forward_s", "train_step_s", "rss_rise_forward_mb",
                "rss_rise_train_mb", "forward_gflops_per_s", "train_gflops_per_s")  # fmt: skip
        ratio = {key: rows[0][key] / rows[1][key] for key in keys}
    report = {
        "device": "cpu",
        "dtype": "float32",
        "batch": batch,
        "image_size": 32,
        "repeats": repeats,
        "rounds": rounds,
        "torch_threads": threads,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "analytic_macs_per_image": macs,
        "analytic_gflops_per_image": gflops,
        "flop_convention": "FLOP = 2 x MAC (multiply + add)",
        "rows": rows,
        "ratio_minidiff_over_diffusers": ratio,
    }
    counted = rows[0]["counted_gflops_per_image"]
    print(f"DDPM CIFAR-10 U-Net, CPU float32, batch {batch}, 32x32, {threads} torch thread(s), "
          f"min of {rounds} x {repeats} runs; analytic {gflops:.2f} GFLOPs/image "
          f"(FLOP = 2 MAC; torch's counter: {counted:.2f})")  # fmt: skip
    print(format_table(rows, ratio))
    if ratio:
        met = ratio["train_step_s"] <= TARGET_TRAIN_RATIO
        print(f"train step ratio minidiff/diffusers = {ratio['train_step_s']:.2f} "
              f"(target <= {TARGET_TRAIN_RATIO}: {'met' if met else 'NOT met'})")  # fmt: skip
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", choices=MODELS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.batch, args.repeats, args.threads)))
    else:
        main(tuple(args.models), args.batch, args.repeats, args.rounds, args.threads)
