"""One training run of a preset: its folder, its data, its model and its samples.

`train(p, out_dir)` trains preset ``p`` (`minidiff.configs`) with the `Trainer` of
`minidiff.training` and keeps everything in one folder::

    out_dir/
      run.json                the preset, as JSON (written atomically at the start)
      metrics.jsonl           one line every p.training.log_every steps
      checkpoints/step_N/     every p.training.checkpoint_every steps and at the end; each
                              also stores the preset and the schedule's betas, so a
                              checkpoint alone rebuilds its model and checks its process
      samples/step_N.png      every p.training.sample_every steps: a grid drawn from the EMA
                              with the same seed each time, so successive grids compare

`load_run(path)` rebuilds the network from the preset stored in a checkpoint and loads
its EMA weights (Ho et al. 2020, Appendix B, sample from the EMA); `sample(run, n)` draws
from it with the ancestral sampler (Algorithm 2) or DDIM (Song et al. 2021, eq. 12), and
`save_image_grid` writes the samples as one PNG, `save_loss_plot` the training curve.
Text runs sample strings with `sample_run_text` (infilling a prompt), audio runs write
their waveforms with `save_audio` (`minidiff.runs.media`).

A folder holds one run: `train` refuses a folder that holds another one, and continues
its own with ``resume=True``; one trainer at a time holds the folder (`lock_run_folder`).
Under ``torchrun`` only rank 0 writes.

The pipelines of the command line live here too: `run_toy` (the NumPy toy of ``minidiff
toy``), `run_demo` (``minidiff demo``), `minidiff.runs.evaluate` (``minidiff evaluate``)
and `estimate_step_seconds` (the time estimate of ``minidiff train --dry-run``).

The package loads its modules on first use (PEP 562), so that ``minidiff.runs.toy``, the
NumPy toy run, does not import torch; every name below is also ``minidiff.runs.NAME``.
"""

from __future__ import annotations

import importlib
from typing import Any

# each public name and the module that defines it
_MODULES = {
    "data": ("SEQUENCE_DATASETS", "TONE_CLIPS", "TOY_POINTS", "check_training_data",
             "new_model", "resolve_device", "training_data"),
    "demo": ("DEMO_DATASETS", "run_demo", "run_digits"),
    "evaluate": ("EvaluateSettings",),
    "grids": ("image_grid", "save_image_grid"),
    "lock": ("RunLockedError", "lock_run_folder"),
    "media": ("TEXT_KINDS", "sample_run_text", "save_audio"),
    "plots": ("read_metrics", "save_loss_plot"),
    "sampling": ("Run", "caption_tokens", "class_labels", "grid_condition", "load_run",
                 "sample"),
    "store": ("RunError", "check_run_folder", "preset_from_dict", "preset_to_dict",
              "stored_preset"),
    "timing": ("estimate_step_seconds",),
    "toy": ("TOY_SAMPLERS", "ToySettings", "run_toy"),
    "training": ("GRID_SAMPLES", "train"),
}  # fmt: skip
_SOURCE = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [  # the names of _MODULES (tests/test_runs.py holds them together)
    "DEMO_DATASETS",
    "EvaluateSettings",
    "GRID_SAMPLES",
    "Run",
    "RunError",
    "RunLockedError",
    "SEQUENCE_DATASETS",
    "TEXT_KINDS",
    "TONE_CLIPS",
    "TOY_POINTS",
    "TOY_SAMPLERS",
    "ToySettings",
    "caption_tokens",
    "check_run_folder",
    "class_labels",
    "check_training_data",
    "estimate_step_seconds",
    "grid_condition",
    "image_grid",
    "load_run",
    "lock_run_folder",
    "new_model",
    "preset_from_dict",
    "preset_to_dict",
    "read_metrics",
    "resolve_device",
    "run_demo",
    "run_digits",
    "run_toy",
    "sample",
    "sample_run_text",
    "save_audio",
    "save_image_grid",
    "save_loss_plot",
    "stored_preset",
    "train",
    "training_data",
]


def __getattr__(name: str) -> Any:
    if name in _SOURCE:
        return getattr(importlib.import_module(f"minidiff.runs.{_SOURCE[name]}"), name)
    raise AttributeError(f"module 'minidiff.runs' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
