"""Tests of minidiff.diffusion.oracle: the exact mixture answers in torch."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidiff.diffusion.oracle import noised_mixture_log_joint
from tests.strategies import gaussian_mixtures, schedules
from tests.tolerances import ATOL_LOOSE, RTOL_LOOSE


@given(schedules(max_T=50), gaussian_mixtures(), st.data())
def test_noised_mixture_log_joint_is_the_numpy_noised_mixture(schedule, mixture, data):
    """For any schedule, mixture and step t, logsumexp_k of the torch log joint is
    log q_t(x_t) of `GaussianMixture.noised(schedule, t)` and its log_softmax the NumPy
    responsibilities p(k | x_t), in float64."""
    t = data.draw(st.integers(0, schedule.T), label="t")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    x = np.random.default_rng(seed).normal(size=(5, mixture.D)) * 2.0
    alpha_bar = torch.full((5,), float(schedule.alpha_bar[t]), dtype=torch.float64)
    log_joint = noised_mixture_log_joint(mixture, alpha_bar, torch.from_numpy(x))
    noised = mixture.noised(schedule, t)
    np.testing.assert_allclose(torch.logsumexp(log_joint, dim=1).numpy(), noised.log_prob(x),
                               rtol=RTOL_LOOSE, atol=ATOL_LOOSE)  # fmt: skip
    posterior = torch.softmax(log_joint, dim=1).numpy()
    np.testing.assert_allclose(posterior, noised.responsibilities(x),
                               rtol=RTOL_LOOSE, atol=ATOL_LOOSE)  # fmt: skip
