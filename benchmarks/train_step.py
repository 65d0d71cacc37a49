"""Images per second of one full training step for the CIFAR-10 presets, per variant.

What is timed is the real `Trainer.train_step` of `minidiff.training`: the next batch from
a device-resident `image_loader` (random uint8 32x32 images, random flips, scaling to
[-1, 1]), t and eps drawn, the L_simple loss through `GaussianDiffusion.training_losses`
under the run's precision, backward, gradient-norm clipping, AdamW and the EMA update.
The presets ``cifar10`` (the paper's 35.7M U-Net) and ``cifar10-small`` are built with
`minidiff.configs` (`build_model`, `build_diffusion`, the preset's `TrainConfig`), and each is
run in four variants: memory format contiguous / channels_last x eager / torch.compile.

Each variant runs in its own subprocess (fresh compile caches and memory; a crash or a
hang is reported as a failed row, with a per-row time limit). In it: ``warmup`` steps
(the first one compiles, for torch.compile), then ``steps`` timed steps, each between two
CUDA synchronisations; the steady-state time is their median.

FLOPs: `minidiff.configs.describe` counts 3 x the forward FLOPs per example per training
step (backward ~ 2 x forward; FLOP = 2 multiply-accumulates), so achieved TFLOP/s =
3 x forward FLOPs x batch / step time. It leaves out normalisation, activations, the
optimizer and the EMA, so it is a lower bound on the work done. The last column times
AdamW's update and the EMA update alone after the timed steps (median of ``steps`` calls
each): their share of the step.

Run (GPU: the preset batch of 128 and precision "auto", i.e. bf16 autocast):
    python benchmarks/train_step.py
    python benchmarks/train_step.py --presets cifar10-small --no-compile   # quick subset
On the CPU the batch is reduced (``--cpu-batch``, default 8) and the table says so.
Writes benchmarks/results/train_step.json and train_step.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from minidiff.configs import build_diffusion, build_model, describe, preset
from minidiff.data import image_loader
from minidiff.training import Trainer

RESULTS = Path(__file__).resolve().parent / "results" / "train_step.json"
PRESET_NAMES = ("cifar10", "cifar10-small")
MEMORY_FORMATS = ("contiguous", "channels_last")
DATASET_BATCHES = 4  # random images for this many batches (the loader wraps around)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()})"


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _first_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}".strip()


def _make_trainer(spec: dict[str, Any], out_dir: str):
    """The `Trainer` of one variant: the preset's model, diffusion and settings."""
    p = preset(spec["preset"])
    device = torch.device(spec["device"])
    torch.manual_seed(0)  # the U-Net's initial weights
    model = build_model(p)
    config = replace(
        p.training, batch_size=spec["batch"], memory_format=spec["memory_format"],
        compile=spec["compile"], precision=spec["precision"],
        steps=spec["warmup"] + spec["steps"], log_every=10**9, checkpoint_every=0,
    )  # fmt: skip
    generator = torch.Generator().manual_seed(0)
    n = spec["batch"] * DATASET_BATCHES
    channels, size, _ = p.sample_shape
    images = torch.randint(0, 256, (n, size, size, channels), generator=generator,
                           dtype=torch.uint8)  # fmt: skip
    loader = image_loader(images, None, spec["batch"], device=device, flip=p.data.random_flip)
    return Trainer(model, build_diffusion(p), loader, config, out_dir=out_dir, device=device)


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Time one variant in this process (`main` calls it in a subprocess).

    ``spec`` holds preset, device, batch, memory_format, compile, precision, warmup,
    steps and threads. Returns the row; a failure (e.g. torch.compile on a machine without
    a working compiler) gives ``status="failed"`` and the error's first line.
    """
    if spec["threads"] is not None:
        torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    p = preset(spec["preset"])
    forward_flops = describe(p)["forward_flops_per_example"]
    row: dict[str, Any] = {
        **spec,
        "device_name": _device_name(device),
        "torch_threads": torch.get_num_threads(),
        "train_flops_per_step": 3 * forward_flops * spec["batch"],
        "status": "ok",
        "error": None,
    }
    with tempfile.TemporaryDirectory() as out_dir:  # nothing is written: no log, no save
        try:
            trainer = _make_trainer(spec, out_dir)
            row["precision_used"] = "bf16" if trainer.autocast else "fp32"
            row["memory_format_used"] = "channels_last" if trainer.channels_last else "contiguous"
            start = time.perf_counter()
            for i in range(spec["warmup"]):
                trainer.train_step()
                _synchronize(device)
                if i == 0:
                    row["first_step_s"] = time.perf_counter() - start
            row["warmup_s"] = time.perf_counter() - start
            times = []
            for _ in range(spec["steps"]):
                _synchronize(device)
                begin = time.perf_counter()
                trainer.train_step()
                _synchronize(device)
                times.append(time.perf_counter() - begin)
            # the step's overhead after backward: AdamW's update and the EMA's, timed alone
            # on the last step's gradients (the weights change; nothing is timed after)
            row["adamw_s"] = _median_time(trainer.optimizer.step, spec["steps"], device)
            row["ema_s"] = _median_time(lambda: trainer.ema.update(trainer.model),
                                        spec["steps"], device)  # fmt: skip
        except Exception as error:  # report the row as failed and let the others run
            row.update(status="failed", error=_first_line(error))
            return row
    row["step_s_all"] = times
    row["step_s"] = statistics.median(times)
    row["images_per_s"] = spec["batch"] / row["step_s"]
    row["tflops_per_s"] = row["train_flops_per_step"] / row["step_s"] / 1e12
    if device.type == "cuda":
        row["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return row


def _median_time(call, repeats: int, device: torch.device) -> float:
    """Median wall time of ``call()`` over ``repeats`` calls, each between synchronisations."""
    times = []
    for _ in range(repeats):
        _synchronize(device)
        begin = time.perf_counter()
        call()
        _synchronize(device)
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def _run_subprocess(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """`measure` in a fresh process (own session, so a timeout ends its compile workers)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return {**spec, "status": "failed", "error": f"timed out after {timeout:.0f} s"}
    lines = stdout.strip().splitlines()
    if process.returncode != 0 or not lines:
        last = (stderr.strip().splitlines() or [f"exit status {process.returncode}"])[-1]
        return {**spec, "status": "failed", "error": last}
    return json.loads(lines[-1])


