"""Label dropout in the trainer (Ho & Salimans 2022, Algorithm 1): the share of labels the
network sees as the null label is p_uncond, and the drops come from the run's generator."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from minidiff.diffusion.gaussian import GaussianDiffusion
from minidiff.nn.conditioning import P_UNCOND, LabelEmbedding
from minidiff.process.schedule import linear_schedule
from minidiff.training import TrainConfig, Trainer
from minidiff.training.conditioning import drop_for_guidance, null_condition_of, null_label_of

torch.set_num_threads(1)
CLASSES = 3


class RecordingDenoiser(nn.Module):
    """eps(x_t, t, y) = w x_t + embedding(y) (broadcast), recording every y it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.embedding = LabelEmbedding(CLASSES, 2)
        self.seen: list[torch.Tensor] = []

    def forward(self, xt, t, y=None):
        self.seen.append(y.detach().clone())
        return self.w * xt + self.embedding(y)


def labelled_data(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 2, generator=g), torch.randint(0, CLASSES, (n,), generator=g)


def train_recording(tmp_path, steps: int, p_uncond: float, seed: int = 0) -> torch.Tensor:
    model = RecordingDenoiser()
    config = TrainConfig(batch_size=64, steps=steps, warmup_steps=0, log_every=steps,
                         checkpoint_every=0, num_bins=None, seed=seed,
                         p_uncond=p_uncond)  # fmt: skip
    diffusion = GaussianDiffusion(linear_schedule(20), "eps", "fixed_small", "simple")
    Trainer(model, diffusion, labelled_data(), config, out_dir=tmp_path).train()
    return torch.cat(model.seen)


def test_the_share_of_null_labels_is_p_uncond_within_four_standard_errors(tmp_path):
    """20 steps of batch 64 (1280 labels, seed 0): the share dropped to the null label is
    within 4 standard errors sqrt(p (1 - p) / 1280) = 0.0084 of p_uncond = 0.1; the
    labels kept are the data's."""
    seen = train_recording(tmp_path, steps=20, p_uncond=P_UNCOND)
    share = (seen == CLASSES).double().mean().item()
    se = math.sqrt(P_UNCOND * (1 - P_UNCOND) / seen.numel())
    assert seen.numel() == 1280 and abs(share - P_UNCOND) <= 4 * se
    assert set((seen[seen != CLASSES]).tolist()) == set(range(CLASSES))


@pytest.mark.parametrize(("p_uncond", "null_share"), [(0.0, 0.0), (1.0, 1.0)])
def test_p_uncond_zero_keeps_every_label_and_one_drops_every_label(tmp_path, p_uncond,
                                                                   null_share):  # fmt: skip
    seen = train_recording(tmp_path, steps=3, p_uncond=p_uncond)
    assert (seen == CLASSES).double().mean().item() == null_share


def test_the_drops_depend_on_the_seed_and_repeat_with_it(tmp_path):
    """The masks come from the trainer's seeded generator: the same seed gives the same
    labels, another seed other drops."""
    a = train_recording(tmp_path / "a", steps=3, p_uncond=0.5)
    b = train_recording(tmp_path / "b", steps=3, p_uncond=0.5)
    c = train_recording(tmp_path / "c", steps=3, p_uncond=0.5, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_a_model_without_a_label_embedding_gets_its_labels_as_they_are():
    """No `LabelEmbedding`: no null label and nothing drawn; no labels: None."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(4)
    assert null_label_of(nn.Linear(2, 2)) is None
    assert null_label_of(RecordingDenoiser()) == CLASSES
    assert drop_for_guidance(y, 1.0, None, g) is y
    assert drop_for_guidance(None, 1.0, CLASSES, g) is None
    assert torch.equal(g.get_state(), torch.Generator().manual_seed(0).get_state())


def test_the_default_p_uncond_is_the_conditioning_layers():
    assert TrainConfig().p_uncond == P_UNCOND
    with pytest.raises(ValueError, match="p_uncond must be a number in"):
        TrainConfig(p_uncond=1.5)


def test_token_conditions_drop_to_the_null_sequence_at_the_share_p_uncond():
    """(B, L) token ids: each row becomes the null sequence with probability p_uncond from
    the same B uniforms as labels (the same rows drop), within 4 standard errors of
    p_uncond over B = 4000 rows; the other rows are kept as they are."""
    B, L = 4000, 5
    y = torch.randint(3, 30, (B, L), generator=torch.Generator().manual_seed(0))
    null = torch.tensor([1, 0, 0, 0, 0])
    dropped = drop_for_guidance(y, P_UNCOND, null, torch.Generator().manual_seed(1))
    labels = drop_for_guidance(torch.arange(B), P_UNCOND, B, torch.Generator().manual_seed(1))
    rows = (dropped == null).all(dim=1)
    assert torch.equal(rows, labels == B)
    assert torch.equal(dropped[~rows], y[~rows])
    se = math.sqrt(P_UNCOND * (1 - P_UNCOND) / B)
    assert abs(rows.double().mean().item() - P_UNCOND) <= 4 * se
    with pytest.raises(ValueError, match="token ids"):
        drop_for_guidance(torch.arange(4), 0.5, null, torch.Generator())


def test_the_null_condition_is_the_label_embeddings_or_a_null_sequence_buffer():
    class Captioned(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("null_condition", torch.tensor([1, 0, 0]), persistent=False)

    assert null_condition_of(RecordingDenoiser()) == CLASSES
    assert torch.equal(null_condition_of(Captioned()), torch.tensor([1, 0, 0]))
    assert null_condition_of(nn.Linear(2, 2)) is None
