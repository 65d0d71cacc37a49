"""The run folder: the preset kept as plain data, and the checks before a run writes.

A run folder holds ``run.json`` (the preset), ``metrics.jsonl``, ``checkpoints/`` and
``samples/``; every checkpoint also stores the preset under ``config["run"]["preset"]``
and the schedule's betas under ``config["beta"]`` (`minidiff.training.resume`).

The preset is stored by section (`preset_to_dict`); the model and diffusion sections
also name their kind (``"kind": "unet"``, ``"caption-unet"``, ``"gaussian"``: the keys of
`minidiff.configs.MODEL_KINDS` and `DIFFUSION_KINDS`). Runs written before the sections
stored one flat mapping of all settings, and runs written before the diffusion kinds
stored a Gaussian diffusion section without its kind; `preset_from_dict` reads them all.
"""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

from minidiff.configs import (
    DIFFUSION_CONFIGS,
    MODEL_CONFIGS,
    DataConfig,
    DiffusionConfig,
    Preset,
    SamplingConfig,
    build_diffusion,
)
from minidiff.diffusion.gaussian import GaussianDiffusion
from minidiff.sections import from_plain, leaves, to_plain
from minidiff.training.checkpoint import (
    MARKER,
    CheckpointError,
    CheckpointNotFoundError,
    find_latest_checkpoint,
    read_checkpoint_config,
)
from minidiff.training.checkpoint_files import checkpoint_candidates
from minidiff.training.config import TrainConfig, is_resumable
from minidiff.training.resume import ScheduleMismatchError, check_schedule
from minidiff.training.trainer import CHECKPOINT_DIR, METRICS_FILE

__all__ = [
    "RUN_FILE",
    "RunError",
    "check_run_folder",
    "checkpoint_folder",
    "preset_from_dict",
    "preset_to_dict",
    "stored_preset",
]

RUN_FILE = "run.json"
SAMPLES_DIR = "samples"
RUN_FORMAT = "minidiff-run"
# the sections besides the model and the diffusion, which name their kind
SECTIONS = {"data": DataConfig, "training": TrainConfig, "sampling": SamplingConfig}
KINDED = {"model": MODEL_CONFIGS, "diffusion": DIFFUSION_CONFIGS}
DEFAULT_KINDS = {"diffusion": "gaussian"}  # the kind of a section stored without one


class RunError(ValueError):
    """A run folder that holds another run, or a checkpoint that does not say its preset."""


# -- presets as plain data -------------------------------------------------------------


def preset_to_dict(p: Preset) -> dict[str, Any]:
    """``p`` as JSON-ready plain data by section (tuples as lists), the model section with
    its ``kind``: what run.json and checkpoints keep."""
    data = to_plain(p)
    data["model"] = {"kind": p.model_kind, **data["model"]}
    data["diffusion"] = {"kind": p.diffusion_kind, **data["diffusion"]}
    return data


def preset_from_dict(data: Any, source: str | os.PathLike = "preset") -> Preset:
    """The `Preset` stored by `preset_to_dict`, or by a run written before the sections
    (one flat mapping, `_sections_from_flat`); a field missing from an older run takes its
    default.

    Raises:
        RunError: not a mapping, unknown or missing fields, or values the `Preset` refuses;
            the message names ``source``.
    """
    if not isinstance(data, dict):
        raise RunError(f"{source}: the stored preset is not a mapping, got {type(data).__name__}")
    try:
        if "data" not in data and "dataset" in data:
            data = _sections_from_flat(data)
        unknown = sorted(set(data) - {"name", *KINDED, *SECTIONS})
        if unknown:
            raise ValueError(f"unknown sections {unknown}")
        sections = {name: from_plain(cls, data.get(name, {}), name)
                    for name, cls in SECTIONS.items()}  # fmt: skip
        for name, configs in KINDED.items():
            section = dict(data.get(name) or {})
            kind = section.pop("kind", DEFAULT_KINDS.get(name))
            if kind not in configs:
                raise ValueError(f"{name} kind must be one of {tuple(configs)}, got {kind!r}")
            sections[name] = from_plain(configs[kind], section, name)
        return Preset(name=data.get("name"), **sections)
    except (TypeError, ValueError) as err:
        raise RunError(f"{source}: the stored preset is not valid: {err}") from err


# the model settings of a flat preset, by their names in `minidiff.nn.ToyMLPConfig`
_FLAT_MLP = {"in_channels": "dim", "mlp_hidden": "hidden", "mlp_embed_dim": "embed_dim"}


def _sections_from_flat(flat: dict[str, Any]) -> dict[str, Any]:
    """A preset stored as one flat mapping (run.json and checkpoints written before the
    sections: ``model`` named the network, ``mlp_hidden`` and ``mlp_embed_dim`` were the
    MLP's, the U-Net's settings kept their `UNetConfig` names) as sections."""
    kind = flat.get("model")
    if kind not in MODEL_CONFIGS:
        raise ValueError(f"model must be one of {tuple(MODEL_CONFIGS)}, got {kind!r}")
    unet_names = {f.name for f in fields(MODEL_CONFIGS["unet"])}
    known = {"name", "model", *unet_names, *_FLAT_MLP}
    nested: dict[str, Any] = {"name": flat.get("name")}
    for section, cls in {**SECTIONS, "diffusion": DiffusionConfig}.items():
        names = {f.name for f in fields(cls)}
        nested[section] = {key: value for key, value in flat.items() if key in names}
        known |= names
    unknown = sorted(set(flat) - known)
    if unknown:
        raise ValueError(f"unknown fields {unknown}")
    if kind == "unet":
        nested["model"] = {key: value for key, value in flat.items() if key in unet_names}
    else:
        nested["model"] = {new: flat[old] for old, new in _FLAT_MLP.items() if old in flat}
    nested["model"]["kind"] = kind
    return nested