def _add_speedups(rows: list[dict[str, Any]]) -> None:
    """speed-up = the contiguous eager row's step time / this row's, per preset."""
    for row in rows:
        base = next(
            (r for r in rows if r["preset"] == row["preset"] and r["status"] == "ok"
             and r["memory_format"] == "contiguous" and not r["compile"]),
            None,
        )  # fmt: skip
        ok = row["status"] == "ok" and base is not None
        row["speedup"] = base["step_s"] / row["step_s"] if ok else None


def format_table(rows: list[dict[str, Any]]) -> str:
    """A markdown table of the rows (failed rows show the error)."""
    header = ["preset", "device", "batch", "memory format", "compile", "precision",
              "warm-up s", "s/step", "images/s", "TFLOP/s", "speed-up", "AdamW+EMA"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        precision = r.get("precision_used", r["precision"])
        cells = [r["preset"], r["device"], str(r["batch"]), r["memory_format"],
                 "yes" if r["compile"] else "no", precision]  # fmt: skip
        if r["status"] == "ok":
            cells += [f"{r['warmup_s']:.1f}", f"{r['step_s']:.4g}", f"{r['images_per_s']:.4g}",
                      f"{r['tflops_per_s']:.3g}",
                      "-" if r["speedup"] is None else f"{r['speedup']:.2f}",
                      _overhead(r)]  # fmt: skip
        else:
            cells += ["failed: " + r["error"].replace("|", "/")] + [""] * 5
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _overhead(row: dict[str, Any]) -> str:
    """AdamW + EMA time as a share of the step, with each part in ms."""
    if "adamw_s" not in row:
        return "-"
    share = (row["adamw_s"] + row["ema_s"]) / row["step_s"]
    return f"{share:.0%} ({row['adamw_s'] * 1e3:.3g} + {row['ema_s'] * 1e3:.3g} ms)"


def main(
    presets: tuple[str, ...] = PRESET_NAMES,
    device: str | None = None,
    batch: int | None = None,
    cpu_batch: int = 8,
    memory_formats: tuple[str, ...] = MEMORY_FORMATS,
    compile_modes: tuple[bool, ...] = (False, True),
    precision: str = "auto",
    warmup: int | None = None,
    steps: int | None = None,
    threads: int | None = None,
    timeout: float = 1800.0,
    output: Path | str | None = RESULTS,
) -> dict[str, Any]:
    """Time every (preset, compile, memory format) variant; print and write the results.

    Args:
        presets: preset names (`minidiff.configs.PRESETS` with image data).
        device: "cuda", "cuda:1", "cpu", ...; default cuda if available, else cpu.
        batch: the batch size; default the preset's (128) on a GPU, ``cpu_batch`` on the CPU.
        memory_formats, compile_modes: the variants to run.
        precision: `TrainConfig.precision` ("auto": bf16 autocast on CUDA, fp32 on the CPU).
        warmup, steps: warm-up and timed steps (default 10 and 50 on a GPU, 2 and 3 on the
            CPU).
        threads: torch threads in each subprocess (default: torch's default).
        timeout: seconds allowed to one variant's subprocess; past it the row fails.
        output: the JSON path (a ``.md`` table is written beside it); None: no files.
    """
    device = device or default_device()
    on_gpu = torch.device(device).type == "cuda"
    warmup = warmup if warmup is not None else (10 if on_gpu else 2)
    steps = steps if steps is not None else (50 if on_gpu else 3)
    for name, value in (("warmup", warmup), ("steps", steps), ("cpu_batch", cpu_batch)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value!r}")
    if not presets or not memory_formats or not compile_modes:
        raise ValueError("presets, memory_formats and compile_modes must be non-empty")
    rows = []
    for name in presets:
        full = preset(name).training.batch_size
        size = batch if batch is not None else (full if on_gpu else cpu_batch)
        for compiled in compile_modes:
            for memory_format in memory_formats:
                spec = dict(preset=name, device=device, batch=size, memory_format=memory_format,
                            compile=compiled, precision=precision, warmup=warmup, steps=steps,
                            threads=threads)  # fmt: skip
                row = _run_subprocess(spec, timeout)
                rows.append(row)
                status = f"{row['step_s']:.4g} s/step" if row["status"] == "ok" else row["error"]
                print(f"  {name} {memory_format} compile={compiled}: {status}", flush=True)
                report = _report(rows, device, on_gpu, warmup, steps, output)  # partial
    print(report["title"])
    print(format_table(rows))
    return report


def _report(rows, device, on_gpu, warmup, steps, output) -> dict[str, Any]:
    """The report of the rows so far, written to ``output`` (JSON) and beside it (.md)."""
    _add_speedups(rows)
    threads_used = sorted({r["torch_threads"] for r in rows if "torch_threads" in r})
    note = "" if on_gpu else f" (CPU: batch reduced to {rows[0]['batch']}, not the preset's 128)"
    title = (f"Training step of `Trainer.train_step` on {device}{note}; torch {torch.__version__}, "
             f"torch threads {threads_used}; median of {steps} steps after {warmup} warm-up "
             "steps; speed-up vs the contiguous eager row")  # fmt: skip
    report = {
        "title": title,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "flop_convention": "3 x forward FLOPs x batch per step; FLOP = 2 x MAC",
        "rows": rows,
    }
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=2))
        output.with_suffix(".md").write_text(title + "\n\n" + format_table(rows) + "\n")
    return report


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESET_NAMES), choices=PRESET_NAMES)
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--batch", type=int, default=None, help="default: 128 on GPU")
    parser.add_argument("--cpu-batch", type=int, default=8, help="the batch on the CPU")
    parser.add_argument("--memory-formats", nargs="+", default=list(MEMORY_FORMATS),
                        choices=MEMORY_FORMATS)  # fmt: skip
    parser.add_argument("--no-compile", action="store_true", help="eager rows only")
    parser.add_argument("--only-compile", action="store_true", help="torch.compile rows only")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--warmup", type=int, default=None, help="default: 10 GPU, 2 CPU")
    parser.add_argument("--steps", type=int, default=None, help="default: 50 GPU, 3 CPU")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per row")
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = _parse_args()
    if args.worker:
        print(json.dumps(measure(json.loads(args.worker))))
    else:
        if args.no_compile and args.only_compile:
            sys.exit("--no-compile and --only-compile exclude each other")
        modes = (False,) if args.no_compile else (True,) if args.only_compile else (False, True)
        main(tuple(args.presets), args.device, args.batch, args.cpu_batch,
             tuple(args.memory_formats), modes, args.precision, args.warmup, args.steps,
             args.threads, args.timeout, args.output)  # fmt: skip
