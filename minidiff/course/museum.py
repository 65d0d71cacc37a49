"""The bug museum: real bugs from the history of diffusion code, each put back into the
minidiff function it concerns, with the property test of the project that catches it.

An `Exhibit` names the bug's source (repository and issue or pull request, checked at the
source), tells its story, names the function (``"module:name"`` or
``"module:Class.method"``), the buggy variant in `minidiff.course.bugs`, and the test
(a pytest node id) that fails with the bug and passes with the library's own function.
`installed` puts a variant in place of the function everywhere it was imported, for one
``with`` block.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from minidiff.course import bugs

__all__ = ["EXHIBITS", "Exhibit", "installed"]


@dataclass(frozen=True)
class Exhibit:
    """One museum piece.

    Attributes:
        name: short identifier.
        source: "owner/repository issue N" or "... pull request N".
        url: the issue or pull request.
        story: what went wrong, what it did, how it was found.
        target: the minidiff function, ``"module:name"`` or ``"module:Class.method"``.
        buggy: the variant with the bug.
        test: the node id of the property test that catches it.
    """

    name: str
    source: str
    url: str
    story: str
    target: str
    buggy: object
    test: str


def _resolve(target: str) -> tuple[object, str]:
    module_name, _, path = target.partition(":")
    owner = importlib.import_module(module_name)
    *classes, name = path.split(".")
    for cls in classes:
        owner = getattr(owner, cls)
    return owner, name


@contextlib.contextmanager
def installed(exhibit: Exhibit) -> Iterator[None]:
    """Put ``exhibit.buggy`` in place of its target in the defining module or class and in
    every loaded module that imported it by name (tests included); restore on exit."""
    owner, name = _resolve(exhibit.target)
    original = getattr(owner, name)
    replaced = [(owner, name)]
    for module in list(sys.modules.values()):
        for attribute, value in list(getattr(module, "__dict__", {}).items()):
            if value is original and module is not owner:
                replaced.append((module, attribute))
    try:
        for place, attribute in replaced:
            setattr(place, attribute, exhibit.buggy)
        yield
    finally:
        for place, attribute in replaced:
            setattr(place, attribute, original)


_GH = "https://github.com/"

EXHIBITS: tuple[Exhibit, ...] = (
    Exhibit(
        "posterior_prev_padded_right",
        "lucidrains/denoising-diffusion-pytorch issue 18",
        _GH + "lucidrains/denoising-diffusion-pytorch/issues/18",
        "A refactor built alphas_cumprod_prev by padding alphas_cumprod on the right instead "
        "of the left, so the posterior of eq. 7 used alpha_bar_{t+1} where alpha_bar_{t-1} "
        "belongs. A reader compared the line with its previous version; the author confirmed "
        "and fixed it. The posterior then no longer satisfies Bayes' rule.",
        "minidiff.process.posterior:posterior_mean_var",
        bugs.posterior_mean_var_prev_padded_right,
        "tests/process/test_posterior.py::test_posterior_satisfies_bayes_rule",
    ),
    Exhibit(
        "cosine_without_square",
        "lilianweng/lilianweng.github.io issue 9",
        _GH + "lilianweng/lilianweng.github.io/issues/9",
        "A widely read explanation of diffusion models wrote the cosine schedule's f(t) as "
        "cos((t/T + s)/(1 + s) pi/2), without the square of Nichol & Dhariwal (2021), eq. 17. "
        "A reader reported it against the paper. Without the square alpha_bar falls more "
        "slowly than the paper's curve and the schedule is not the one published.",
        "minidiff.process.schedule:cosine_alpha_bar",
        bugs.cosine_alpha_bar_without_square,
        "tests/process/test_schedule.py::test_cosine_schedule_matches_closed_form_where_unclipped",
    ),
    Exhibit(
        "ddim_alpha_bar_prev",
        "lucidrains/denoising-diffusion-pytorch issue 81",
        _GH + "lucidrains/denoising-diffusion-pytorch/issues/81",
        "The DDIM sampler read alphas_cumprod_prev (the DDPM posterior's table) where the "
        "equations of Song, Meng & Ermon (2021) need alphas_cumprod. A user noticed bent "
        "sampling trajectories on a 1-D task; the author checked against OpenAI's GLIDE code "
        "and agreed. The step then no longer keeps the forward marginals (DDIM, Lemma 1).",
        "minidiff.process.ddim:ddim_posterior_mean_var",
        bugs.ddim_mean_var_with_alpha_bar_prev,
        "tests/process/test_ddim.py::test_ddim_keeps_the_marginals",
    ),
    Exhibit(
        "ddim_final_alpha_bar_below_one",
        "Stability-AI/stablediffusion pull request 345",
        _GH + "Stability-AI/stablediffusion/pull/345",
        "The DDIM sampler's alphas_prev started with alphacums[0], close to but not 1, so the "
        "last jump 'to x_0' landed on alpha_bar_1 and the output kept a little noise. The pull "
        "request (open) proposes alpha_bar = 1 for x_0, which paper indexing gives for free.",
        "minidiff.process.ddim:ddim_posterior_mean_var",
        bugs.ddim_mean_var_with_final_alpha_bar_below_one,
        "tests/process/test_ddim.py::test_ddim_keeps_the_marginals",
    ),
    Exhibit(
        "variance_as_scale",
        "bjlkeng/sandbox issue 10",
        _GH + "bjlkeng/sandbox/issues/10",
        "A Gaussian in a bits-back coder was given its variance where its scale (standard "
        "deviation) belongs; the reporter found that the fix improved the result a lot, and "
        "the author confirmed and fixed it. In a sampler, "
        "x_{t-1} = mean + var z instead of mean + sqrt(var) z adds far too little noise and "
        "the samples collapse toward the modes.",
        "minidiff.diffusion.samplers:sample_ancestral",
        bugs.sample_ancestral_with_variance_as_scale,
        "tests/diffusion/test_samplers.py::"
        "test_ancestral_with_the_exact_denoiser_reproduces_the_mixture",
    ),
    Exhibit(
        "cfg_never_dropped",
        "lucidrains/DALLE2-pytorch issue 144",
        _GH + "lucidrains/DALLE2-pytorch/issues/144",
        "The decoder added the CLIP image embedding to the time embedding but never dropped it "
        "during training, so the 'unconditional' prediction that classifier-free guidance "
        "subtracts was never learned. A reader asked whether it was still classifier-free "
        "guidance; the author fixed it the same day.",
        "minidiff.training.conditioning:drop_for_guidance",
        bugs.drop_for_guidance_never,
        "tests/training/test_conditioning.py::"
        "test_the_share_of_null_labels_is_p_uncond_within_four_standard_errors",
    ),
    Exhibit(
        "inception_train_mode",
        "lucidrains/denoising-diffusion-pytorch issue 234",
        _GH + "lucidrains/denoising-diffusion-pytorch/issues/234",
        "The FID's Inception network was left in training mode, so batch norm normalised with "
        "each batch's statistics and the score differed from pytorch-fid's. A user found that "
        "adding .eval() reproduced the reference; the author agreed and fixed it.",
        "minidiff.evaluation.inception:FIDInception.train",
        bugs.inception_train_mode,
        "tests/evaluation/test_inception.py::"
        "test_features_do_not_depend_on_batch_or_order_even_in_train_mode",
    ),
    Exhibit(
        "fid_sqrtm_of_singular_covariance",
        "bioinf-jku/TTUR issue 4",
        _GH + "bioinf-jku/TTUR/issues/4",
        "FID computed with scipy's sqrtm gave NaN or complex numbers; a maintainer explained "
        "that with fewer samples than the 2048 feature dimensions the covariance is singular. "
        "A square root of the product of two PSD matrices through their own PSD roots stays "
        "real and exact for singular covariances.",
        "minidiff.evaluation.frechet:frechet_distance",
        bugs.frechet_distance_by_sqrtm,
        "tests/evaluation/test_frechet.py::test_distance_is_zero_for_identical_gaussians",
    ),
    Exhibit(
        "covariance_rowvar",
        "lucidrains/denoising-diffusion-pytorch issue 213",
        _GH + "lucidrains/denoising-diffusion-pytorch/issues/213",
        "Moving FID from numpy to torch replaced np.cov(x, rowvar=False) by torch.cov(x), "
        "which treats rows as variables: the covariance was taken over samples, not "
        "features, and FID came out between 0 and 1. A user found it; the author fixed it in "
        "1.5.7.",
        "minidiff.evaluation.frechet:gaussian_statistics",
        bugs.gaussian_statistics_rowvar,
        "tests/evaluation/test_frechet.py::test_gaussian_statistics_match_numpy_mean_and_cov",
    ),
    Exhibit(
        "kl_without_minus_one",
        "ericjang/draw issue 2",
        _GH + "ericjang/draw/issues/2",
        "The KL term of a DRAW implementation subtracted 1/2 once per step where eq. 12 of "
        "Gregor et al. (2015) subtracts it once per latent dimension, so the KL of two equal "
        "Gaussians was not 0 and grew with the latent size. A reader derived the fix; the "
        "author thanked them for the catch. Here the -1 is missing altogether.",
        "minidiff.process.likelihood:normal_kl",
        bugs.normal_kl_without_minus_one,
        "tests/process/test_likelihood.py::test_normal_kl_zero_exactly_for_equal_gaussians",
    ),
)
