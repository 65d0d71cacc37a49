"""Proofs for minidiff.process.solvers: the per-jump coefficients of the ODE and SDE
solvers (the noise level of the ODE, the SDE's rate, DDIM inversion, DPM-Solver++(2M) and
(3M)),
over arbitrary valid schedules and grids."""

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from minidiff.process import (
    SPACINGS,
    ddim_coefficients,
    ddim_inversion_coefficients,
    dpm_solver_pp_2m_coefficients,
    dpm_solver_pp_3m_coefficients,
    linear_schedule,
    ode_sigma,
    sampling_timesteps,
    sde_step_variance,
)
from tests.process.helpers import assert_close
from tests.strategies import schedules
from tests.tolerances import ATOL, ATOL_LOOSE, RTOL, RTOL_LOOSE

SCHEDULE = linear_schedule(1000)


@given(schedules(min_T=3, max_T=200, zero_terminal_snr=True), st.sampled_from(SPACINGS), st.data())
def test_dpm_solver_pp_tables_are_algorithm_2(schedule, spacing, data):
    """Coefficients of x_{t_i} = a x + b x0_{i-1} + c x0_{i-2}: the weights on the two
    predictions sum to alpha_{t_i} (1 - e^{-h_i}) (D_i is an extrapolation: weights
    1 + 1/(2r) and -1/(2r)); c = 0 on the first and the last jump (first order); all
    finite."""
    steps = data.draw(st.integers(3, schedule.T))
    grid = sampling_timesteps(schedule, steps, spacing)
    tables = dpm_solver_pp_2m_coefficients(schedule, grid)
    assert all(np.all(np.isfinite(v)) for v in (tables.a, tables.b, tables.c))
    assert tables.c[0] == 0 and tables.c[-1] == 0
    with np.errstate(invalid="ignore"):
        h = 0.5 * (schedule.log_snr[grid[1:]] - schedule.log_snr[grid[:-1]])
    total = schedule.sqrt_alpha_bar[grid[1:]] * -np.expm1(-h)
    np.testing.assert_allclose(tables.b + tables.c, total, rtol=RTOL_LOOSE, atol=ATOL_LOOSE)
    assert np.all(tables.c <= 0)


def test_ode_sigma_is_the_noise_level_of_y():
    """sigma_t^2 = (1 - alpha_bar_t) / alpha_bar_t, 0 at t = 0 (linear schedule, T = 1000)."""
    sigma = ode_sigma(SCHEDULE)
    expected = SCHEDULE.one_minus_alpha_bar / SCHEDULE.alpha_bar
    np.testing.assert_allclose(sigma**2, expected, rtol=RTOL_LOOSE, atol=0)
    assert sigma[0] == 0


@given(schedules(zero_terminal_snr=True), st.sampled_from(SPACINGS), st.data())
def test_sde_step_variance_is_one_minus_the_alpha_bar_ratio(schedule, spacing, data):
    """h = 1 - alpha_bar_t / alpha_bar_{t_prev} lies in [0, 1] for every jump of a grid, is
    beta_t on consecutive steps, and composes: 1 - h over a jump is the product of
    1 - beta_s over the steps it spans."""
    grid = sampling_timesteps(schedule, data.draw(st.integers(1, min(schedule.T, 50))), spacing)
    h = sde_step_variance(schedule, grid[:-1], grid[1:])
    assert np.all((h >= 0) & (h <= 1))
    full = np.arange(schedule.T, 0, -1)
    np.testing.assert_allclose(
        sde_step_variance(schedule, full, full - 1), schedule.beta[full], rtol=RTOL, atol=ATOL
    )
    jumps = zip(grid[:-1], grid[1:], strict=True)
    spans = [np.prod(schedule.alpha[s + 1 : t + 1]) for t, s in jumps]
    np.testing.assert_allclose(1 - h, spans, rtol=RTOL_LOOSE, atol=ATOL)


@given(schedules(), st.sampled_from(SPACINGS), st.data())
def test_ddim_inversion_step_is_the_eta_zero_step_solved_for_the_upper_state(
    schedule, spacing, data
):
    """With the same eps, the inversion step up t_prev -> t followed by the DDIM eta = 0
    step down t -> t_prev returns x_{t_prev}: the DDIM update x_{t_prev} = signal x0_hat +
    direction eps with x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)
    (Song et al. 2021, eqs. 12-13). The check divides by sqrt(alpha_bar_t), so schedules
    whose alpha_bar_T is below 1e-12 are left out; the bound is the round-off of that
    division."""
    assume(schedule.alpha_bar[-1] >= 1e-12)
    grid = sampling_timesteps(schedule, data.draw(st.integers(1, min(schedule.T, 50))), spacing)
    up = grid[::-1]
    t_prev, t = up[:-1], up[1:]
    scale, direction = ddim_inversion_coefficients(schedule, t_prev, t)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x_prev, eps = rng.normal(size=(2, len(t)))
    x_t = scale * x_prev + direction * eps
    down = ddim_coefficients(schedule, t, t_prev, eta=0.0)
    x0_hat = (x_t - schedule.sqrt_one_minus_alpha_bar[t] * eps) / schedule.sqrt_alpha_bar[t]
    back = down.signal * x0_hat + down.direction * eps
    size = 1.0 + np.abs(x_prev) + np.abs(eps) / schedule.sqrt_alpha_bar[t]
    assert_close(back, x_prev, rtol=0.0, atol=ATOL_LOOSE * size)


