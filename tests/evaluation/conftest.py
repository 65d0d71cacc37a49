import pytest
import torch

# Small networks: one thread per test worker is fastest.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits_classifier():
    """The digits classifier with seed 0, fitted once for the whole test run (shared with
    the digits feature space of `minidiff.evaluation.judge`)."""
    from minidiff.evaluation.judge import digits_classifier

    return digits_classifier(seed=0)


@pytest.fixture(scope="session")
def digits_reference(digits_classifier):
    """The held-out test digits' statistics for `digits_classifier`."""
    from minidiff.evaluation import digits_reference

    return digits_reference(digits_classifier)
