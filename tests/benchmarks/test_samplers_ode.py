"""Proofs for benchmarks/samplers_ode.py: its reference, the RK4 solution of the
probability-flow ODE, is the exact solution where that is known in closed form."""

import numpy as np

from benchmarks.samplers_ode import exact_solution, mixture_8d, rms_error
from minidiff.process import cosine_schedule, linear_schedule
from minidiff.toy.mixture import GaussianMixture


def test_reference_solution_is_the_exact_flow_for_gaussian_data():
    """For x_0 ~ N(mu, s^2 I) the probability-flow ODE maps x_T to
    mu + s (x_T - sqrt(alpha_bar_T) mu) / sqrt(alpha_bar_T s^2 + 1 - alpha_bar_T) (the
    Gaussian's flow is affine); the benchmark's RK4 reference (step 0.05 in log sigma) lands
    there within 3e-7, on the linear and the cosine schedule: what is left is the stop at
    sigma = 1e-4, whose denoising step is off by about sigma^2 / (2 s^2) = 1.3e-7 relative,
    far below any sampler's error in the benchmark."""
    mu, s = np.array([0.5, -1.0, 2.0]), 0.2
    gaussian = GaussianMixture.isotropic([1.0], [mu], s)
    x_T = np.random.default_rng(0).standard_normal((10, 3))
    for schedule in (linear_schedule(1000), cosine_schedule(1000)):
        alpha_bar = schedule.alpha_bar[-1]
        exact = mu + s * (x_T - np.sqrt(alpha_bar) * mu) / np.sqrt(
            alpha_bar * s * s + 1 - alpha_bar
        )
        reference = exact_solution(gaussian, schedule, x_T, ds=0.05)
        np.testing.assert_allclose(reference, exact, rtol=0, atol=3e-7)


def test_benchmark_mixture_is_eight_dimensional_and_the_error_is_an_rms_norm():
    """The mixture has 8 components in 8 dimensions; rms_error is the root mean square of
    the per-point Euclidean distance (3-4-5 triangles give 5)."""
    mixture = mixture_8d()
    assert (mixture.K, mixture.D) == (8, 8)
    a = np.zeros((4, 2))
    b = np.tile([3.0, 4.0], (4, 1))
    assert rms_error(a, b) == 5.0
