"""Proofs for minidiff.toy.plots: each plot runs under the Agg backend (set for the test
run by tests/conftest.py) and draws what it says."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from minidiff.process import linear_schedule
from minidiff.toy.datasets import eight_gaussians_mixture, make_dataset
from minidiff.toy.plots import plot_density, plot_samples, plot_trajectory
from minidiff.toy.sampling import sample_ancestral


@pytest.fixture(autouse=True)
def close_figures():
    """Close every figure a test opened."""
    yield
    plt.close("all")


def scatters(ax):
    return [c for c in ax.collections if isinstance(c, PathCollection)]


def test_plot_samples_draws_data_and_samples_on_one_axes():
    """plot_samples returns a Figure with one Axes holding two scatters (data, samples)
    with the given points, and the title."""
    rng = np.random.default_rng(0)
    data, samples = make_dataset("moons", 50, rng), make_dataset("moons", 30, rng)
    fig = plot_samples(data, samples, title="moons")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    drawn = scatters(ax)
    assert len(drawn) == 2
    np.testing.assert_array_equal(drawn[0].get_offsets(), data)
    np.testing.assert_array_equal(drawn[1].get_offsets(), samples)
    assert ax.get_title() == "moons"
    fig.canvas.draw()


def test_plot_samples_draws_on_a_given_axes():
    """With ax given, plot_samples draws there and returns that Axes' figure."""
    fig, axes = plt.subplots(1, 2)
    x = np.zeros((5, 2))
    assert plot_samples(x, x, ax=axes[1]) is fig
    assert len(scatters(axes[1])) == 2 and len(scatters(axes[0])) == 0


def test_plot_trajectory_draws_one_panel_per_step():
    """plot_trajectory(trajectory, ts, labels) has one Axes per index i in ts with one
    scatter of trajectory[i], titled by its label (the step t)."""
    schedule = linear_schedule(20)
    x_T = np.random.default_rng(1).standard_normal((40, 2))
    mixture = eight_gaussians_mixture()
    _, trajectory = sample_ancestral(
        mixture.denoiser(schedule), schedule, x_T, np.random.default_rng(2), return_trajectory=True
    )
    ts = [0, 10, 15, 20]  # the states at t = 20, 10, 5, 0 (trajectory[T - t] = x_t)
    fig = plot_trajectory(trajectory, ts, labels=[20 - i for i in ts])
    assert len(fig.axes) == 4
    for ax, i in zip(fig.axes, ts, strict=True):
        (drawn,) = scatters(ax)
        np.testing.assert_array_equal(drawn.get_offsets(), trajectory[i])
        assert ax.get_title() == f"t = {20 - i}"
    fig.canvas.draw()


def test_plot_trajectory_uses_given_axes_and_labels():
    """Given axes and labels (e.g. a DDIM grid), the panels go there with those titles."""
    fig, axes = plt.subplots(2, 1)
    trajectory = np.zeros((3, 4, 2))
    assert plot_trajectory(trajectory, [0, 2], axes=axes, labels=[100, 0]) is fig
    assert [ax.get_title() for ax in axes] == ["t = 100", "t = 0"]


def test_plot_density_draws_an_image_of_the_density():
    """plot_density shows exp(log p) on a grid as one image (max at a mode), plus a scatter
    when samples are given."""
    mixture = eight_gaussians_mixture()
    samples = mixture.sample(20, np.random.default_rng(3))
    fig = plot_density(mixture, resolution=50, samples=samples, title="density")
    (ax,) = fig.axes
    images = [a for a in ax.get_children() if isinstance(a, AxesImage)]
    assert len(images) == 1 and images[0].get_array().shape == (50, 50)
    assert np.all(images[0].get_array() >= 0)
    assert len(scatters(ax)) == 1
    fig.canvas.draw()


def test_plots_reject_bad_shapes():
    """Points must be (n, 2), trajectories (S, B, 2) with ts inside, the mixture 2-D."""
    from minidiff.toy.mixture import GaussianMixture

    with pytest.raises(ValueError, match="data"):
        plot_samples(np.zeros((5, 3)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="trajectory"):
        plot_trajectory(np.zeros((3, 4)), [0])
    with pytest.raises(ValueError, match="ts"):
        plot_trajectory(np.zeros((3, 4, 2)), [3])
    with pytest.raises(ValueError, match="mixture"):
        plot_density(GaussianMixture.isotropic([1.0], [[0.0]], 1.0))
