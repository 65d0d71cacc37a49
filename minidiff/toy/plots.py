"""Plots of 2-D samples, reverse trajectories and mixture densities (matplotlib, imported
inside each function so that ``import minidiff`` stays fast; any backend, Agg included).

Each function draws on the axes it is given, or on a new figure, and returns the Figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from minidiff.toy.mixture import GaussianMixture

__all__ = ["plot_samples", "plot_trajectory", "plot_density"]


def _check_points(points, name: str) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n, 2), got {points.shape}")
    return points


def _scatter(ax, points: np.ndarray, **kw):
    return ax.scatter(points[:, 0], points[:, 1], s=2, linewidths=0, **kw)


def plot_samples(data, samples, *, ax=None, title: str | None = None):
    """Scatter the data (grey) and the samples (blue) on one square panel.

    Args:
        data: (n, 2) points of the data set.
        samples: (m, 2) points from a sampler.
        ax: the matplotlib Axes to draw on; a new figure when None.
        title: the panel's title.

    Returns:
        the Figure (its axes hold two scatter collections: data, then samples).
    """
    import matplotlib.pyplot as plt

    data = _check_points(data, "data")
    samples = _check_points(samples, "samples")
    if ax is None:
        fig, ax = plt.subplots(figsize=(4, 4))
    _scatter(ax, data, color="0.6", alpha=0.5, label="data")
    _scatter(ax, samples, color="tab:blue", alpha=0.7, label="samples")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=4, fontsize="small")
    if title is not None:
        ax.set_title(title)
    return ax.figure


def plot_trajectory(trajectory, ts: Sequence[int], *, axes=None, labels: Sequence | None = None):
    """The reverse process at several steps: one panel per entry of ``ts``.

    Args:
        trajectory: (S, B, 2) states in the order of sampling, as `sample_ancestral` and
            `sample_ddim` return them: ``trajectory[i]`` is the state at ``grid[i]`` of
            the sampler's grid (T, ..., 0 for the ancestral sampler).
        ts: indices into the first axis of ``trajectory`` (e.g. ``[0, S // 2, S - 1]``).
        axes: a sequence of ``len(ts)`` Axes; a new figure with one row when None.
        labels: the panel titles' time labels, the steps ``grid[ts]``; ``ts`` itself
            when None.

    Returns:
        the Figure (one scatter collection per panel).
    """
    import matplotlib.pyplot as plt

    trajectory = np.asarray(trajectory, dtype=np.float64)
    if trajectory.ndim != 3 or trajectory.shape[2] != 2:
        raise ValueError(f"trajectory must have shape (S, B, 2), got {trajectory.shape}")
    ts = [int(t) for t in ts]
    if not ts or any(not 0 <= t < trajectory.shape[0] for t in ts):
        raise ValueError(f"ts must be non-empty indices in 0..{trajectory.shape[0] - 1}, got {ts}")
    labels = ts if labels is None else list(labels)
    if len(labels) != len(ts):
        raise ValueError(f"labels must have one entry per t ({len(ts)}), got {len(labels)}")
    if axes is None:
        fig, axes = plt.subplots(1, len(ts), figsize=(2.5 * len(ts), 2.7), squeeze=False)
        axes = axes[0]
    elif len(axes) != len(ts):
        raise ValueError(f"axes must have one Axes per t ({len(ts)}), got {len(axes)}")
    limit = max(1.0, float(np.percentile(np.abs(trajectory[ts]), 99.5)))
    for ax, t, label in zip(axes, ts, labels, strict=True):
        _scatter(ax, trajectory[t], color="tab:blue", alpha=0.6)
        ax.set_title(f"t = {label}")
        ax.set_xlim(-limit, limit)
        ax.set_ylim(-limit, limit)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    return axes[0].figure


def plot_density(
    mixture: GaussianMixture,
    *,
    ax=None,
    extent: tuple[float, float, float, float] = (-3.0, 3.0, -3.0, 3.0),
    resolution: int = 200,
    samples=None,
    title: str | None = None,
):
    """The density of a 2-D Gaussian mixture as an image, optionally with samples on top.

    Args:
        mixture: a mixture with D = 2.
        ax: the Axes to draw on; a new figure when None.
        extent: (x_min, x_max, y_min, y_max) of the image.
        resolution: the number of grid points per side.
        samples: optional (n, 2) points to scatter over the density.
        title: the panel's title.

    Returns:
        the Figure (its axes hold one image, and one scatter collection with ``samples``).
    """
    import matplotlib.pyplot as plt

    if not isinstance(mixture, GaussianMixture) or mixture.D != 2:
        raise ValueError(f"mixture must be a 2-D GaussianMixture, got {mixture!r}")
    if isinstance(resolution, bool) or int(resolution) != resolution or resolution < 2:
        raise ValueError(f"resolution must be an integer >= 2, got {resolution!r}")
    x_min, x_max, y_min, y_max = (float(v) for v in extent)
    if not (x_min < x_max and y_min < y_max):
        raise ValueError(
            f"extent must be (x_min, x_max, y_min, y_max) with min < max, got {extent}"
        )
    grid_x, grid_y = np.meshgrid(
        np.linspace(x_min, x_max, int(resolution)), np.linspace(y_min, y_max, int(resolution))
    )
    points = np.stack([grid_x.ravel(), grid_y.ravel()], axis=1)  # (R * R, 2)
    density = np.exp(mixture.log_prob(points)).reshape(grid_x.shape)
    if ax is None:
        fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(density, origin="lower", extent=(x_min, x_max, y_min, y_max), cmap="viridis")
    if samples is not None:
        _scatter(ax, _check_points(samples, "samples"), color="white", alpha=0.6)
    if title is not None:
        ax.set_title(title)
    return ax.figure
