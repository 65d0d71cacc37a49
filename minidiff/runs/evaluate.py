"""Evaluate a trained run: sample, embed, compare with held-out data, and measure likelihood.

`evaluate(settings)` is the pipeline behind ``minidiff evaluate``:

1. check every setting against the run (`check_settings`) before any work: the metrics,
   n against the feature dimension, the Inception weights for CIFAR-10, and that the
   reference data set is the one the model was trained on;
2. draw n samples from the run's EMA weights (`minidiff.runs.sample`, with a progress bar);
3. embed the samples and the reference data in a feature space (`minidiff.evaluation.judge`:
   the digits classifier, the Fashion-MNIST judge or the FID Inception); the reference
   features are cached under `cache_dir` keyed by the space, the data's SHA-256 and the
   settings that made them;
4. compute each metric next to its floor: the same metric between n training images and
   the held-out test images, what a model that reproduces the data would score at this n;
5. bits/dim on held-out test images by the VLB (``bpd``) and the probability-flow ODE
   (``nll``, Hutchinson-Skilling divergence, uniform dequantization).

A conditional digits run (``digits-cond``, ``digits-caption``) is sampled conditionally:
the classes 0..9 in turn (for a caption run, the caption "the digit {d}"), guided with
the preset's ``sampling.guidance``; ``accuracy`` (added by default for such a run) is the
share of samples the digits classifier assigns to the class asked for, per class and in
all, next to the classifier's accuracy on the real test digits. Likelihoods are those of
the unconditional model (null label, empty caption).

Every figure in the returned record carries the sample sizes it was computed from.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from minidiff.evaluation import metrics as m

__all__ = [
    "METRICS",
    "REFERENCES",
    "EvaluateSettings",
    "check_settings",
    "conditional_samples",
    "evaluate",
    "held_out_data",
]

METRICS = ("fid", "is", "kid", "pr", "bpd", "nll", "accuracy")
REFERENCES = ("digits", "fashion-mnist", "cifar10")
FEATURE_METRICS = ("fid", "is", "kid", "pr", "accuracy")
IS_SPLITS = 10
PR_K = 3
MAX_LIKELIHOOD_EXAMPLES = 256  # held-out images for bpd / nll
ODE_STEPS = 100  # Heun steps of the ODE likelihood
_DATASET_ALIASES = {"fashion_mnist": "fashion-mnist", "fashion-mnist": "fashion-mnist"}


@dataclass(frozen=True)
class EvaluateSettings:
    """The settings of one evaluation (the fields of ``minidiff evaluate``)."""

    checkpoint: str
    metrics: tuple[str, ...] = ("fid", "is", "kid", "pr", "bpd")
    n: int = 1000
    sampler: str | None = None
    steps: int | None = None
    reference: str | None = None  # None: the run's data set
    inception_weights: str | None = None
    seed: int = 0
    data_root: str = "data"
    device: str | None = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)


def _dataset(run) -> str:
    name = run.preset.data.dataset
    return _DATASET_ALIASES.get(name, name)


def parse_metrics(text: str) -> tuple[str, ...]:
    """``"fid,is"`` -> ("fid", "is"); raises ValueError naming an unknown metric."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in METRICS]
    if not names or unknown:
        raise ValueError(f"--metrics must be a comma-separated subset of {METRICS}, got {text!r}")
    return names


def feature_dim(reference: str) -> int:
    """The feature dimension of the space used for ``reference``."""
    return {"digits": 64, "fashion-mnist": 128, "cifar10": 2048}[reference]


