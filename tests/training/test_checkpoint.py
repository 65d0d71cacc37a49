"""Tests of checkpoints: exact round trips, pruning, crash safety at every write, and
refusal of pickled code and of foreign or mismatched checkpoints."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import shutil
import threading
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from minidiff import atomic as atomic_module
from minidiff.training import (
    EMA,
    CheckpointError,
    CheckpointNotFoundError,
    capture_rng_state,
    find_latest_checkpoint,
    load_checkpoint,
    read_checkpoint_config,
    repair_checkpoints,
    restore_rng_state,
    save_checkpoint,
)

CONFIG = {"lr": 1e-3, "batch_size": 4, "name": "tiny", "dims": [3, 8, 2]}


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.5), nn.Linear(8, 2)).double()


def _parts(seed: int = 0):
    model = _model(seed)
    ema = EMA(model, 0.9, warmup=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    return model, ema, optimizer, scheduler


def _train(model, ema, optimizer, scheduler, generator, steps: int) -> None:
    """A few AdamW steps on random data; dropout draws from the global torch RNG."""
    for _ in range(steps):
        x = torch.randn(4, 3, generator=generator, dtype=torch.float64)
        loss = model(x).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        ema.update(model)


def _state(model) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_round_trip_resumes_training_bit_for_bit(tmp_path):
    """Save after 3 steps, load into fresh objects, restore the RNGs and train 3 more:
    model, EMA, AdamW moments and learning rate equal those of an uninterrupted run of 6
    steps exactly, and step, config and data state come back as saved."""
    saved_global = torch.get_rng_state()
    try:
        torch.manual_seed(123)
        model, ema, optimizer, scheduler = _parts()
        generator = torch.Generator().manual_seed(7)
        _train(model, ema, optimizer, scheduler, generator, 3)
        save_checkpoint(
            tmp_path,
            model=model,
            ema=ema,
            optimizer=optimizer,
            scheduler=scheduler,
            step=3,
            data_state={"epoch": 0, "order": torch.arange(5)},
            rng_state=capture_rng_state({"data": generator}),
            config=CONFIG,
        )
        _train(model, ema, optimizer, scheduler, generator, 3)

        model2, ema2, optimizer2, scheduler2 = _parts(seed=99)
        generator2 = torch.Generator()
        info = load_checkpoint(
            tmp_path,
            model=model2,
            ema=ema2,
            optimizer=optimizer2,
            scheduler=scheduler2,
            config=CONFIG,
        )
        restore_rng_state(info["rng_state"], {"data": generator2})
        _train(model2, ema2, optimizer2, scheduler2, generator2, 3)
    finally:
        torch.set_rng_state(saved_global)
    assert info["step"] == 3 and info["config"] == CONFIG
    assert info["data_state"]["epoch"] == 0
    assert torch.equal(info["data_state"]["order"], torch.arange(5))
    _assert_same(_state(model2), _state(model))
    _assert_same(
        {k: v.numpy() for k, v in ema2.shadow.items()},
        {k: v.numpy() for k, v in ema.shadow.items()},
    )
    assert ema2.num_updates == ema.num_updates == 6
    for p, p2 in zip(model.parameters(), model2.parameters(), strict=True):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(optimizer.state[p][key], optimizer2.state[p2][key])
    assert scheduler.get_last_lr() == scheduler2.get_last_lr()


def test_layout_is_safetensors_plus_weights_only_state(tmp_path):
    """A checkpoint folder holds model.safetensors, ema.safetensors, state.pt (loadable
    with weights_only=True) and the completion marker; latest.json names it."""
    model, ema, optimizer, _ = _parts()
    folder = save_checkpoint(tmp_path, model=model, ema=ema, optimizer=optimizer, step=123)
    assert folder == tmp_path / "step_000123"
    assert sorted(p.name for p in folder.iterdir()) == [
        "checkpoint.json",
        "ema.safetensors",
        "model.safetensors",
        "state.pt",
    ]
    assert json.loads((tmp_path / "latest.json").read_text())["name"] == "step_000123"
    state = torch.load(folder / "state.pt", weights_only=True)
    assert state["step"] == 123
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_config_reads_back_without_the_weights_and_only_from_a_complete_checkpoint(
    tmp_path,
):
    """`read_checkpoint_config` returns the saved config as it was given (what a caller
    needs to build the model before loading it) and refuses a folder whose marker is
    missing, as it refuses a foreign folder."""
    model, ema, optimizer, _ = _parts()
    folder = save_checkpoint(tmp_path, model=model, ema=ema, optimizer=optimizer, step=5,
                             config=CONFIG)  # fmt: skip
    assert read_checkpoint_config(folder) == CONFIG
    (folder / "checkpoint.json").unlink()
    with pytest.raises(CheckpointError, match="checkpoint.json is missing"):
        read_checkpoint_config(folder)
    with pytest.raises(CheckpointError):
        read_checkpoint_config(tmp_path)


def test_old_checkpoints_are_pruned_to_keep_last(tmp_path):
    """With keep_last=2, after saving steps 1..5 only steps 4 and 5 remain; the newest
    is kept even when it is not the largest step."""
    model = _model()
    for step in range(1, 6):
        save_checkpoint(tmp_path, model=model, step=step, keep_last=2)
    assert sorted(p.name for p in tmp_path.glob("step_*")) == ["step_000004", "step_000005"]
    save_checkpoint(tmp_path, model=model, step=2, keep_last=1)
    assert sorted(p.name for p in tmp_path.glob("step_*")) == ["step_000002", "step_000005"]
    assert find_latest_checkpoint(tmp_path) == tmp_path / "step_000002"


def test_resaving_a_step_replaces_it(tmp_path):
    """Saving the same step twice leaves one complete folder holding the second save."""
    save_checkpoint(tmp_path, model=_model(0), step=1)
    save_checkpoint(tmp_path, model=_model(1), step=1)
    model = _model(2)
    load_checkpoint(tmp_path, model=model)
    _assert_same(_state(model), _state(_model(1)))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


class _Crash(Exception):
    """The simulated power cut."""


PRIMITIVES = ("write_bytes", "fsync_dir", "replace", "make_temp_dir", "remove_tree")


def _instrument(monkeypatch, crash_at: int | None, log: list):
    """Wrap every file-system primitive of the save; call number ``crash_at`` fails.

    A failing write leaves half the bytes on disk; a failing tree removal deletes one
    file first; any other failing call does nothing. Then the exception propagates, with
    no cleanup, as a crash would."""
    for name in PRIMITIVES:
        real = getattr(atomic_module, name)

        def wrapper(*args, _real=real, _name=name):
            log.append((_name, args))
            if len(log) == crash_at:
                if _name == "write_bytes":
                    with open(args[0], "xb") as file:
                        file.write(args[1][: len(args[1]) // 2])
                if _name == "remove_tree":  # deletes one file first, if there is one
                    for file in (p for p in args[0].rglob("*") if p.is_file()):
                        file.unlink()
                        break
                raise _Crash(f"crash at call {crash_at}: {_name}")
            return _real(*args)

        monkeypatch.setattr(atomic_module, name, wrapper)


@pytest.mark.parametrize("new_step", [2, 1], ids=["new_step", "resave_same_step"])
def test_a_crash_at_any_write_leaves_a_complete_loadable_checkpoint(
    tmp_path, monkeypatch, new_step
):
    """Interrupt a save over step 1 (of step 2, or of step 1 again; keep_last=1 so pruning
    runs too) at every file-system call k = 1..K in turn. After each crash the latest
    checkpoint is complete and loads exactly: the old weights if the crash came before
    the commit point, the new ones after it; never a partial checkpoint. The commit point
    is the atomic replace of latest.json for a new step, and the rename of the new folder
    into place when step 1 (which latest.json already names) is saved again. A later save
    then succeeds, puts back what was set aside and cleans up every leftover."""
    old, new = _model(0), _model(1)
    log: list = []
    with monkeypatch.context() as patch:
        save_checkpoint(tmp_path / "count", model=old, ema=EMA(old), step=1)
        _instrument(patch, None, log)
        save_checkpoint(tmp_path / "count", model=new, ema=EMA(new), step=new_step, keep_last=1)
    commit_target = "latest.json" if new_step == 2 else "step_000001"
    commit = next(
        i
        for i, (name, args) in enumerate(log, start=1)
        if name == "replace" and args[1] == tmp_path / "count" / commit_target
    )
    assert len(log) > commit + 2  # more writes come after the commit point
    for crash_at in range(1, len(log) + 1):
        run = tmp_path / f"crash_{crash_at}"
        save_checkpoint(run, model=old, ema=EMA(old), step=1)
        with monkeypatch.context() as patch:
            _instrument(patch, crash_at, [])
            with pytest.raises(_Crash):
                save_checkpoint(run, model=new, ema=EMA(new), step=new_step, keep_last=1)
        latest = find_latest_checkpoint(run)
        expected_step, expected = (new_step, new) if crash_at > commit else (1, old)
        assert latest is not None and latest.name == f"step_{expected_step:06d}", crash_at
        model, ema = _model(5), EMA(_model(5))
        info = load_checkpoint(latest, model=model, ema=ema)
        assert info["step"] == expected_step
        _assert_same(_state(model), _state(expected))
        _assert_same({k: v.numpy() for k, v in ema.shadow.items()}, _state(expected))
        save_checkpoint(run, model=new, ema=EMA(new), step=3, keep_last=1)
        assert sorted(p.name for p in run.iterdir()) == ["latest.json", "step_000003"]


def test_find_latest_ignores_temporaries_and_survives_a_broken_pointer(tmp_path):
    """Temporaries and folders without a valid marker are never returned; a missing or
    wrong latest.json falls back to the complete folder with the largest step."""
    assert find_latest_checkpoint(tmp_path / "absent") is None
    model = _model()
    save_checkpoint(tmp_path, model=model, step=1)
    save_checkpoint(tmp_path, model=model, step=2)
    shutil.copytree(tmp_path / "step_000002", tmp_path / ".tmp-step_000009-abcd")
    (tmp_path / "step_000008").mkdir()  # incomplete: no marker
    assert find_latest_checkpoint(tmp_path) == tmp_path / "step_000002"
    (tmp_path / "latest.json").write_text('{"name": "step_000008"}')
    assert find_latest_checkpoint(tmp_path) == tmp_path / "step_000002"
    (tmp_path / "latest.json").write_text("not json")
    assert find_latest_checkpoint(tmp_path) == tmp_path / "step_000002"
    (tmp_path / "latest.json").unlink()
    (tmp_path / "step_000002" / "state.pt").write_bytes(b"truncated")
    assert find_latest_checkpoint(tmp_path) == tmp_path / "step_000001"


class _Payload:
    """Unpickling this object calls ``open(path, "w")``: code runs during loading."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def reseal(folder, name) -> None:
    """Record the current size (and SHA-256, where the marker keeps one) of ``name`` in
    the marker of ``folder``, as a tamperer who rewrites the marker would."""
    marker = json.loads((folder / "checkpoint.json").read_text())
    data = (folder / name).read_bytes()
    entry = marker["files"][name]
    if isinstance(entry, dict):
        entry.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    else:
        marker["files"][name] = len(data)
    (folder / "checkpoint.json").write_text(json.dumps(marker))


