"""Benchmark: inpainting and super-resolution with the runs of restoration_runs.py.

Inpainting (`minidiff.applications.inpainting`), per mask kind, on held-out test images
of the classes the model was trained on (digits 1..9 with ``digits-no0``; Fashion-MNIST
classes 1..9 with ``fashion-mnist-no0``), 8 samples per image:

- the judge's accuracy (digits: `DigitsClassifier`; Fashion-MNIST: `fashion_judge`) on
  one completed sample, with the true label; beside it the judge on the masked input
  (missing pixels set to the background, -1) and on the originals;
- the masked-region MSE of one sample and of the mean of the 8 samples;
- replacement (r = 1) and RePaint at equal NFE (20) and at RePaint's NFE (60).

Super-resolution (`minidiff.applications.superres`, SRDiff residual): PSNR and SSIM of
bicubic, one sample and the mean of 8 against the original; the consistency MSE between
the downsampled output and the low-resolution input; the judge's accuracy on each. The
8x8 digits are below SSIM's 11 x 11 window: their SSIM uses a 7 x 7 window (sigma 1.5).

Run:  .venv/bin/python benchmarks/restoration.py [--runs DIR] [--n 27] [--fashion-n 8]
[--sr-n 64] [--parts ...] (train the runs first: benchmarks/restoration_runs.py). One CPU
thread; the sizes are cut to what a shared 2-core machine evaluates in minutes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.restoration_runs import RUNS_DIR, images  # noqa: E402
from minidiff.applications.inpainting import (  # noqa: E402
    MASK_KINDS,
    inpaint,
    inpainting_mask,
    repaint_nfe,
)
from minidiff.applications.superres import (  # noqa: E402
    downsample,
    load_superres,
    upsample,
    upscale,
)
from minidiff.evaluation import psnr, ssim  # noqa: E402

SAMPLES = 8
# (label, grid steps n, jump j, resamplings r): NFE = repaint_nfe(n, j, r); the first two
# at equal NFE (20), the last two at RePaint's NFE (60)
METHODS = (
    ("replacement", 20, 1, 1),
    ("RePaint n=5 j=1 r=4", 5, 1, 4),
    ("RePaint n=20 j=2 r=3", 20, 2, 3),
    ("replacement", 60, 1, 1),
)


def judge_of(dataset: str):
    """``predict(images (N, 1, S, S) in [-1, 1]) -> (N,)`` labels."""
    if dataset == "digits":
        from minidiff.evaluation import DigitsClassifier

        classifier = DigitsClassifier.fit(seed=0)
        return lambda x: torch.as_tensor(classifier.predict(x.cpu()))
    from minidiff.evaluation.judge import fashion_judge

    judge, _ = fashion_judge(seed=0)
    return lambda x: torch.cat([judge(c.float()).argmax(1) for c in x.split(500)])


def held_out(dataset: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n test images of classes 1..9 (those the ``-no0`` runs learned)."""
    x, y = images(dataset, "test")
    keep = y != 0
    return x[keep][:n], y[keep][:n]


def inpainting_table(run, dataset: str, n: int, kinds=MASK_KINDS) -> str:
    """The inpainting table of ``run`` on ``n`` held-out images, every method per mask."""
    x, y = held_out(dataset, n)
    predict = judge_of(dataset)
    size = x.shape[-1]
    lines = [
        f"inpainting, {dataset}: {n} test images of classes 1-9, {SAMPLES} samples each; "
        f"judge on the originals {float((predict(x) == y).double().mean()):.3f}",
        f"{'mask':<8}{'method':<22}{'NFE':>5}{'judge(masked)':>15}{'judge(1)':>10}"
        f"{'MSE(1)':>9}{'MSE(mean8)':>12}",
    ]
    for kind in kinds:
        g = torch.Generator().manual_seed(0)
        mask = inpainting_mask(kind, size, generator=g)
        missing = (1 - mask).bool().expand_as(x)
        masked_acc = float((predict(torch.where(missing, -1.0, x)) == y).double().mean())
        repeated = x.repeat(SAMPLES, 1, 1, 1)  # (SAMPLES * n, 1, S, S), sample-major
        for label, steps, jump, r in METHODS:
            out = inpaint(
                run.model,
                run.diffusion,
                repeated,
                mask,
                steps=steps,
                jump_length=jump,
                resamplings=r,
                clip_x0=1.0,
                generator=g,
            )
            out = out.reshape(SAMPLES, *x.shape)
            acc = float((predict(out[0]) == y).double().mean())
            mse_one = float(((out[0] - x)[missing] ** 2).mean())
            mse_mean = float(((out.mean(0) - x)[missing] ** 2).mean())
            lines.append(
                f"{kind:<8}{label:<22}{repaint_nfe(steps, jump, r):>5}"
                f"{masked_acc:>15.3f}{acc:>10.3f}{mse_one:>9.4f}{mse_mean:>12.4f}"
            )
    return "\n".join(lines)