def checkpoint_folder(path: Path) -> Path:
    """The checkpoint of ``path``: a step_N folder, a checkpoints/ folder, or a run folder."""
    if not path.exists():
        raise CheckpointNotFoundError(f"no checkpoint at {path}: it does not exist")
    if path.is_dir() and (path / MARKER).exists():
        return path
    for directory in (path / CHECKPOINT_DIR, path):
        latest = find_latest_checkpoint(directory)
        if latest is not None:
            return latest
    raise CheckpointNotFoundError(
        f"{path} holds no minidiff checkpoint (expected a run folder, its {CHECKPOINT_DIR}/ "
        "folder or one step_N folder of it)"
    )


def stored_preset(path: str | os.PathLike) -> Preset:
    """The preset stored in the checkpoint at ``path`` (see `load_run` for ``path``).

    Raises:
        CheckpointNotFoundError, CheckpointError: no checkpoint, or a broken one.
        RunError: the checkpoint was saved without a preset (a bare `Trainer` run).
    """
    folder = checkpoint_folder(Path(path))
    config = read_checkpoint_config(folder)
    run = config.get("run") if isinstance(config, dict) else None
    if not isinstance(run, dict) or "preset" not in run:
        raise RunError(
            f"{folder} stores no preset (it was saved by a Trainer without run_info, not by "
            "minidiff.runs.train): build its model yourself and use load_checkpoint"
        )
    return preset_from_dict(run["preset"], folder)


# -- the run folder --------------------------------------------------------------------


def _run_files(out: Path) -> list[str]:
    """The names of a run's files and folders that exist in ``out``."""
    names = (RUN_FILE, CHECKPOINT_DIR, METRICS_FILE, SAMPLES_DIR)
    return [name for name in names if (out / name).exists()] if out.is_dir() else []


def _read_run_file(path: Path) -> Preset:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunError(f"{path} is not a minidiff run file: {err}") from err
    if not isinstance(record, dict) or record.get("format") != RUN_FORMAT:
        raise RunError(f"{path} is not a minidiff run file (no format {RUN_FORMAT!r})")
    return preset_from_dict(record.get("preset"), path)


def _differences(saved: Preset, given: Preset) -> list[str]:
    """The settings that differ, but for those a resumed run may change (`resumable`)."""
    kinds = [f"{section}: saved {old!r}, given {new!r}"
             for section, old, new in (("model", saved.model_kind, given.model_kind),
                                       ("diffusion", saved.diffusion_kind, given.diffusion_kind))
             if old != new]  # fmt: skip
    if kinds:
        return kinds
    old, new = (_settings(p) for p in (saved, given))
    return [
        f"{path}: saved {old[path][0]!r}, given {value!r}"
        for path, (value, resumable) in new.items()
        if not resumable and old[path][0] != value
    ]


def _latest_preset(directory: Path) -> tuple[Path, Preset] | None:
    """The newest checkpoint in ``directory`` whose preset reads, with the preset (a
    resume passes over the newer ones that do not load); None if there is none."""
    candidates = checkpoint_candidates(directory)
    for folder in candidates:
        try:
            return folder, stored_preset(folder)
        except CheckpointError:
            if folder == candidates[-1]:
                raise
    return None


def _settings(p: Preset) -> dict[str, tuple[Any, bool]]:
    """(value, whether a resumed run may change it) of every setting of ``p``, by path."""
    settings = {}
    for leaf in leaves(p):
        value = p
        for name in leaf.path.split("."):
            value = getattr(value, name)
        settings[leaf.path] = (value, is_resumable(leaf.field))
    return settings


def check_run_folder(
    p: Preset, out_dir: str | os.PathLike, *, resume: bool = False,
    diffusion: GaussianDiffusion | None = None,
) -> bool:  # fmt: skip
    """Check that ``train(p, out_dir, resume=resume)`` may write to ``out_dir``; reads only.

    A new run needs a folder without a run's files (other files are left alone). A
    resumed run needs the same preset as the one saved, up to the settings marked
    `minidiff.training.config.resumable`, and its newest readable checkpoint's betas must
    be those of ``diffusion`` (default: `build_diffusion` of ``p``).

    Returns:
        Whether there is a checkpoint to resume from.

    Raises:
        RunError: ``out_dir`` is a file, holds a run while ``resume`` is False, or holds a
            run of another preset, checkpoints that store no preset, or a checkpoint
            trained with other betas.
        CheckpointError: its latest checkpoint is unreadable.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RunError(f"{out} exists and is not a folder")
    found = _run_files(out)
    if found and not resume:
        raise RunError(
            f"{out} already holds a run ({', '.join(found)}): resume it with resume=True "
            "(minidiff train --resume), or choose another folder"
        )
    saved = [(out / RUN_FILE, _read_run_file(out / RUN_FILE))] if RUN_FILE in found else []
    latest = _latest_preset(out / CHECKPOINT_DIR)
    if latest is not None:
        saved.append(latest)
    for source, old in saved:
        differences = _differences(old, p)
        if differences:
            raise RunError(
                f"{out} holds a run of another preset ({source}): "
                + "; ".join(differences)
                + "; choose another folder, or resume with the saved settings"
            )
    if latest is not None:
        folder = latest[0]
        try:
            check_schedule(read_checkpoint_config(folder), diffusion or build_diffusion(p),
                           f"the checkpoint {folder}")  # fmt: skip
        except ScheduleMismatchError as err:
            raise RunError(str(err)) from err
    return latest is not None
