"""One training run of a preset: its folder, its data, its model and its samples.

`train(p, out_dir)` trains preset ``p`` (`minidiff.configs`) with the `Trainer` of
`minidiff.training` and keeps everything in one folder::

    out_dir/
      run.json                the preset, as JSON (written atomically at the start)
      metrics.jsonl           one line every p.log_every steps
      checkpoints/step_N/     every p.checkpoint_every steps and at the end; each one also
                              stores the preset, so a checkpoint alone rebuilds its model
      samples/step_N.png      every p.sample_every steps: a grid drawn from the EMA weights
                              with the same seed each time, so successive grids compare

`load_run(path)` rebuilds the network from the preset stored in a checkpoint and loads
its EMA weights (Ho et al. 2020, Appendix B, sample from the EMA); `sample(run, n)` draws
from it with the ancestral sampler (Algorithm 2) or DDIM (Song et al. 2021, eq. 12), and
`save_image_grid` writes the samples as one PNG, `save_loss_plot` the training curve.

A folder holds one run: `train` refuses a folder that holds another one, and continues
its own with ``resume=True``; one trainer at a time holds the folder (`lock_run_folder`).
Under ``torchrun`` only rank 0 writes.
"""

from minidiff.runs.data import (
    TOY_POINTS,
    check_preset,
    check_training_data,
    resolve_device,
    training_data,
)
from minidiff.runs.grids import image_grid, save_image_grid
from minidiff.runs.lock import RunLockedError, lock_run_folder
from minidiff.runs.plots import read_metrics, save_loss_plot
from minidiff.runs.sampling import Run, load_run, sample
from minidiff.runs.store import (
    RESUMABLE_FIELDS,
    RunError,
    check_run_folder,
    preset_from_dict,
    preset_to_dict,
    stored_preset,
)
from minidiff.runs.training import GRID_SAMPLES, train

__all__ = [
    "GRID_SAMPLES",
    "RESUMABLE_FIELDS",
    "TOY_POINTS",
    "Run",
    "RunError",
    "RunLockedError",
    "check_preset",
    "check_run_folder",
    "check_training_data",
    "image_grid",
    "load_run",
    "lock_run_folder",
    "preset_from_dict",
    "preset_to_dict",
    "read_metrics",
    "resolve_device",
    "sample",
    "save_image_grid",
    "save_loss_plot",
    "stored_preset",
    "train",
    "training_data",
]
