"""Tests of text and audio runs: presets trained by `minidiff.runs.train` through the
`Trainer`, resumed, loaded and sampled (`minidiff.runs.media`)."""

from __future__ import annotations

import torch

from minidiff import runs
from minidiff.configs import override, preset
from minidiff.data.audio import SAMPLE_RATE, read_wav, synthetic_tones
from minidiff.data.text import TINY_TEXT, VOCAB, encode, text_windows

TINY_TEXT_RUN = ["width=16", "depth=2", "model.length=32", "batch_size=8", "warmup_steps=2",
                 "log_every=5", "checkpoint_every=10", "diffusion.T=16"]  # fmt: skip
TINY_AUDIO_RUN = ["channels=8", "layers=2", "dilation_cycle=2", "model.length=256",
                  "batch_size=4", "log_every=2", "checkpoint_every=4"]  # fmt: skip


def text_data() -> torch.Tensor:
    return text_windows(encode(TINY_TEXT), 32, 8)  # (N, 32)


def weights(trainer) -> list[torch.Tensor]:
    return [*trainer.model.state_dict().values(), *trainer.ema.shadow.values()]


def test_text_run_resumes_bit_identically_and_lowers_the_loss(tmp_path):
    """The text preset with the absorbing diffusion: 20 steps in one go equal 10 steps and
    10 more after a resume, bit for bit (model and EMA), and the logged NELBO falls."""
    p = override(preset("text-kjv"), [*TINY_TEXT_RUN, "steps=20"])
    straight = runs.train(p, tmp_path / "a", data=text_data(), progress=False)
    half = override(p, ["steps=10"])
    runs.train(half, tmp_path / "b", data=text_data(), progress=False)
    resumed = runs.train(p, tmp_path / "b", data=text_data(), progress=False, resume=True)
    assert resumed.step == straight.step == 20
    assert all(torch.equal(a, b) for a, b in zip(weights(straight), weights(resumed), strict=True))
    losses = [r["loss"] for r in runs.read_metrics(tmp_path / "a")]
    assert len(losses) == 4 and losses[-1] < losses[0]


def test_text_run_samples_and_infills(tmp_path):
    """A loaded text run samples strings over the vocabulary and keeps a prompt's
    characters; the uniform process trains through the same loop."""
    p = override(preset("text-kjv"), [*TINY_TEXT_RUN, "steps=2"])
    runs.train(p, tmp_path / "run", data=text_data(), progress=False)
    run = runs.load_run(tmp_path / "run", device="cpu")
    texts = runs.sample_run_text(run, 3, length=20, steps=8)
    assert [len(t) for t in texts] == [20] * 3 and set("".join(texts)) <= set(VOCAB)
    (infilled,) = runs.sample_run_text(run, 1, prompt="In the ____ was", steps=8)
    assert infilled.startswith("In the ") and infilled.endswith(" was") and "_" not in infilled


def test_text_run_stops_on_a_budget(tmp_path):
    """A spent budget stops training after its step, which is checkpointed and logged."""
    from minidiff.training.budget import Budget

    p = override(preset("text-kjv"), [*TINY_TEXT_RUN, "steps=50"])
    trainer = runs.train(p, tmp_path, data=text_data(), progress=False,
                         stop=Budget(max_cpu_seconds=0.0))  # fmt: skip
    assert trainer.step == 1 and runs.read_metrics(tmp_path)[-1]["step"] == 1
    assert runs.load_run(tmp_path, device="cpu").step == 1


def test_audio_run_samples_waveforms_and_writes_wav_files(tmp_path):
    """The audio preset (DiffWave, Gaussian diffusion on (N, 1, S) tones) trains, resumes,
    samples clips in [-1, 1] and writes them as WAV files that read back, with a PNG."""
    p = override(preset("audio"), [*TINY_AUDIO_RUN, "steps=4"])
    data = synthetic_tones(16, 256, generator=torch.Generator().manual_seed(0))[0]
    runs.train(p, tmp_path / "run", data=data, progress=False)
    resumed = runs.train(override(p, ["steps=6"]), tmp_path / "run", data=data, progress=False,
                         resume=True)  # fmt: skip
    assert resumed.step == 6
    run = runs.load_run(tmp_path / "run", device="cpu")
    x0 = runs.sample(run, 3)
    assert x0.shape == (3, 1, 256) and float(x0.abs().max()) <= 1.0
    paths = runs.save_audio(x0, tmp_path / "out")
    assert [path.name for path in paths] == [*(f"sample_{i}.wav" for i in range(3)),
                                            "spectrograms.png"]  # fmt: skip
    audio, rate = read_wav(paths[0])
    assert rate == SAMPLE_RATE and audio.shape == (256,)
    # written as round(32767 x), read as / 32768: off by at most 1.5 / 32768
    assert torch.allclose(audio, x0[0, 0], atol=1.5 / 32768, rtol=0)