def tamper_state(folder, sentinel) -> None:
    """Put a pickle payload that creates ``sentinel`` into the state.pt of ``folder``."""
    state = torch.load(folder / "state.pt", weights_only=True)
    state["config"] = _Payload(sentinel)
    torch.save(state, folder / "state.pt")
    reseal(folder, "state.pt")


def test_a_pickle_payload_in_state_is_refused_in_one_line_and_never_runs(tmp_path):
    """A state.pt whose unpickling would run code (here: create a file) is refused by
    ``weights_only=True`` with a one-line CheckpointError that says the file is not a
    valid checkpoint and was not loaded (not torch's advice to load it unsafely), and
    the file is not created; the same bytes loaded unsafely do run the code, so the
    payload is live."""
    folder = save_checkpoint(tmp_path, model=_model(), step=1)
    sentinel = tmp_path / "payload_ran"
    tamper_state(folder, sentinel)
    with pytest.raises(CheckpointError, match="not a valid minidiff checkpoint") as info:
        load_checkpoint(folder, model=_model())
    assert "\n" not in str(info.value) and "weights_only=False" not in str(info.value)
    assert "was not loaded" in str(info.value)
    assert not sentinel.exists()
    torch.load(folder / "state.pt", weights_only=False)  # the unsafe way: the code runs
    assert sentinel.exists()