def superres_table(folder: Path, n: int) -> str:
    """The super-resolution table of the run in ``folder`` on ``n`` test images."""
    network, config = load_superres(folder)
    x, y = images(config.dataset, "test")
    x, y = x[:n], y[:n]
    predict = judge_of(config.dataset)
    low = downsample(x, config.factor)
    out = upscale(
        network,
        config.diffusion(),
        low.repeat(SAMPLES, 1, 1, 1),
        config,
        generator=torch.Generator().manual_seed(0),
    ).reshape(SAMPLES, *x.shape)
    window = 11 if x.shape[-1] >= 11 else 7
    candidates = {
        "bicubic": upsample(low, config.factor).clamp(-1, 1),
        "SR sample": out[0],
        "SR mean of 8": out.mean(0),
        "original": x,
    }
    low_side = x.shape[-1] // config.factor
    lines = [
        f"super-resolution {low_side} -> {x.shape[-1]}, {config.dataset} ({config.target}, "
        f"{config.steps} training steps, aug_sigma {config.aug_sigma}): {n} test images; "
        f"SSIM window {window}",
        f"{'method':<14}{'PSNR dB':>9}{'SSIM':>8}{'consistency MSE':>17}{'judge':>8}",
    ]
    for name, image in candidates.items():
        p = float(psnr(image, x).clamp(max=99).mean())
        s = float(ssim(image, x, window=window).mean())
        consistency = float(((downsample(image, config.factor) - low) ** 2).mean())
        acc = float((predict(image) == y).double().mean())
        lines.append(f"{name:<14}{p:>9.2f}{s:>8.3f}{consistency:>17.5f}{acc:>8.3f}")
    return "\n".join(lines)


PARTS = ("inpaint-digits", "sr-digits", "inpaint-fashion", "sr-fashion")


def main(runs: Path = RUNS_DIR, n: int = 27, fashion_n: int = 8, sr_n: int = 64,
         parts: tuple[str, ...] = PARTS) -> None:  # fmt: skip
    from minidiff import runs as minidiff_runs

    torch.set_num_threads(1)
    print("restoration benchmark: 1 CPU thread on a shared 2-core machine")
    if "inpaint-digits" in parts:
        digits = minidiff_runs.load_run(runs / "digits-no0", device="cpu")
        print(f"digits-no0: step {digits.step}\n" + inpainting_table(digits, "digits", n),
              flush=True)  # fmt: skip
    if "sr-digits" in parts:
        print(superres_table(runs / "digits-sr2", sr_n), flush=True)
    if "inpaint-fashion" in parts:
        fashion = minidiff_runs.load_run(runs / "fashion-mnist-no0", device="cpu")
        print(
            f"fashion-mnist-no0: step {fashion.step}\n"
            + inpainting_table(fashion, "fashion-mnist", fashion_n, ("center",)),
            flush=True,
        )
    if "sr-fashion" in parts:
        print(superres_table(runs / "fashion-mnist-sr2", fashion_n), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=RUNS_DIR)
    parser.add_argument("--n", type=int, default=27, help="digits test images to inpaint")
    parser.add_argument("--fashion-n", type=int, default=8)
    parser.add_argument("--sr-n", type=int, default=64, help="digits test images to upscale")
    parser.add_argument("--parts", nargs="*", default=PARTS, choices=PARTS)
    args = parser.parse_args()
    main(args.runs, args.n, args.fashion_n, args.sr_n, tuple(args.parts))
