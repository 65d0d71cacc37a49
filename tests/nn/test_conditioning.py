"""Label dropout, the label embedding's null row and the masked mean."""

from __future__ import annotations

import math

import pytest
import torch

from minidiff.nn.conditioning import LabelEmbedding, drop_labels, masked_mean
from tests.tolerances import N_STANDARD_ERRORS


@pytest.mark.parametrize("p_uncond", [0.1, 0.2, 0.5])
def test_label_drop_share_matches_p_uncond(p_uncond):
    """Among n = 20,000 labels the dropped share lies within 4 standard errors
    sqrt(p (1 - p) / n) of p_uncond, and kept labels are unchanged."""
    n = 20_000
    y = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(0))
    dropped = drop_labels(y, p_uncond, 10, generator=torch.Generator().manual_seed(1))
    is_null = dropped == 10
    share = is_null.double().mean().item()
    assert abs(share - p_uncond) <= N_STANDARD_ERRORS * math.sqrt(p_uncond * (1 - p_uncond) / n)
    assert torch.equal(dropped[~is_null], y[~is_null])


def test_label_drop_end_points_and_errors():
    y = torch.arange(10)
    assert torch.equal(drop_labels(y, 0.0, 10), y)
    assert torch.equal(drop_labels(y, 1.0, 10), torch.full_like(y, 10))
    with pytest.raises(ValueError, match="p_uncond"):
        drop_labels(y, 1.5, 10)
    with pytest.raises(ValueError, match="y"):
        drop_labels(y.double(), 0.1, 10)


def test_label_embedding_has_a_null_row_and_checks_labels():
    """C classes get C + 1 rows; the null label C is valid, C + 1 and negatives are not."""
    embedding = LabelEmbedding(3, 5)
    assert embedding.weight.shape == (4, 5) and embedding.null_label == 3
    torch.testing.assert_close(embedding(embedding.null_labels(2)), embedding.weight[[3, 3]])
    embedding.check(torch.tensor([0, 3]), 2)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        embedding.check(torch.tensor([0, 4]), 2)
    with pytest.raises(ValueError, match="num_classes"):
        LabelEmbedding(0, 5)


def test_masked_mean_averages_only_valid_positions():
    context = torch.arange(12.0).reshape(1, 4, 3)
    mask = torch.tensor([[True, False, True, False]])
    torch.testing.assert_close(
        masked_mean(context, mask), (context[0, 0] + context[0, 2])[None] / 2
    )
    torch.testing.assert_close(masked_mean(context, None), context.mean(dim=1))