def test_missing_foreign_and_mismatched_checkpoints_give_clear_errors(tmp_path):
    """Nothing at the path -> CheckpointNotFoundError; a folder without the marker, a
    foreign marker, a differing config -> CheckpointError; a model with other keys or
    shapes -> CheckpointError listing them. A failed load leaves the model untouched."""
    with pytest.raises(CheckpointNotFoundError):
        load_checkpoint(tmp_path / "absent", model=_model())
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "model.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointNotFoundError, match="checkpoint.json"):
        load_checkpoint(foreign, model=_model())
    (foreign / "checkpoint.json").write_text('{"format": "something-else"}')
    with pytest.raises(CheckpointError, match="not a minidiff checkpoint"):
        load_checkpoint(foreign, model=_model())

    folder = save_checkpoint(tmp_path / "run", model=_model(), step=4, config=CONFIG)
    with pytest.raises(CheckpointError, match="lr"):
        load_checkpoint(folder, model=_model(), config={**CONFIG, "lr": 0.1})
    other = nn.Sequential(nn.Linear(3, 5), nn.Dropout(0.5), nn.Linear(5, 2), nn.Linear(2, 2))
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(folder, model=other)
    message = str(info.value)
    assert "3.weight" in message and "0.weight: shape (8, 3), expected (5, 3)" in message
    for key, value in other.state_dict().items():
        assert torch.equal(value, before[key])
    with pytest.raises(CheckpointError, match="no EMA"):
        load_checkpoint(folder, model=_model(), ema=EMA(_model()))


