"""Benchmark: what the SHA-256 content check costs for a checkpoint of the CIFAR-10 model.

1. builds the U-Net of the ``cifar10`` preset (`minidiff.configs.preset("cifar10")`), its
   EMA and an AdamW whose moments are filled by one step on zero gradients, so that the
   checkpoint has its full size (weights, EMA weights, two moments per weight);
2. saves it with `save_checkpoint` ``--repeats`` times, timing the save and, apart, the
   SHA-256 of its files' bytes (what the completion marker records);
3. loads it with `load_checkpoint` (EMA and optimizer too) ``--repeats`` times, timing
   the load and, apart, reading the files and checking their SHA-256 (what a load adds).

Reports the median of each time, the bytes hashed and the hashing throughput, on one
thread. Run:  .venv/bin/python benchmarks/checkpoint_hashing.py [--threads 1]
Writes benchmarks/results/checkpoint_hashing.json.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `benchmarks` as a package

from benchmarks.toy2d import write_results  # noqa: E402
from minidiff.configs import build_model, preset  # noqa: E402
from minidiff.training import EMA, load_checkpoint, save_checkpoint  # noqa: E402
from minidiff.training.checkpoint_files import read_file, read_marker  # noqa: E402


def _parts(p):
    model = build_model(p, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=p.training.lr)
    for parameter in model.parameters():
        parameter.grad = torch.zeros_like(parameter)
    optimizer.step()  # fills exp_avg and exp_avg_sq: the state has its full size
    return model, EMA(model, decay=p.training.ema_decay), optimizer


def _median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(threads: int = 1, repeats: int = 3, out: Path | None = None) -> dict:
    torch.set_num_threads(threads)
    p = preset("cifar10")
    model, ema, optimizer = _parts(p)
    parameters = sum(x.numel() for x in model.parameters())
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        step = iter(range(1, 10**6))

        def save():
            return save_checkpoint(directory, model=model, ema=ema, optimizer=optimizer,
                                   step=next(step), keep_last=1)  # fmt: skip

        save_s = _median_seconds(save, repeats)
        folder = save()
        files = {f.name: f.read_bytes() for f in folder.iterdir() if f.name != "checkpoint.json"}
        total = sum(len(data) for data in files.values())
        hash_s = _median_seconds(lambda: [hashlib.sha256(d).digest() for d in files.values()],
                                 repeats)  # fmt: skip
        marker = read_marker(folder)
        verify_s = _median_seconds(lambda: [read_file(folder, n, marker) for n in files], repeats)
        load_s = _median_seconds(
            lambda: load_checkpoint(folder, model=model, ema=ema, optimizer=optimizer), repeats
        )
    row = {
        "parameters": parameters,
        "files": {name: len(data) for name, data in files.items()},
        "bytes": total,
        "save_s": save_s,
        "sha256_s": hash_s,
        "sha256_MB_per_s": total / hash_s / 1e6,
        "read_and_verify_s": verify_s,
        "load_s": load_s,
        "sha256_share_of_save": hash_s / save_s,
        "sha256_share_of_load": hash_s / load_s,
    }
    print(f"cifar10 U-Net: {parameters:,} parameters; checkpoint {total / 1e6:.1f} MB "
          f"({', '.join(f'{n} {b / 1e6:.1f} MB' for n, b in row['files'].items())}); "
          f"{threads} thread(s), median of {repeats}")  # fmt: skip
    print(f"save {save_s:.3f} s, of which SHA-256 {hash_s:.3f} s ({row['sha256_MB_per_s']:.0f} "
          f"MB/s, {100 * row['sha256_share_of_save']:.0f}% of the save)")  # fmt: skip
    print(f"load {load_s:.3f} s, of which reading and verifying {verify_s:.3f} s "
          f"(SHA-256 alone {100 * row['sha256_share_of_load']:.0f}% of the load)")  # fmt: skip
    out = out or Path(__file__).parent / "results" / "checkpoint_hashing.json"
    write_results(out, {"threads": threads, "repeats": repeats}, [row], torch=torch.__version__)
    return row


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    main(**vars(parser.parse_args()))
