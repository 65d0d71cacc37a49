"""Conversions between eps, x0, v and the score (minidiff.process.parameterization).

With x_t = s x_0 + n eps, s = sqrt(alpha_bar_t), n = sqrt(1 - alpha_bar_t), s^2 + n^2 = 1
(Ho et al. 2020, eq. 4). (x_0, eps) -> (x_t, v) with v = s eps - n x_0 is a rotation
(Salimans & Ho 2022), so conversions through v are as accurate as their inputs. Solving
x_t = s x_0 + n eps for x_0 divides by s and for eps divides by n: their round-off grows
like |x_t| / s and |x_t| / n, and the tests bound it so (``helpers.assert_close``). They
need alpha_bar_t to be a normal float (s > 0 with digits to spare).
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from minidiff.process import (
    eps_from_score,
    eps_from_v,
    eps_from_x0,
    linear_schedule,
    q_mean_var,
    q_sample,
    score_from_eps,
    v_from_eps,
    v_from_x0_eps,
    x0_from_eps,
    x0_from_v,
)
from tests.process.helpers import assert_close
from tests.strategies import arrays, schedule_and_batched_t, schedule_and_t
from tests.tolerances import ATOL, RTOL, RTOL_LOOSE

TINY = np.finfo(np.float64).tiny


def _scales(schedule, t):
    return np.sqrt(schedule.alpha_bar[t]), np.sqrt(schedule.one_minus_alpha_bar[t])


@given(schedule_and_t(low=1), arrays(), arrays())
def test_x0_eps_round_trip(schedule_t, x0, eps):
    """On x_t = s x_0 + n eps: x0_from_eps(x_t, eps) = x_0 and eps_from_x0(x_t, x_0) = eps,
    and converting eps -> x0 -> eps (or x0 -> eps -> x0) at a fixed x_t gives back the
    input. Round-off is bounded by ATOL (1 + |x_t| + |x_0| + |eps|) / (s n)."""
    schedule, t = schedule_t
    assume(schedule.alpha_bar[t] >= TINY)
    s, n = _scales(schedule, t)
    xt = q_sample(schedule, x0, t, eps)
    roundoff = ATOL * (1.0 + np.abs(xt) + np.abs(x0) + np.abs(eps)) / (s * n)
    assert_close(x0_from_eps(schedule, xt, t, eps), x0, rtol=RTOL, atol=roundoff)
    assert_close(eps_from_x0(schedule, xt, t, x0), eps, rtol=RTOL, atol=roundoff)
    other = eps[::-1]  # any prediction, not only the true noise
    x0_hat = x0_from_eps(schedule, xt, t, other)
    assert_close(eps_from_x0(schedule, xt, t, x0_hat), other, rtol=RTOL, atol=roundoff)
    eps_hat = eps_from_x0(schedule, xt, t, x0[::-1])
    assert_close(x0_from_eps(schedule, xt, t, eps_hat), x0[::-1], rtol=RTOL, atol=roundoff)


@given(schedule_and_t(low=1, zero_terminal_snr=True), arrays(), arrays())
def test_v_is_a_rotation_of_x0_and_eps(schedule_t, x0, eps):
    """(x_t, v) = (s x_0 + n eps, s eps - n x_0) rotates (x_0, eps), so x0_from_v and
    eps_from_v invert it to round-off at every t, even at alpha_bar_T = 0:
    x_0 = s x_t - n v and eps = n x_t + s v (Salimans & Ho 2022)."""
    schedule, t = schedule_t
    xt = q_sample(schedule, x0, t, eps)
    v = v_from_x0_eps(schedule, x0, t, eps)
    roundoff = ATOL * (1.0 + np.abs(x0) + np.abs(eps))
    assert_close(x0_from_v(schedule, xt, t, v), x0, rtol=RTOL, atol=roundoff)
    assert_close(eps_from_v(schedule, xt, t, v), eps, rtol=RTOL, atol=roundoff)
    s, n = _scales(schedule, t)
    np.testing.assert_allclose(s**2 + n**2, 1.0, rtol=RTOL, atol=ATOL)


@given(schedule_and_t(low=1), arrays(), arrays())
def test_v_from_eps_agrees_with_v_from_x0_eps(schedule_t, x0, eps):
    """On x_t = q_sample(x_0, eps): v_from_eps(x_t, eps) = (eps - n x_t) / s equals
    v_from_x0_eps(x_0, eps) = s eps - n x_0; and eps -> v -> eps at a fixed x_t gives back
    eps. The first divides by s: round-off ATOL (1 + |x_t| + |x_0| + |eps|) / s."""
    schedule, t = schedule_t
    assume(schedule.alpha_bar[t] >= TINY)
    s, _ = _scales(schedule, t)
    xt = q_sample(schedule, x0, t, eps)
    roundoff = ATOL * (1.0 + np.abs(xt) + np.abs(eps) + np.abs(x0)) / s
    v = v_from_eps(schedule, xt, t, eps)
    assert_close(v, v_from_x0_eps(schedule, x0, t, eps), rtol=RTOL, atol=roundoff)
    other = eps[::-1]
    back = eps_from_v(schedule, xt, t, v_from_eps(schedule, xt, t, other))
    assert_close(back, other, rtol=RTOL, atol=ATOL * (1.0 + np.abs(xt) + np.abs(other)))


@given(schedule_and_t(low=1, zero_terminal_snr=True), arrays(), arrays())
def test_score_is_gradient_of_log_marginal_and_round_trips(schedule_t, x0, xt):
    """score_from_eps(x_t, eps) = -eps / n is the score of q(x_t | x_0),
    grad_x log N(x; s x_0, n^2) = -(x - s x_0) / n^2, when eps = eps_from_x0(x_t, x_0)
    (Vincent 2011); score -> eps -> score and eps -> score -> eps round-trip."""
    schedule, t = schedule_t
    mean, var = q_mean_var(schedule, x0, t)
    eps = eps_from_x0(schedule, xt, t, x0)
    score = score_from_eps(schedule, xt, t, eps)
    _, n = _scales(schedule, t)
    roundoff = ATOL * (1.0 + np.abs(xt) + np.abs(x0)) / n**2
    assert_close(score, -(xt - mean) / var, rtol=RTOL, atol=roundoff)
    np.testing.assert_allclose(eps_from_score(schedule, xt, t, score), eps, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(
        score_from_eps(schedule, xt, t, eps_from_score(schedule, xt, t, x0)),
        x0,
        rtol=RTOL,
        atol=ATOL,
    )


@given(schedule_and_batched_t(low=1), st.data())
def test_batched_t_equals_per_sample_results(schedule_t, data):
    """A batch of steps t: (B,) broadcasts over x_t: (B, ...): every conversion gives, for
    each sample b, its result at the scalar t[b]."""
    schedule, t = schedule_t
    assume(schedule.alpha_bar[t].min() >= TINY)
    B = t.shape[0]
    xt, other = data.draw(arrays((B, 2, 3))), data.draw(arrays((B, 2, 3)))
    conversions = [
        x0_from_eps, eps_from_x0, v_from_eps, v_from_x0_eps, x0_from_v, eps_from_v,
        score_from_eps, eps_from_score,
    ]  # fmt: skip
    for convert in conversions:
        batched = convert(schedule, xt, t, other)
        for b in range(B):
            single = convert(schedule, xt[b], int(t[b]), other[b])
            np.testing.assert_allclose(
                batched[b], single, rtol=RTOL, atol=ATOL, err_msg=convert.__name__
            )


@pytest.mark.parametrize("bad_t", [0, -1, 11, np.array([1, 11])])
def test_t_out_of_range_raises_value_error(bad_t):
    """Conversions from a noisy x_t take 1 <= t <= T (v_from_x0_eps also t = 0)."""
    schedule, x = linear_schedule(10), np.zeros((2, 3))
    with pytest.raises(ValueError, match="out of range"):
        x0_from_eps(schedule, x, bad_t, x)
    with pytest.raises(ValueError, match="out of range"):
        score_from_eps(schedule, x, bad_t, x)


@pytest.mark.parametrize("bad_t", [1.5, np.array([1.0, 2.0]), False])
def test_non_integer_t_raises_type_error(bad_t):
    """A step that is not an integer raises TypeError."""
    schedule, x = linear_schedule(10), np.zeros((2, 3))
    with pytest.raises(TypeError):
        eps_from_v(schedule, x, bad_t, x)


@given(schedule_and_t(low=1), arrays(), arrays(), arrays())
def test_prediction_errors_weight_each_other_by_the_snr(schedule_t, x0, eps, eps_hat):
    """For any noise prediction eps_hat at x_t = s x_0 + n eps, the implied x0_hat and
    v_hat satisfy, elementwise, (x0_hat - x_0)^2 = (eps_hat - eps)^2 / SNR(t) and
    (v_hat - v)^2 = (1 + SNR(t)) (x0_hat - x_0)^2 (Salimans & Ho 2022, sec. 4): the choice
    of target is a choice of loss weight. Round-off is bounded like the conversions'."""
    schedule, t = schedule_t
    assume(schedule.alpha_bar[t] >= 1e-100)
    s, n = _scales(schedule, t)
    snr = schedule.snr[t]
    xt = q_sample(schedule, x0, t, eps)
    x0_hat = x0_from_eps(schedule, xt, t, eps_hat)
    v_hat = v_from_eps(schedule, xt, t, eps_hat)
    v = v_from_x0_eps(schedule, x0, t, eps)
    scale = 1.0 + np.abs(xt) + np.abs(x0) + np.abs(eps) + np.abs(eps_hat)
    # each difference carries ATOL * scale / (s n) of round-off; squares double it
    roundoff = ATOL * scale / (s * n)
    x0_error = x0_hat - x0
    bound = 2 * roundoff * (np.abs(x0_error) + roundoff)
    assert_close(x0_error**2, (eps_hat - eps) ** 2 / snr, rtol=RTOL_LOOSE, atol=bound)
    v_bound = (1 + snr) * bound + 2 * roundoff * (np.abs(v_hat - v) + roundoff)
    assert_close((v_hat - v) ** 2, (1 + snr) * x0_error**2, rtol=RTOL_LOOSE, atol=v_bound)
