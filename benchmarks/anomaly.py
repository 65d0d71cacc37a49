"""Benchmark: anomaly detection with diffusion models against kNN and PCA baselines.

Leave-one-class-out: a model trained on the nine other classes (runs of
restoration_runs.py: digits without 0, digits without 1, Fashion-MNIST without 0; the
full sweep over ten classes does not fit a shared 2-core machine) scores the test images;
the held-out class is the anomaly. AUROC (`minidiff.applications.anomaly.auroc`) of:

- ``ELBO``: bits/dim, the bound estimated from ``ELBO_T`` stratified steps;
- ``recon-z``: the multi-t reconstruction error (Graham et al. 2023) at ``RECON_TS`` x T,
  DDIM with 10 jumps, z-scored on ``VALIDATION`` training images of the normal classes;
- ``AnoDDPM``: the mean of the per-pixel map from t = 0.25 T (Wyatt et al. 2022);
- ``kNN``: mean distance to the 5 nearest normal training images; ``PCA``: the residual
  after ``PCA_COMPONENTS`` components fitted on the normal training images.

Synthetic defects on test digits of classes 1..9 (model ``digits-no0``): an ink blob
(a 2 x 2 square set to full ink) and an erased stroke (the ink of a 3 x 3 window set to
background); pixel AUROC of the AnoDDPM map and of the PCA residual over the pixels of
the defect images, positives being the pixels the defect changed.

The likelihood pathology (Nalisnick et al. 2019): the AUROC of the ELBO score between
the test images and simpler out-of-distribution images (blank backgrounds; for the
Fashion-MNIST model, the 8x8 digits enlarged to 28 x 28). Below 0.5 the model gives the
simpler images a higher likelihood.

Run:  .venv/bin/python benchmarks/anomaly.py [--runs DIR] [--n 300]  (one CPU thread)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.restoration_runs import RUNS_DIR, images  # noqa: E402
from minidiff.applications import anomaly  # noqa: E402
from minidiff.runs.restoration import quantise  # noqa: E402

ELBO_T = 20
RECON_TS = (0.1, 0.25, 0.5)
MAP_T = 0.25
VALIDATION = 100
PCA_COMPONENTS = {"digits": 10, "fashion-mnist": 40}
RUNS = (
    ("digits-no0", "digits", 0),
    ("digits-no1", "digits", 1),
    ("fashion-mnist-no0", "fashion-mnist", 0),
)


def diffusion_scores(run, x: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """ELBO bits/dim, the raw reconstruction errors (N, K) and the AnoDDPM map's mean."""
    g = torch.Generator().manual_seed(seed)
    T, num_bins = run.diffusion.T, run.preset.training.num_bins
    kw = dict(steps=10, clip_x0=1.0, generator=g)
    ts = [round(f * T) for f in RECON_TS]
    out = {
        "ELBO": torch.cat(
            [
                anomaly.elbo_bits_per_dim(
                    run.model, run.diffusion, c, num_t=ELBO_T, num_bins=num_bins, generator=g
                )
                for c in x.split(256)
            ]
        ),
        "errors": torch.cat(
            [
                anomaly.reconstruction_errors(run.model, run.diffusion, c, ts, **kw)
                for c in x.split(256)
            ]
        ),
    }
    maps = torch.cat(
        [
            anomaly.anoddpm_map(run.model, run.diffusion, c, round(MAP_T * T), **kw)[0]
            for c in x.split(256)
        ]
    )
    out["map"], out["AnoDDPM"] = maps, maps.mean((1, 2))
    return out


def class_table(run, dataset: str, held_out: int, n: int) -> list[float]:
    """AUROC of each score for one held-out class; prints one row."""
    train, train_y = images(dataset, "train")
    normal_train = train[train_y != held_out]
    test, test_y = images(dataset, "test")
    g = torch.Generator().manual_seed(held_out)
    normal = test[test_y != held_out][
        torch.randperm(int((test_y != held_out).sum()), generator=g)[:n]
    ]
    odd = test[test_y == held_out][:n]
    validation = normal_train[torch.randperm(len(normal_train), generator=g)[:VALIDATION]]
    zscores = anomaly.fit_zscores(diffusion_scores(run, validation)["errors"])
    scored = [diffusion_scores(run, v) for v in (normal, odd)]
    for s in scored:
        s["recon-z"] = anomaly.multi_t_score(s["errors"], zscores)
    pca = anomaly.fit_pca(normal_train, PCA_COMPONENTS[dataset])
    baselines = [
        {
            "kNN": anomaly.knn_scores(normal_train, v, k=5),
            "PCA": anomaly.pca_residual(pca, v).flatten(1).sum(1),
        }
        for v in (normal, odd)
    ]
    values = [anomaly.auroc(scored[0][k], scored[1][k]) for k in ("ELBO", "recon-z", "AnoDDPM")]
    values += [anomaly.auroc(baselines[0][k], baselines[1][k]) for k in ("kNN", "PCA")]
    print(
        f"{dataset:<15}{held_out:>6}{len(normal):>8}{len(odd):>6}"
        + "".join(f"{v:>9.3f}" for v in values),
        flush=True,
    )
    return values


