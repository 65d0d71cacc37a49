"""The GPU run: one GPU, no internet, under 10 minutes.

Measures, on one CUDA device:

1. images/s of the CIFAR-10 training step (`Trainer.train_step` of the ``cifar10`` preset,
   the paper's 35.7M U-Net) at batch 128, with `benchmarks/train_step.py`, in four
   variants: fp32; bf16 autocast; bf16 + channels_last; bf16 + channels_last +
   torch.compile. Each row also gives the share of the step spent in AdamW's update and
   the EMA update (timed alone);
2. the ``digits`` preset's time to 95% confident samples (1,000 samples, p >= 0.9 under
   the digits judge of `minidiff.evaluation`, all ten classes): `benchmarks/digits.py`
   trained for an increasing number of steps (1,000, 2,000, then the preset's 2,800) until
   a run meets the bar; its training + sampling seconds are the time to 95%.

Everything is local: random images for the step, the digits data shipped with the
package. ``--smoke`` runs the same code paths on the CPU at tiny sizes (cifar10-small at
batch 2, 1 step, no compile; digits 3 steps, 20 samples), in about a minute: the test
suite runs it so the script stays ready for the day a GPU is at hand.

Run:  bash benchmarks/gpu.sh            (or: python benchmarks/gpu.py [--smoke])
Writes benchmarks/results/gpu/gpu.json, and the train-step and digits JSON beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `benchmarks` as a package

from benchmarks import digits, train_step  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "gpu"
TARGET_CONFIDENT = 0.95
DIGITS_STEPS = (1000, 2000, 2800)
# (name, precision, memory format, compile): the train-step rows
STEP_VARIANTS = (
    ("fp32", "fp32", "contiguous", False),
    ("bf16", "bf16", "contiguous", False),
    ("bf16 channels_last", "bf16", "channels_last", False),
    ("bf16 channels_last compile", "bf16", "channels_last", True),
)


def step_rows(*, smoke: bool, device: str, out: Path) -> list[dict[str, Any]]:
    """The four training-step variants (the compile row is left out of a smoke run)."""
    size = dict(presets=("cifar10-small",), batch=2, warmup=1, steps=1) if smoke else dict(
        presets=("cifar10",), batch=128, warmup=5, steps=20)  # fmt: skip
    rows = []
    for name, precision, memory_format, compiled in STEP_VARIANTS:
        if smoke and compiled:
            continue  # a cold inductor compile takes minutes on a CPU
        report = train_step.main(
            device=device, memory_formats=(memory_format,), compile_modes=(compiled,),
            precision=precision, timeout=300.0 if compiled else 120.0,
            output=out / f"train_step_{name.replace(' ', '_')}.json", **size,
        )  # fmt: skip
        rows += [{"variant": name, **row} for row in report["rows"]]
    return rows


def time_to_target(*, smoke: bool, device: str, out: Path) -> dict[str, Any]:
    """Train digits for each step count in turn until the samples meet the bar."""
    runs = []
    for steps in (3,) if smoke else DIGITS_STEPS:
        row = digits.main(
            steps=steps, n_samples=20 if smoke else 1000, threads=1 if smoke else 4,
            device=device, progress=False, results=out / f"digits_{steps}.json",
        )  # fmt: skip
        row["seconds_to_samples"] = row["train_seconds"] + row["sample_seconds"]
        row["met"] = row["confident_share"] >= TARGET_CONFIDENT and row["classes_present"] == 10
        runs.append(row)
        if row["met"]:
            break
    met = [r for r in runs if r["met"]]
    return {"runs": runs, "seconds_to_95": met[0]["seconds_to_samples"] if met else None}


def format_summary(rows: list[dict[str, Any]], target: dict[str, Any]) -> str:
    """The two tables: images/s per variant, and the digits runs."""
    lines = [f"{'variant':<28}{'batch':>6}{'s/step':>10}{'images/s':>10}{'AdamW ms':>10}"
             f"{'EMA ms':>8}{'share':>7}"]  # fmt: skip
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"{r['variant']:<28}failed: {r['error']}")
            continue
        share = (r["adamw_s"] + r["ema_s"]) / r["step_s"]
        lines.append(f"{r['variant']:<28}{r['batch']:>6}{r['step_s']:>10.4g}"
                     f"{r['images_per_s']:>10.4g}{r['adamw_s'] * 1e3:>10.3g}"
                     f"{r['ema_s'] * 1e3:>8.3g}{share:>7.0%}")  # fmt: skip
    lines += ["", f"{'digits steps':<14}{'train s':>9}{'sample s':>10}{'confident':>11}"
              f"{'classes':>9}{'Frechet/floor':>15}"]  # fmt: skip
    for r in target["runs"]:
        lines.append(f"{r['steps']:<14}{r['train_seconds']:>9.1f}{r['sample_seconds']:>10.1f}"
                     f"{r['confident_share']:>11.3f}{r['classes_present']:>9}"
                     f"{r['frechet'] / r['frechet_floor']:>15.2f}")  # fmt: skip
    seconds = target["seconds_to_95"]
    lines.append("time to 95% confident (training + sampling): "
                 + (f"{seconds:.1f} s" if seconds is not None else "not reached"))  # fmt: skip
    return "\n".join(lines)


def main(*, smoke: bool = False, device: str | None = None,
         out: Path | str = RESULTS) -> dict[str, Any]:  # fmt: skip
    """Run both parts on ``device`` (default cuda; cpu for a smoke run), print the summary
    and write ``out/gpu.json``."""
    device = device or ("cpu" if smoke else "cuda")
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = step_rows(smoke=smoke, device=device, out=out)
    target = time_to_target(smoke=smoke, device=device, out=out)
    report = {
        "device": torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "smoke": smoke,
        "step_rows": rows,
        "digits": target,
        "total_seconds": time.perf_counter() - start,
    }
    print()
    print(format_summary(rows, target))
    print(f"total {report['total_seconds']:.0f} s on {report['device']}")
    (out / "gpu.json").write_text(json.dumps(report, indent=2, default=str))
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, CPU")
    parser.add_argument("--device", default=None, help="default: cuda (cpu with --smoke)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    try:
        main(smoke=args.smoke, device=args.device, out=args.out)
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
