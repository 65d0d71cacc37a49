"""Benchmark: character diffusion on the King James Bible against n-gram baselines.

1. the add-k unigram to 4-gram models (`minidiff.discrete.ngram`, k chosen on the
   validation split) and gzip -9, in bits per character of the held-out test split
   (the last 5% of the text);
2. trains the ``text-kjv`` preset (`minidiff.configs`, changed with ``--set`` as on the
   command line) with `minidiff.runs.train`, the `Trainer` of every preset, on one thread
   until a CPU-time budget (or a wall-clock cap) is spent, and scores the test split with
   the NELBO of the EMA weights: an UPPER BOUND on the model's bits per character, each
   window of ``model.length`` characters scored alone;
3. draws two samples and one infilling.

Target (issue "Beyond images"): the absorbing model beats the trigram on the test split
within 30 minutes of training on 2 cores. On a shared machine the wall time overstates the
work done, so the run stops on a CPU-time budget (``--cpu-minutes``); both times are
printed and stored.

Run:  .venv/bin/python benchmarks/text.py [--cpu-minutes 25] [--minutes 60]
      [--set model.network=transformer --set training.lr=5e-4 ...] [--name NAME]
Writes benchmarks/results/text_NAME.json (NAME defaults to DIFFUSION_NETWORK) and keeps
the run folder benchmarks/results/runs/text_NAME (sample from it with minidiff sample).
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `benchmarks` as a package

from benchmarks.toy2d import write_results  # noqa: E402
from minidiff import runs  # noqa: E402
from minidiff.configs import override, preset  # noqa: E402
from minidiff.data.text import TEXT_SPLITS, VOCAB, encode, load_kjv  # noqa: E402
from minidiff.discrete import (  # noqa: E402
    best_add_k,
    ngram_bits_per_char,
    sample_text,
    text_bits_per_char,
)
from minidiff.training.budget import Budget  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_MINUTES = 30.0
INFILL_PROMPT = "In the beginning ____________ the heaven and the earth. And the ______ was"


def baselines(splits: dict[str, torch.Tensor]) -> list[dict]:
    """Bits per character of the test split under add-k n-grams and gzip -9."""
    train, validation, test = (splits[s].numpy() for s in TEXT_SPLITS)
    rows = []
    for order, name in zip(range(1, 5), ("unigram", "bigram", "trigram", "4-gram"), strict=True):
        k = best_add_k(train, validation, order, len(VOCAB))
        bpc = ngram_bits_per_char(train, test, order, len(VOCAB), k)
        rows.append({"model": f"{name} (add-k, k={k})", "bits_per_char": bpc})
    raw = load_kjv("test").encode()
    rows.append({"model": "gzip -9", "bits_per_char": 8 * len(gzip.compress(raw, 9)) / len(raw)})
    return rows


def train_and_score(p, folder: Path, budget: Budget, test: torch.Tensor) -> tuple[dict, dict]:
    """Train ``p`` into ``folder`` until ``budget`` is spent; the row of its bound on
    ``test`` and its samples."""
    trainer = runs.train(p, folder, progress=False, stop=budget)
    start = time.perf_counter()
    length = p.model.length
    with trainer.ema_model() as network:
        bpc, se = text_bits_per_char(network, trainer.diffusion, test, length, repeats=2)
        evaluate_seconds = time.perf_counter() - start
        generator = torch.Generator().manual_seed(0)
        samples = sample_text(network, trainer.diffusion, 2, length, generator=generator)
        infill = []
        if p.diffusion_kind == "absorbing":
            infill = sample_text(network, trainer.diffusion, 1, len(INFILL_PROMPT),
                                 prompt=INFILL_PROMPT, generator=generator)  # fmt: skip
    parameters = sum(q.numel() for q in trainer.model.parameters())
    row = {
        "model": f"{p.diffusion_kind} diffusion, {p.model.network} ({parameters:,} params), "
        "NELBO bound",
        "bits_per_char": bpc,
        "standard_error": se,
        "steps": trainer.step,
        "train_seconds": budget.seconds,
        "train_cpu_seconds": budget.cpu_seconds,
        "evaluate_seconds": evaluate_seconds,
    }
    return row, {"samples": samples, "infill": infill, "history": runs.read_metrics(folder)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu-minutes", type=float, default=25.0, help="CPU-time budget")
    parser.add_argument("--minutes", type=float, default=60.0, help="wall-clock cap")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="override a setting of the text-kjv preset (repeatable)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    p = override(preset("text-kjv"), ["training.steps=1000000000", *args.set])
    name = args.name or f"{p.diffusion_kind}_{p.model.network}"
    folder = RESULTS / "runs" / f"text_{name}"
    shutil.rmtree(folder, ignore_errors=True)  # a fresh run each time
    splits = {s: encode(load_kjv(s)) for s in TEXT_SPLITS}
    rows = baselines(splits)
    budget = Budget(max_seconds=60.0 * args.minutes, max_cpu_seconds=60.0 * args.cpu_minutes)
    row, extra = train_and_score(p, folder, budget, splits["test"])
    rows.append(row)

    print(f"\n{'model':<62}{'bits/char':>10}")
    print("-" * 72)
    for r in rows:
        se_text = f" +- {r['standard_error']:.3f}" if "standard_error" in r else ""
        print(f"{r['model']:<62}{r['bits_per_char']:>10.3f}{se_text}")
    trigram = rows[2]["bits_per_char"]
    in_time = min(row["train_seconds"], row["train_cpu_seconds"]) <= 60 * TARGET_MINUTES
    verdict = "PASS" if row["bits_per_char"] < trigram and in_time else "FAIL"
    print(
        f"\ntraining: {row['steps']} steps, wall {row['train_seconds']:.0f} s, CPU "
        f"{row['train_cpu_seconds']:.0f} s on {args.threads} thread(s), machine shared"
    )
    print(f"target: bound < trigram ({trigram:.3f}) within {TARGET_MINUTES:.0f} min: {verdict}")
    for text in extra["samples"]:
        print(f"\nsample:\n{text}")
    for text in extra["infill"]:
        print(f"\ninfill of {INFILL_PROMPT!r}:\n{text}")
    settings = {"preset": runs.preset_to_dict(p), "overrides": args.set,
                "threads": args.threads, "machine_shared": True}  # fmt: skip
    result = {"rows": rows, **extra}
    write_results(RESULTS / f"text_{name}.json", settings, [result], torch=torch.__version__)
    return result


if __name__ == "__main__":
    main()
