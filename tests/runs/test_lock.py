"""Tests of a run folder shared between processes: one trainer at a time (an OS lock
held for the trainer's life, never left stale by a killed one), and readers that load
the latest checkpoint while the trainer prunes old ones."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import time

import pytest
import torch

from minidiff.runs import load_run, stored_preset, train
from tests.test_runs import tiny

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """Train once in this process, so that forked processes start with every module
    (data sets, optimizers) imported."""
    train(tiny("steps=1"), tmp_path_factory.mktemp("warm") / "run", device="cpu", progress=False)


def _train_after(barrier, out: str, seed: int, results) -> None:
    """Wait at ``barrier``, then train into ``out``; report "ok" or the error's type."""
    torch.set_num_threads(1)
    barrier.wait()
    try:
        train(tiny(f"seed={seed}", "steps=2"), out, device="cpu", progress=False)
        results.put((seed, "ok", ""))
    except Exception as err:  # noqa: BLE001 - the test reports what each process got
        results.put((seed, type(err).__name__, str(err)))


def test_two_trainers_released_at_once_into_one_new_folder_leave_one_run(tmp_path, warm):
    """Two processes released by one barrier train different seeds into the same new
    folder: exactly one trains, the other is refused with a one-line RunError, and the
    folder's run.json and every checkpoint hold the winner's preset."""
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(2), context.Queue()
    out = tmp_path / "run"
    workers = [
        context.Process(target=_train_after, args=(barrier, str(out), seed, results))
        for seed in (1, 2)
    ]
    for worker in workers:
        worker.start()
    outcome = sorted(results.get(timeout=300) for _ in workers)
    for worker in workers:
        worker.join(timeout=60)
    kinds = sorted(kind for _, kind, _ in outcome)
    assert kinds == ["RunError", "ok"] or kinds == ["RunLockedError", "ok"], outcome
    assert all("\n" not in message for _, _, message in outcome)
    winner = next(seed for seed, kind, _ in outcome if kind == "ok")
    assert json.loads((out / "run.json").read_text())["preset"]["training"]["seed"] == winner
    for folder in (out / "checkpoints").glob("step_*"):
        assert stored_preset(folder).training.seed == winner


def _hold(out: str, ready) -> None:
    """Hold the lock of ``out`` until killed."""
    from minidiff.runs.lock import lock_run_folder

    with lock_run_folder(out):
        ready.set()
        time.sleep(600)


def test_a_held_folder_refuses_a_trainer_in_one_line_until_its_holder_is_killed(
    tmp_path, capsys, warm
):
    """While another process holds the run folder, `minidiff train` into it exits 2 with
    one line naming the holder and writes nothing; once that process is killed with
    SIGKILL (no clean-up of its own runs), the same command trains."""
    from tests.test_cli_errors import one_line, train_argv
    from tests.test_cli_train import fails

    out = tmp_path / "run"
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    holder = context.Process(target=_hold, args=(str(out), ready))
    holder.start()
    try:
        assert ready.wait(timeout=60)
        err = one_line(fails(train_argv(out, "--set", "steps=2"), capsys))
        assert f"process {holder.pid}" in err and "another trainer" in err
        assert sorted(p.name for p in out.iterdir()) == [".lock"]
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.join()
    from minidiff.cli import main

    assert main(train_argv(out, "--set", "steps=2")) == 0


def test_the_lock_is_released_on_any_exit_and_refuses_a_second_holder(tmp_path):
    """`lock_run_folder` refuses a second holder while the first holds it (even in the
    same process), and frees the folder when the holder leaves, also by an exception."""
    from minidiff.runs.lock import RunLockedError, lock_run_folder

    out = tmp_path / "run"
    with lock_run_folder(out):
        with pytest.raises(RunLockedError, match=str(out)):
            with lock_run_folder(out):
                pass
    with pytest.raises(KeyError):
        with lock_run_folder(out):
            raise KeyError("boom")
    with lock_run_folder(out):
        pass


def test_sampling_a_run_while_its_trainer_prunes_checkpoints_never_fails(tmp_path):
    """A thread keeps saving checkpoints of a run with keep_last=1 (each save deletes the
    previous one) while this one loads the run 10 times: every load succeeds."""
    out = tmp_path / "run"
    trainer = train(tiny("keep_last=1", "steps=2"), out, device="cpu", progress=False)
    stop = threading.Event()

    def writer():
        while not stop.is_set():
            trainer.step += 1
            trainer.save()
            time.sleep(0.01)  # a few training steps

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        steps = [load_run(out, device="cpu").step for _ in range(10)]
    finally:
        stop.set()
        thread.join()
    assert all(step >= 2 for step in steps)