def test_tied_weights_are_saved_and_loaded(tmp_path):
    """A model whose two modules share one weight tensor saves (safetensors refuses shared
    storage, so it is copied) and loads back with the tie intact."""
    model = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False)).double()
    model[1].weight = model[0].weight
    save_checkpoint(tmp_path, model=model, step=0)
    fresh = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False)).double()
    fresh[1].weight = fresh[0].weight
    load_checkpoint(tmp_path, model=fresh)
    assert torch.equal(fresh[0].weight, model[0].weight)
    assert fresh[1].weight is fresh[0].weight


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"step": -1}, "step"),
        ({"step": 1.5}, "step"),
        ({"step": 1, "keep_last": 0}, "keep_last"),
        ({"step": 1, "config": [1]}, "config"),
        ({"step": 1, "config": {"rng": np.random.default_rng(0)}}, "config"),
        ({"step": 1, "data_state": np.arange(3)}, "data_state"),
    ],
)
def test_invalid_save_arguments_are_rejected(tmp_path, kwargs, match):
    """A negative or non-int step, keep_last < 1, a non-dict config, or plain-data
    arguments holding objects that ``weights_only=True`` would refuse to load (a NumPy
    array or Generator) raise ValueError naming the argument, before anything is written."""
    with pytest.raises(ValueError, match=match):
        save_checkpoint(tmp_path / "run", model=_model(), **kwargs)
    assert not (tmp_path / "run").exists()


def _tensor_data_offset(path) -> int:
    """The offset of the first byte of tensor data in a file written by `torch.save`."""
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if "/data/" in i.filename and i.file_size)
    with open(path, "rb") as file:
        file.seek(info.header_offset + 26)
        name_length, extra_length = (int.from_bytes(file.read(2), "little") for _ in range(2))
    return info.header_offset + 30 + name_length + extra_length


@pytest.mark.parametrize("name", ["model.safetensors", "ema.safetensors", "state.pt"])
def test_a_flipped_bit_in_the_tensor_data_of_any_file_is_refused(tmp_path, name):
    """One bit flipped inside the tensor data of any file of a checkpoint (sizes and
    headers intact, so the file still parses) is caught by the SHA-256 in the marker:
    CheckpointError naming the file, and the model is left untouched."""
    model, ema, optimizer, scheduler = _parts()
    _train(model, ema, optimizer, scheduler, torch.Generator().manual_seed(0), 1)
    folder = save_checkpoint(tmp_path, model=model, ema=ema, optimizer=optimizer, step=1)
    path = folder / name
    data = bytearray(path.read_bytes())
    offset = _tensor_data_offset(path) if name == "state.pt" else len(data) - 5
    data[offset] ^= 0x04
    path.write_bytes(bytes(data))
    fresh, fresh_ema = _model(7), EMA(_model(7))
    before = _state(fresh)
    with pytest.raises(CheckpointError, match=f"{name}.*SHA-256"):
        load_checkpoint(folder, model=fresh, ema=fresh_ema, optimizer=_parts()[2])
    _assert_same(_state(fresh), before)
    assert find_latest_checkpoint(tmp_path) == folder  # the cheap scan checks sizes only