def defects(x: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    """x with a synthetic defect per image: ``blob`` sets a random 2 x 2 square to ink
    (+1); ``erase`` sets the pixels of a random 3 x 3 window centred on an ink pixel to
    background (-1)."""
    y = x.clone()
    size = x.shape[-1]
    for i in range(len(x)):
        if kind == "blob":
            r, c = torch.randint(0, size - 1, (2,), generator=generator).tolist()
            y[i, :, r : r + 2, c : c + 2] = 1.0
        else:
            ink = (x[i, 0] > 0).nonzero()
            r, c = ink[torch.randint(len(ink), (1,), generator=generator)].flatten().tolist()
            y[i, :, max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2] = -1.0
    return y


def pixel_table(run, n: int) -> None:
    """Pixel AUROC of the AnoDDPM map and the PCA residual on synthetic defects."""
    train, train_y = images("digits", "train")
    test, test_y = images("digits", "test")
    x = test[test_y != 0][:n]
    pca = anomaly.fit_pca(train[train_y != 0], PCA_COMPONENTS["digits"])
    for kind in ("blob", "erase"):
        y = defects(x, kind, torch.Generator().manual_seed(1))
        changed = (y != x)[:, 0].flatten()
        amap = diffusion_scores(run, y)["map"].flatten()
        residual = anomaly.pca_residual(pca, y)[:, 0].flatten()
        row = [anomaly.auroc(m[~changed], m[changed]) for m in (amap, residual)]
        print(
            f"{kind:<8}{len(x):>6}{int(changed.sum()):>9}{row[0]:>10.3f}{row[1]:>8.3f}", flush=True
        )


def pathology_row(run, dataset: str, n: int) -> None:
    """ELBO AUROC of test images (normal) vs simpler images (the 'anomalies')."""
    test, test_y = images(dataset, "test")
    x = test[test_y != 0][:n]
    size = x.shape[-1]
    simple = {"blank": torch.full((n, 1, size, size), -1.0)}
    if dataset == "fashion-mnist":
        digits, _ = images("digits", "test")
        big = torch.nn.functional.interpolate(digits[:n], size=(24, 24), mode="nearest")
        big = torch.nn.functional.pad(big, (2, 2, 2, 2), value=-1.0)
        simple["digits 28x28"] = quantise(big, 256)  # on the data's 256 levels
    base = diffusion_scores(run, x)["ELBO"]
    for name, images_ in simple.items():
        other = diffusion_scores(run, images_)["ELBO"]
        print(
            f"{dataset:<15}{name:<14}{float(base.mean()):>10.3f}{float(other.mean()):>10.3f}"
            f"{anomaly.auroc(base, other):>8.3f}",
            flush=True,
        )


def main(
    runs: Path = RUNS_DIR, n: int = 300, pixel_n: int = 100, only: tuple[str, ...] = ()
) -> None:
    from minidiff import runs as minidiff_runs

    torch.set_num_threads(1)
    print(
        f"anomaly benchmark: 1 CPU thread on a shared 2-core machine; ELBO from {ELBO_T} "
        f"steps, recon at {RECON_TS} x T, AnoDDPM at {MAP_T} T, kNN k=5, PCA components "
        f"{PCA_COMPONENTS}"
    )
    print(
        f"{'data':<15}{'held':>6}{'normal':>8}{'odd':>6}{'ELBO':>9}{'recon-z':>9}"
        f"{'AnoDDPM':>9}{'kNN':>9}{'PCA':>9}"
    )
    loaded = {}
    for name, dataset, held_out in RUNS:
        if (runs / name / "checkpoints").is_dir() and (not only or name in only):
            loaded[name] = minidiff_runs.load_run(runs / name, device="cpu")
            class_table(loaded[name], dataset, held_out, n)
    print(
        f"pixel AUROC on synthetic defects (digits-no0)\n{'defect':<8}{'images':>6}"
        f"{'pixels':>9}{'AnoDDPM':>10}{'PCA':>8}"
    )
    if "digits-no0" in loaded:
        pixel_table(loaded["digits-no0"], pixel_n)
    print(
        f"likelihood pathology: ELBO bits/dim\n{'data':<15}{'simpler':<14}{'test':>10}"
        f"{'simpler':>10}{'AUROC':>8}"
    )
    for name, dataset in (("digits-no0", "digits"), ("fashion-mnist-no0", "fashion-mnist")):
        if name in loaded:
            pathology_row(loaded[name], dataset, min(n, 100))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=RUNS_DIR)
    parser.add_argument("--n", type=int, default=300, help="test images per side (at most)")
    parser.add_argument("--pixel-n", type=int, default=100)
    parser.add_argument("--only", nargs="*", default=(), help="run names (default: all)")
    args = parser.parse_args()
    main(args.runs, args.n, args.pixel_n, tuple(args.only))
