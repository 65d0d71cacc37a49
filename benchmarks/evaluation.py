"""Benchmark: the cost of the FID Inception, and the metrics of a digits model at several n.

1. Inception speed: images/s of `FIDInception` (random weights: speed does not depend on
   them) on 32 x 32 inputs resized to 299 x 299, next to its convolution floor measured in
   the same run: the network's multiply-adds (counted by hooks on every convolution and
   the linear layer) divided by the multiply-add rate of one large 3 x 3 convolution.
2. Metrics of a trained digits model (`digits` preset, ``--steps`` steps) in the digits
   classifier's 64 features, at several n: FID, KID, precision and recall of n samples
   against the held-out test digits, beside the floor (n real training digits against the
   same test digits). FID's floor falls with n (its bias, about d (d + 5) / (2 n) for
   Gaussian features); KID's floor stays near 0.
3. Bits/dim of 128 held-out test digits: the VLB (discretised decoder on 17 levels) and
   the probability-flow ODE (Hutchinson-Skilling, uniform dequantization).

Run:  .venv/bin/python benchmarks/evaluation.py [--threads 1] [--steps 600]
Writes benchmarks/results/evaluation.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from minidiff.evaluation import metrics as m  # noqa: E402
from minidiff.evaluation.inception import FIDInception  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "evaluation.json"
SIZES = (100, 250, 500, 1000)


def multiply_adds(network: torch.nn.Module, images: torch.Tensor) -> int:
    """Multiply-adds of one forward pass per image, counted on conv and linear layers."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            per_output = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
            total += output.numel() * per_output // module.groups
        else:
            total += output.numel() * module.in_features

    handles = [mod.register_forward_hook(hook) for mod in network.modules()
               if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear))]  # fmt: skip
    with torch.no_grad():
        network(images)
    for handle in handles:
        handle.remove()
    return total // len(images)


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def inception_speed(batch: int = 4, repeats: int = 2) -> dict:
    network = FIDInception()
    images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8)
    macs = multiply_adds(network, images[:1])
    with torch.no_grad():
        seconds = best_time(lambda: network(images), repeats)
        x = torch.randn(8, 192, 35, 35)
        conv = torch.nn.Conv2d(192, 192, 3, padding=1, bias=False)
        conv_seconds = best_time(lambda: conv(x), repeats + 2)
    conv_rate = x.numel() * 192 * 9 / conv_seconds  # multiply-adds per second
    return {
        "batch": batch,
        "macs_per_image": macs,
        "images_per_s": batch / seconds,
        "conv_macs_per_s": conv_rate,
        "floor_images_per_s": conv_rate / macs,
    }


def digits_metrics(steps: int, seed: int, n_likelihood: int = 128, ode_steps: int = 50) -> dict:
    from minidiff import runs
    from minidiff.configs import override, preset
    from minidiff.data import load_digits
    from minidiff.evaluation.judge import digits_space
    from minidiff.evaluation.likelihood import ode_bits_per_dim, vlb_bits_per_dim

    p = override(preset("digits"), [f"steps={steps}"])
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        runs.train(p, Path(folder) / "run", device="cpu", progress=False)
        train_seconds = time.perf_counter() - start
        run = runs.load_run(Path(folder) / "run", device="cpu")
    space = digits_space(seed)
    train, test = (load_digits(split, pad_to=p.data.pad_to) for split in ("train", "test"))
    samples = runs.sample(run, max(SIZES), seed=seed)
    sample_features, train_features = space.features(samples), space.features(train)
    test_features = space.features(test)
    rows = []
    for n in SIZES:
        model_fid = m.frechet_inception_distance(sample_features[:n], test_features)
        floor_fid = m.frechet_inception_distance(train_features[:n], test_features)
        kid = m.kernel_inception_distance(sample_features[:n], test_features, subset_size=n)
        floor_kid = m.kernel_inception_distance(train_features[:n], test_features, subset_size=n)
        pr = m.precision_recall(test_features, sample_features[:n])
        floor_pr = m.precision_recall(test_features, train_features[:n])
        rows.append({
            "n": n, "n_reference": len(test_features), "fid": model_fid.value,
            "fid_floor": floor_fid.value, "kid": kid.mean, "kid_floor": floor_kid.mean,
            "precision": pr.precision, "recall": pr.recall,
            "precision_floor": floor_pr.precision, "recall_floor": floor_pr.recall,
        })  # fmt: skip
    x0 = test[:n_likelihood]
    generator = torch.Generator().manual_seed(seed)
    num_bins = p.training.num_bins
    vlb = vlb_bits_per_dim(run.model, run.diffusion, x0, num_bins=num_bins, generator=generator)
    ode = ode_bits_per_dim(run.model, run.diffusion, x0, num_bins=num_bins, steps=ode_steps,
                           generator=generator)  # fmt: skip
    return {
        "steps": steps,
        "train_seconds": train_seconds,
        "ode_steps": ode_steps,
        "feature_space": space.note,
        "rows": rows,
        "bits_per_dim": {"vlb": [vlb.mean, vlb.sem, vlb.n], "ode": [ode.mean, ode.sem, ode.n]},
    }


def table(result: dict) -> str:
    speed = result["inception"]
    lines = [
        f"Inception (random weights, 32x32 -> 299x299, batch {speed['batch']}, "
        f"{result['threads']} thread(s), shared machine):",
        f"  {speed['macs_per_image'] / 1e9:.2f} G multiply-adds per image; "
        f"{speed['images_per_s']:.2f} images/s; conv floor {speed['floor_images_per_s']:.2f} "
        f"images/s ({speed['conv_macs_per_s'] / 1e9:.1f} G multiply-adds/s)",
        f"Digits model ({result['digits']['steps']} steps), {result['digits']['feature_space']}:",
        "  n     FID (floor)        KID (floor)            precision (floor)  recall (floor)",
    ]
    for r in result["digits"]["rows"]:
        lines.append(
            f"  {r['n']:<5} {r['fid']:7.3f} ({r['fid_floor']:6.3f})  {r['kid']:9.5f} "
            f"({r['kid_floor']:9.5f})  {r['precision']:.3f} ({r['precision_floor']:.3f})"
            f"      {r['recall']:.3f} ({r['recall_floor']:.3f})"
        )
    bpd = result["digits"]["bits_per_dim"]
    lines.append(
        f"  bits/dim on {bpd['vlb'][2]} test digits: VLB {bpd['vlb'][0]:.4f} +- "
        f"{bpd['vlb'][1]:.4f}; ODE (dequantized) {bpd['ode'][0]:.4f} +- {bpd['ode'][1]:.4f}"
    )
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=600, help="training steps of the model")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = {"threads": args.threads, "inception": inception_speed()}
    result["digits"] = digits_metrics(args.steps, args.seed)
    print(table(result))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=float) + "\n")
    return result


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