def _integral_of_quadratic(lam_s, lam_t, p):
    """int_{lam_s}^{lam_t} e^lam (p0 + p1 lam + p2 lam^2) dlam by 24-point Gauss-Legendre
    quadrature: exact to round-off for this analytic integrand over jumps of a few units."""
    nodes, weights = np.polynomial.legendre.leggauss(24)
    lam = lam_s + (nodes + 1) / 2 * (lam_t - lam_s)
    values = np.exp(lam) * (p[0] + p[1] * lam + p[2] * lam**2)
    return (lam_t - lam_s) / 2 * np.sum(weights * values)


@given(schedules(min_T=4, max_T=200), st.sampled_from(SPACINGS), st.data())
def test_dpm_solver_pp_3m_third_order_jumps_integrate_a_quadratic_exactly(schedule, spacing, data):
    """Where x0(lambda) is a quadratic in lambda = half log SNR, a third-order jump's
    b x0(lambda_{i-1}) + c x0(lambda_{i-2}) + d x0(lambda_{i-3}) equals the exact
    sigma_t int e^lambda x0(lambda) dlambda over the jump (quadrature), with
    a = sigma_t / sigma_s; orders run 1, 2, 3, ..., 3, 1 on a finite-SNR schedule. The
    tolerance is round-off on the weighted sum (a long jump after short ones extrapolates
    with large weights of both signs)."""
    steps = data.draw(st.integers(4, min(schedule.T, 30)))
    grid = sampling_timesteps(schedule, steps, spacing)
    p = data.draw(st.lists(st.floats(-2, 2), min_size=3, max_size=3))
    lam = 0.5 * schedule.log_snr[grid]  # +inf at the data
    coefficients = dpm_solver_pp_3m_coefficients(schedule, grid)
    np.testing.assert_array_equal(coefficients.order, [1, 2] + [3] * (steps - 3) + [1])
    sigma = schedule.sqrt_one_minus_alpha_bar
    np.testing.assert_allclose(
        coefficients.a, sigma[grid[1:]] / sigma[grid[:-1]], rtol=RTOL, atol=ATOL
    )
    for i in range(2, steps - 1):
        assume(lam[i + 1] - lam[i] < 8)  # one quadrature rule covers the jump
        weights = np.array([coefficients.b[i], coefficients.c[i], coefficients.d[i]])
        values = np.array([p[0] + p[1] * lam[j] + p[2] * lam[j] ** 2 for j in (i, i - 1, i - 2)])
        exact = sigma[grid[i + 1]] * _integral_of_quadratic(lam[i], lam[i + 1], p)
        round_off = 1e-12 * (np.abs(weights * values).sum() + abs(exact)) + ATOL
        np.testing.assert_allclose(weights @ values, exact, rtol=0, atol=round_off)


@given(schedules(min_T=2, max_T=200, zero_terminal_snr=True), st.sampled_from(SPACINGS), st.data())
def test_dpm_solver_pp_3m_is_2m_until_it_has_three_predictions(schedule, spacing, data):
    """The first two jumps, the last one and any jump after an infinite h (alpha_bar_T = 0)
    are DPM-Solver++(2M)'s: a, b, c equal and d = 0 there; a is the same on every jump."""
    grid = sampling_timesteps(schedule, data.draw(st.integers(1, min(schedule.T, 30))), spacing)
    two = dpm_solver_pp_2m_coefficients(schedule, grid)
    three = dpm_solver_pp_3m_coefficients(schedule, grid)
    lower = three.order < 3
    np.testing.assert_array_equal(three.a, two.a)
    for mine, theirs in ((three.b, two.b), (three.c, two.c)):
        np.testing.assert_array_equal(mine[lower], theirs[lower])
    assert np.all(three.d[lower] == 0) and three.order[0] == 1 and three.order[-1] == 1
    assert np.all(np.isfinite(three.b) & np.isfinite(three.c) & np.isfinite(three.d))