def test_a_file_that_cannot_be_read_is_reported_as_such(tmp_path, monkeypatch):
    """An ema.safetensors the process may not read is reported with the reason
    ("Permission denied"), not as a missing file."""
    model = _model()
    folder = save_checkpoint(tmp_path, model=model, ema=EMA(model), step=1)
    real_open = open

    def denying_open(file, *args, **kwargs):
        if str(file).endswith("ema.safetensors"):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", denying_open)
    monkeypatch.setattr("io.open", denying_open)
    with pytest.raises(CheckpointError, match="Permission denied") as info:
        load_checkpoint(folder, model=_model(), ema=EMA(_model()))
    assert "No such file" not in str(info.value)


def _listing(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_repair_finishes_a_clean_up_killed_at_any_step(tmp_path, monkeypatch):
    """Kill a save of step 3 (over steps 1 and 2, keep_last=1) at every file-system call
    k = 1..K in turn, then open the folder for writing (`repair_checkpoints`): what the
    kill left (temporaries, set-aside and trash folders, step folders beyond keep_last)
    is finished or rolled back, so the folder holds latest.json, the latest checkpoint,
    which loads, and no other step folder than the newest (a complete step 3 renamed
    into place before the commit, which the next save of step 3 replaces); after the
    commit point, the latest checkpoint alone. A kill at each step of the repair itself
    is finished by the next repair in the same way."""
    old, new = _model(0), _model(1)

    def killed(run, crash_at, log=None):
        """Steps 1 and 2 saved, then a save of step 3 killed at call ``crash_at``."""
        save_checkpoint(run, model=old, ema=EMA(old), step=1)
        save_checkpoint(run, model=old, ema=EMA(old), step=2)
        with monkeypatch.context() as patch:
            _instrument(patch, crash_at, [] if log is None else log)
            with pytest.raises(_Crash) if crash_at else contextlib.nullcontext():
                save_checkpoint(run, model=new, ema=EMA(new), step=3, keep_last=1)

    log: list = []
    killed(tmp_path / "count", None, log)
    for crash_at in range(1, len(log) + 1):
        run = tmp_path / f"crash_{crash_at}"
        killed(run, crash_at)
        latest = find_latest_checkpoint(run)
        newest = max(p.name for p in run.glob("step_*"))
        repair_log: list = []
        with monkeypatch.context() as patch:
            _instrument(patch, None, repair_log)
            assert repair_checkpoints(run, keep_last=1) == latest
        expected = sorted({"latest.json", latest.name, newest})
        assert _listing(run) == expected, crash_at
        load_checkpoint(run, model=_model(5), ema=EMA(_model(5)))
        for repair_crash in range(1, len(repair_log) + 1):  # kill the repair itself
            again = tmp_path / f"crash_{crash_at}_{repair_crash}"
            killed(again, crash_at)
            with monkeypatch.context() as patch:
                _instrument(patch, repair_crash, [])
                with pytest.raises(_Crash):
                    repair_checkpoints(again, keep_last=1)
            assert repair_checkpoints(again, keep_last=1) == again / latest.name
            assert _listing(again) == expected, (crash_at, repair_crash)


def test_reading_the_latest_checkpoint_while_a_writer_prunes_never_fails(tmp_path):
    """One thread saves step after step with keep_last=1 (each save deletes the previous
    checkpoint) while this one loads the directory's latest checkpoint 40 times: every
    load succeeds, with a step the writer saved."""
    model = _model()
    save_checkpoint(tmp_path, model=model, ema=EMA(model), step=0)
    stop = threading.Event()

    def writer():
        step = 0
        while not stop.is_set():
            step += 1
            save_checkpoint(tmp_path, model=model, ema=EMA(model), step=step, keep_last=1)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        steps = [
            load_checkpoint(tmp_path, model=_model(), ema=EMA(_model()))["step"] for _ in range(40)
        ]
    finally:
        stop.set()
        thread.join()
    assert all(isinstance(step, int) and step >= 0 for step in steps)
