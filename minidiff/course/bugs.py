"""The bug museum's exhibits: minidiff functions with a real bug of the ecosystem put back.

Each function here has the signature of the minidiff function it replaces and one
deliberate mistake, the one a project once shipped (`minidiff.course.museum` tells each
story and names the property test that catches it). A student diagnoses the mistake from the
failing test and fixes it; the fix is the library's own function. Nothing here is used by
the library.
"""

from __future__ import annotations

import numpy as np
import torch

from minidiff.process.indexing import as_float64, check_batch, check_t, over_batch
from minidiff.process.schedule import Schedule

__all__ = [
    "cosine_alpha_bar_without_square",
    "ddim_mean_var_with_alpha_bar_prev",
    "ddim_mean_var_with_final_alpha_bar_below_one",
    "drop_for_guidance_never",
    "frechet_distance_by_sqrtm",
    "gaussian_statistics_rowvar",
    "inception_train_mode",
    "normal_kl_without_minus_one",
    "posterior_mean_var_prev_padded_right",
    "sample_ancestral_with_variance_as_scale",
]


def posterior_mean_var_prev_padded_right(schedule: Schedule, x0, xt, t):
    """eq. 7 with alpha_bar_prev padded on the wrong side: alpha_bar_{t+1} where
    alpha_bar_{t-1} belongs."""
    x0, xt = as_float64(x0), as_float64(xt)
    t = check_t(t, schedule.T)
    check_batch(xt, t, "xt")
    alpha_bar = schedule.alpha_bar
    wrong_prev = np.append(alpha_bar[1:], alpha_bar[-1])  # the bug: shifted left, not right
    beta, prev, now = schedule.beta[t], wrong_prev[t], alpha_bar[t]
    coef_x0 = over_batch(np.sqrt(prev) * beta / (1 - now), x0.ndim)
    coef_xt = over_batch(np.sqrt(schedule.alpha[t]) * (1 - prev) / (1 - now), x0.ndim)
    var = over_batch(beta * (1 - prev) / (1 - now), x0.ndim)
    mean = coef_x0 * x0 + coef_xt * xt
    var = np.broadcast_to(var, mean.shape).copy()
    return mean, var, np.log(np.maximum(var, 1e-300))


def cosine_alpha_bar_without_square(u, s: float = 0.008):
    """Nichol & Dhariwal's f(u) with cos where cos^2 belongs."""
    return np.cos((np.asarray(u, dtype=np.float64) + s) / (1.0 + s) * np.pi / 2)


def _ddim_mean_var(schedule, x0, xt, t, t_prev, sigma, alpha_bar_t, alpha_bar_prev):
    x0, xt = as_float64(x0), as_float64(xt)
    t, t_prev = np.asarray(t), np.asarray(t_prev)
    sigma = over_batch(np.asarray(sigma, dtype=np.float64), xt.ndim)
    a_t, a_prev = over_batch(alpha_bar_t, xt.ndim), over_batch(alpha_bar_prev, xt.ndim)
    eps = (xt - np.sqrt(a_t) * x0) / np.sqrt(1 - a_t)
    mean = np.sqrt(a_prev) * x0 + np.sqrt(np.maximum(1 - a_prev - sigma**2, 0.0)) * eps
    return mean, np.broadcast_to(sigma**2, mean.shape).copy()


def ddim_mean_var_with_alpha_bar_prev(schedule: Schedule, x0, xt, t, t_prev, sigma):
    """DDIM's eq. 7 reading alpha_bar_{t-1} (the DDPM posterior's table) where alpha_bar_t
    belongs when it recovers the noise from x_t."""
    alpha_bar = schedule.alpha_bar
    return _ddim_mean_var(schedule, x0, xt, t, t_prev, sigma, alpha_bar[np.asarray(t) - 1],
                          alpha_bar[np.asarray(t_prev)])


def ddim_mean_var_with_final_alpha_bar_below_one(schedule: Schedule, x0, xt, t, t_prev, sigma):
    """DDIM's eq. 7 whose last jump lands on alpha_bar_1 instead of alpha_bar_0 = 1, so the
    'clean' sample keeps some noise."""
    alpha_bar = schedule.alpha_bar
    return _ddim_mean_var(schedule, x0, xt, t, t_prev, sigma, alpha_bar[np.asarray(t)],
                          alpha_bar[np.maximum(np.asarray(t_prev), 1)])


def sample_ancestral_with_variance_as_scale(denoiser, diffusion, shape_or_x_T, *, clip_x0=None,
                                            **options):
    """Algorithm 2 with the variance where the standard deviation belongs:
    x_{t-1} = mean + var z."""
    from minidiff.diffusion._sampling import open_frame

    frame = open_frame(diffusion, shape_or_x_T, options, desc="ancestral", clip_x0=clip_x0)
    x = frame.x_T
    for _, t, _ in frame.jumps():
        t_batch = torch.full((x.shape[0],), t, dtype=torch.int64, device=x.device)
        step = diffusion.p_mean_variance(denoiser(x, t_batch), x, t_batch, clip_x0)
        x = step["mean"] + step["var"] * frame.draw(x) if t > 1 else step["mean"]
        frame.record(x)
    return frame.result(x)


def drop_for_guidance_never(y, p_uncond, null_label, generator):
    """Condition dropout that never drops: the model never learns the unconditional
    prediction that classifier-free guidance subtracts."""
    return y


def inception_train_mode(self, mode: bool = True):
    """``FIDInception.train`` that obeys: batch norm then normalises with the statistics of
    each batch, and an image's features depend on the images beside it."""
    return torch.nn.Module.train(self, mode)


def gaussian_statistics_rowvar(features):
    """Mean and covariance with the axes swapped: numpy's default rowvar=True treats each of
    the N rows as a variable, giving an (N, N) covariance of samples."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.cov(features)


def frechet_distance_by_sqrtm(mean1, cov1, mean2, cov2) -> float:
    """d^2 with tr(sqrtm(C1 C2)): for singular covariances (fewer samples than feature
    dimensions) the matrix square root is complex or NaN."""
    mean1, mean2 = np.asarray(mean1, dtype=np.float64), np.asarray(mean2, dtype=np.float64)
    cov1, cov2 = np.asarray(cov1, dtype=np.float64), np.asarray(cov2, dtype=np.float64)
    import scipy.linalg  # scikit-learn's dependency

    root = scipy.linalg.sqrtm(cov1 @ cov2)
    return float(np.sum((mean1 - mean2) ** 2) + np.trace(cov1) + np.trace(cov2)
                 - 2 * np.trace(root))


def normal_kl_without_minus_one(mean1, log_var1, mean2, log_var2):
    """KL(N1 || N2) without its -1 per dimension: KL(p || p) = 1/2 instead of 0."""
    mean1, log_var1, mean2, log_var2 = (np.asarray(a, dtype=np.float64)
                                        for a in (mean1, log_var1, mean2, log_var2))
    return 0.5 * (log_var2 - log_var1 + np.exp(log_var1 - log_var2)
                  + (mean1 - mean2) ** 2 * np.exp(-log_var2))