def check_settings(settings: EvaluateSettings, run) -> str:
    """Check ``settings`` against the loaded ``run``; return the reference data set.

    Raises:
        ValueError: unknown metric, sampler or reference; n too small for a metric; a
            reference that is not the model's data; missing Inception weights.
    """
    from minidiff.configs import SAMPLERS

    unknown = [name for name in settings.metrics if name not in METRICS]
    if unknown or not settings.metrics:
        raise ValueError(f"metrics must be a subset of {METRICS}, got {settings.metrics!r}")
    dataset = _dataset(run)
    reference = settings.reference or dataset
    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {REFERENCES}, got {reference!r} "
                         f"(the model's data: {dataset!r})")  # fmt: skip
    if reference != dataset:
        raise ValueError(f"reference {reference!r} does not match the model's data {dataset!r}")
    if settings.sampler is not None and settings.sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {settings.sampler!r}")
    if settings.steps is not None and not 1 <= settings.steps <= run.preset.diffusion.T:
        T = run.preset.diffusion.T
        raise ValueError(f"steps must be in 1..T = {T}, got {settings.steps!r}")
    n, dim = settings.n, feature_dim(reference)
    if "fid" in settings.metrics and n <= dim:
        raise ValueError(f"n = {n} is too small for FID in {dim} features: need n > {dim}")
    if "is" in settings.metrics and n < IS_SPLITS:
        raise ValueError(f"n = {n} is too small for IS in {IS_SPLITS} splits")
    if ("pr" in settings.metrics or "kid" in settings.metrics) and n < PR_K + 1:
        raise ValueError(f"n = {n} is too small for KID / precision-recall: need n >= {PR_K + 1}")
    if "accuracy" in settings.metrics and (reference != "digits" or not _conditional(run)):
        raise ValueError(f"accuracy needs a conditional digits run (digits-cond, "
                         f"digits-caption), got preset {run.preset.name!r}")  # fmt: skip
    if reference == "cifar10" and set(settings.metrics) & set(FEATURE_METRICS):
        from minidiff.evaluation.inception_weights import inception_weights_path

        inception_weights_path(settings.inception_weights)  # raises InceptionWeightsError
    return reference


def _conditional(run) -> bool:
    from minidiff.applications.text import CaptionUNetConfig

    return run.preset.model.num_classes is not None or isinstance(run.preset.model,
                                                                  CaptionUNetConfig)


def conditional_samples(
    run, settings: EvaluateSettings, progress: bool = False
) -> tuple[torch.Tensor, np.ndarray]:
    """``settings.n`` samples of a conditional run, the classes 0..C-1 in turn (a caption
    run: the caption "the digit {d}"), guided with the preset's scale; and the classes."""
    from minidiff.runs.sampling import GRID_CAPTION, caption_tokens, sample

    p, n = run.preset, settings.n
    classes = p.model.num_classes or 10
    labels = torch.arange(n) % classes  # (n,)
    condition = labels
    if p.model.num_classes is None:  # a caption run
        texts = [GRID_CAPTION.format(d=int(k)) for k in labels]
        condition = caption_tokens(p, texts, n)
    x = sample(run, n, labels=condition, sampler=settings.sampler, steps=settings.steps,
               seed=settings.seed, progress=progress)  # fmt: skip
    return x.cpu(), labels.numpy()


def _accuracy(logits: np.ndarray, labels: np.ndarray, test_logits: np.ndarray,
              guidance: float) -> dict[str, Any]:  # fmt: skip
    """The share of samples classified as asked, per class and in all, and the floor: the
    classifier's accuracy on the real test digits."""
    from minidiff.data import load_digits

    predicted = logits.argmax(axis=1)
    per_class = [float(np.mean(predicted[labels == k] == k)) for k in np.unique(labels)]
    test_labels = load_digits("test", labels=True)[1].numpy()
    floor = float(np.mean(test_logits.argmax(axis=1) == test_labels))
    return {"value": float(np.mean(predicted == labels)), "per_class": per_class,
            "floor": floor, "n": len(labels), "guidance": guidance}  # fmt: skip


