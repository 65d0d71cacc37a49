"""Tests of ``minidiff sample`` on text and audio runs, and ``minidiff train`` of the
``audio`` preset, called in-process through ``main([...])`` at tiny settings."""

from __future__ import annotations

import pytest
import torch

from minidiff import runs
from minidiff.cli import main
from minidiff.configs import override, preset
from minidiff.data.audio import read_wav
from minidiff.data.text import VOCAB
from tests.runs.test_media import TINY_AUDIO_RUN, TINY_TEXT_RUN, text_data
from tests.test_cli_train import fails

torch.set_num_threads(1)


def samples_of(printed: str) -> list[str]:
    """The samples of ``minidiff sample`` output: blocks "--- sample I ---\nTEXT" joined
    by newlines (a sample may hold newlines itself)."""
    blocks = printed.split("--- sample ")[1:]
    return [block.split(" ---\n", 1)[1][:-1] for block in blocks]  # less the joining "\n"


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    """A text-kjv run of a few steps on the bundled tiny text."""
    out = tmp_path_factory.mktemp("text") / "run"
    runs.train(override(preset("text-kjv"), [*TINY_TEXT_RUN, "steps=3"]), out, data=text_data(),
               progress=False)  # fmt: skip
    return out


def test_text_samples_are_printed_and_a_prompt_is_infilled(text_run, tmp_path, capsys):
    """--n samples of --length characters over the vocabulary are printed; --prompt keeps
    its characters and fills its "_"; --out also writes them, once."""
    assert main(["sample", "--checkpoint", str(text_run), "--n", "2", "--length", "30",
                 "--steps", "8"]) == 0  # fmt: skip
    texts = samples_of(capsys.readouterr().out)
    assert [len(t) for t in texts] == [30, 30] and set("".join(texts)) <= set(VOCAB)
    out = tmp_path / "infill.txt"
    prompt = "In the beginning ____ the earth"
    assert main(["sample", "--checkpoint", str(text_run), "--prompt", prompt, "--out", str(out),
                 "--steps", "8"]) == 0  # fmt: skip
    infilled, *others = samples_of(out.read_text())
    assert len(others) == preset("text-kjv").sampling.num_samples - 1  # --n: the preset's
    assert infilled.startswith("In the beginning ") and len(infilled) == len(prompt)
    assert "_" not in infilled
    assert "never overwritten" in fails(["sample", "--checkpoint", str(text_run), "--out",
                                         str(out)], capsys)  # fmt: skip


@pytest.mark.parametrize("extra,message", [
    (["--prompt", "a#_"], "not in VOCAB"),
    (["--class", "3"], "--class"),
    (["--length", "5", "--prompt", "abcdefgh"], "shorter"),
])  # fmt: skip
def test_bad_text_sampling_exits_2(text_run, capsys, extra, message):
    """A prompt outside the vocabulary, a class for a text run and a prompt longer than
    --length exit 2 with one line naming the problem."""
    assert message in fails(["sample", "--checkpoint", str(text_run), *extra], capsys)


def test_audio_trains_from_the_command_line_and_samples_wav_files(tmp_path, capsys):
    """``minidiff train --config audio`` (tones) writes a run; ``minidiff sample`` writes
    --n WAV files of --length samples and a spectrogram PNG into a new --out folder;
    without --out it exits 2."""
    run = tmp_path / "run"
    sets = [arg for a in [*TINY_AUDIO_RUN, "steps=2"] for arg in ("--set", a)]
    assert main(["train", "--config", "audio", *sets, "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    out = tmp_path / "tones"
    assert main(["sample", "--checkpoint", str(run), "--n", "2", "--length", "300", "--out",
                 str(out), "--no-progress"]) == 0  # fmt: skip
    assert sorted(f.name for f in out.iterdir()) == ["sample_0.wav", "sample_1.wav",
                                                     "spectrograms.png"]  # fmt: skip
    assert read_wav(out / "sample_1.wav")[0].shape == (300,)
    assert "--out is required" in fails(["sample", "--checkpoint", str(run)], capsys)