def held_out_data(run, reference: str, root: str = "data") -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) images in the model's range and shape (padding as the preset's)."""
    p = run.preset
    if reference == "digits":
        from minidiff.data import load_digits

        return tuple(load_digits(split, pad_to=p.data.pad_to) for split in ("train", "test"))
    if reference == "fashion-mnist":
        from minidiff.data.fashion_mnist import load_fashion_mnist

        pad = ((p.data.pad_to or 28) - 28) // 2
        return tuple(torch.nn.functional.pad(load_fashion_mnist(s), (pad,) * 4, value=-1.0)
                     for s in ("train", "test"))  # fmt: skip
    from minidiff.data import load_cifar10, uint8_to_model_range

    return tuple(uint8_to_model_range(torch.from_numpy(load_cifar10(root, s)[0]))
                 for s in ("train", "test"))  # fmt: skip


def _space(reference: str, settings: EvaluateSettings, progress: bool):
    from minidiff.evaluation import judge

    if reference == "digits":
        return judge.digits_space()
    if reference == "fashion-mnist":
        return judge.fashion_space(progress=progress)
    return judge.inception_space(settings.inception_weights)


def _reference_features(space, reference: str, train: torch.Tensor, test: torch.Tensor,
                        n_train: int) -> dict[str, np.ndarray]:  # fmt: skip
    """Features and logits of train[:n_train] and the test split, cached by their settings
    and the SHA-256 of the image data."""
    from minidiff.atomic import write_file
    from minidiff.data.fashion_mnist import cache_dir

    digest = hashlib.sha256()
    for images in (train[:n_train], test):
        digest.update(images.contiguous().numpy().tobytes())
    key = {"space": space.name, "note": space.note, "reference": reference, "n_train": n_train,
           "data_sha256": digest.hexdigest()}  # fmt: skip
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    path = cache_dir() / "reference-statistics" / f"{name}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as stored:
            return {k: stored[k] for k in stored.files}
    arrays = {
        "train_features": space.features(train[:n_train]),
        "test_features": space.features(test),
        "train_logits": space.logits(train[:n_train]),
        "test_logits": space.logits(test),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, lambda file: np.savez(file, **arrays))
    return arrays


def _feature_metrics(names, features, logits, ref) -> dict[str, dict[str, Any]]:
    """Each metric of the samples and of its floor (train[:n] vs test)."""
    out: dict[str, dict[str, Any]] = {}
    test, floor_features = ref["test_features"], ref["train_features"][: len(features)]
    if "fid" in names:
        model, floor = m.frechet_inception_distance(features, test), m.frechet_inception_distance(
            floor_features, test)  # fmt: skip
        out["fid"] = {"value": model.value, "floor": floor.value, "n": model.n1,
                      "n_reference": model.n2, "dim": model.dim}  # fmt: skip
    if "kid" in names:
        size = min(1000, len(features))
        model = m.kernel_inception_distance(features, test, subset_size=size)
        floor = m.kernel_inception_distance(floor_features, test, subset_size=size)
        out["kid"] = {"value": model.mean, "std": model.std, "floor": floor.mean, "n": model.n1,
                      "n_reference": model.n2, "subset_size": model.subset_size}  # fmt: skip
    if "pr" in names:
        model, floor = m.precision_recall(test, features), m.precision_recall(test, floor_features)
        out["pr"] = {"precision": model.precision, "recall": model.recall,
                     "floor_precision": floor.precision, "floor_recall": floor.recall,
                     "n": model.n_fake, "n_reference": model.n_real, "k": model.k}  # fmt: skip
    if "is" in names:
        model = m.inception_score(logits, splits=IS_SPLITS)
        floor = m.inception_score(ref["test_logits"][: len(logits)], splits=IS_SPLITS)
        out["is"] = {"value": model.mean, "std": model.std, "floor": floor.mean, "n": model.n,
                     "splits": model.splits}  # fmt: skip
    return out


def _likelihoods(names, run, test: torch.Tensor, seed: int) -> dict[str, dict[str, Any]]:
    from minidiff.evaluation.likelihood import ode_bits_per_dim, vlb_bits_per_dim

    x0 = test[:MAX_LIKELIHOOD_EXAMPLES].to(next(run.model.parameters()).device)
    num_bins = run.preset.training.num_bins
    out = {}
    with torch.no_grad():
        if "bpd" in names:
            result = vlb_bits_per_dim(run.model, run.diffusion, x0, num_bins=num_bins,
                                      generator=torch.Generator().manual_seed(seed))  # fmt: skip
            out["bpd"] = {"value": result.mean, "sem": result.sem, "n": result.n,
                          "method": "vlb", "num_bins": num_bins}  # fmt: skip
    if "nll" in names:
        steps = min(ODE_STEPS, run.diffusion.T - 1)
        result = ode_bits_per_dim(run.model, run.diffusion, x0, num_bins=num_bins, steps=steps,
                                  generator=torch.Generator().manual_seed(seed))  # fmt: skip
        out["nll"] = {"value": result.mean, "sem": result.sem, "n": result.n,
                      "method": "ode-hutchinson", "ode_steps": steps,
                      "num_bins": num_bins}  # fmt: skip
    return out


def evaluate(settings: EvaluateSettings, *, run=None, progress: bool = False) -> dict[str, Any]:
    """Run the pipeline (module docstring); returns a JSON-ready record with every setting,
    the feature space and, per metric, its value, its floor and its sample sizes."""
    from minidiff.runs import load_run, sample

    run = load_run(settings.checkpoint, device=settings.device) if run is None else run
    reference = check_settings(settings, run)
    names = settings.metrics
    if _conditional(run) and reference == "digits" and set(names) & set(FEATURE_METRICS):
        names = (*names, "accuracy") if "accuracy" not in names else names
    train, test = held_out_data(run, reference, settings.data_root)
    record: dict[str, Any] = {
        "settings": {k: v for k, v in asdict(settings).items() if k != "extra"}
        | {"reference": reference, "checkpoint_step": run.step, "preset": run.preset.name},
        "n": settings.n,
        "metrics": {},
    }
    if set(names) & set(FEATURE_METRICS):
        space = _space(reference, settings, progress)
        if _conditional(run):
            samples, labels = conditional_samples(run, settings, progress)
        else:
            samples = sample(run, settings.n, sampler=settings.sampler, steps=settings.steps,
                             seed=settings.seed, progress=progress).cpu()  # fmt: skip
        ref = _reference_features(space, reference, train, test, min(settings.n, len(train)))
        record["feature_space"] = space.note
        logits = space.logits(samples)
        record["metrics"] |= _feature_metrics(names, space.features(samples), logits, ref)
        if "accuracy" in names:
            record["metrics"]["accuracy"] = _accuracy(logits, labels, ref["test_logits"],
                                                      run.preset.sampling.guidance)  # fmt: skip
    record["metrics"] |= _likelihoods(names, run, test, settings.seed)
    return record


def environment_weights() -> str | None:
    """The weights path named by ``MINIDIFF_INCEPTION_WEIGHTS``, if any."""
    return os.environ.get("MINIDIFF_INCEPTION_WEIGHTS") or None


def format_table(record: dict[str, Any]) -> str:
    """The record's metrics as an aligned text table: metric, value, floor, n."""
    rows = [("metric", "value", "floor (train vs test)", "n")]
    for name, result in record["metrics"].items():
        if name == "pr":
            rows.append(("precision", f"{result['precision']:.4f}",
                         f"{result['floor_precision']:.4f}", str(result["n"])))  # fmt: skip
            rows.append(("recall", f"{result['recall']:.4f}", f"{result['floor_recall']:.4f}",
                         str(result["n"])))  # fmt: skip
        else:
            floor = f"{result['floor']:.4f}" if "floor" in result else "-"
            label = {"bpd": "bits/dim (VLB)", "nll": "bits/dim (ODE)"}.get(name, name)
            if name == "accuracy":
                label = f"class accuracy (s = {result['guidance']:g})"
            rows.append((label, f"{result['value']:.4f}", floor, str(result["n"])))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    if "accuracy" in record["metrics"]:
        per_class = record["metrics"]["accuracy"]["per_class"]
        lines.append("accuracy per class  " + " ".join(f"{a:.2f}" for a in per_class))
    return "\n".join(lines)
