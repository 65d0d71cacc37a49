"""Proofs for `GaussianDiffusion`: the torch coefficients against the NumPy layer, the
reverse step in every parameterization, and the training losses (Ho et al. 2020, eq. 14;
Nichol & Dhariwal 2021, sec. 3.1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidiff import process
from minidiff.diffusion import (
    LOSSES,
    PARAMETERIZATIONS,
    VARIANCES,
    GaussianDiffusion,
    TorchDenoiser,
)
from minidiff.diffusion.gaussian import HYBRID_VLB_WEIGHT
from minidiff.toy.mixture import GaussianMixture
from tests.diffusion.gaussian_helpers import (
    close,
    fixed_output,
    numpy_log_variance,
    numpy_target,
    numpy_x0,
    on_bins,
    tensor,
)
from tests.strategies import schedule_and_batched_t, schedules
from tests.tolerances import ATOL, ATOL_LOOSE, N_STANDARD_ERRORS, RTOL_LOOSE


# -- the coefficients against the NumPy layer ---------------------------------------------
@given(schedule_and_batched_t(low=0), st.integers(0, 2**32 - 1))
def test_q_sample_matches_process(schedule_t, seed):
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps in torch equals
    `minidiff.process.q_sample` (Ho et al. 2020, eq. 4) for any schedule and t in 0..T."""
    schedule, t = schedule_t
    rng = np.random.default_rng(seed)
    x0, eps = rng.normal(size=(2, t.shape[0], 3))
    diffusion = GaussianDiffusion(schedule)
    xt = diffusion.q_sample(tensor(x0), torch.from_numpy(t), tensor(eps))
    close(xt, process.q_sample(schedule, x0, t, eps))


@st.composite
def schedule_and_conditioned_t(draw, min_alpha_bar: float = 1e-8, max_batch: int = 4):
    """A schedule and (B,) steps t with alpha_bar_t >= ``min_alpha_bar``: with the default
    1e-8, recovering x0 from eps (a division by sqrt(alpha_bar_t)) loses at most about 4
    digits; a tiny positive value only excludes an alpha_bar_t that underflows to 0."""
    schedule = draw(schedules())
    t_max = max(1, int(np.sum(schedule.alpha_bar[1:] >= min_alpha_bar)))
    batch = draw(st.integers(1, max_batch))
    t = draw(st.lists(st.integers(1, t_max), min_size=batch, max_size=batch))
    return schedule, np.array(t, dtype=np.int64)


@given(
    schedule_and_conditioned_t(min_alpha_bar=1e-200),
    st.sampled_from(PARAMETERIZATIONS),
    st.sampled_from(VARIANCES),
    st.integers(0, 2**32 - 1),
)
def test_p_mean_variance_is_the_process_posterior_at_the_implied_x0(
    schedule_t, parameterization, variance, seed
):
    """p_theta(x_{t-1} | x_t) = N(mu_tilde_t(x_t, x0_hat), Sigma): its mean equals
    `process.posterior_mean_var` at the x0_hat that `process` derives from the prediction
    (Ho et al. 2020, eqs. 7 and 15; Salimans & Ho 2022), its x0 and eps are the `process`
    conversions, and its log variance is log beta_tilde_t (clipped at t = 1), log beta_t
    (beta_tilde_2 at t = 1) or their interpolation (Nichol & Dhariwal 2021, eq. 15). Steps
    where alpha_bar_t underflows to 0 are left out (x0 from eps is then undefined)."""
    schedule, t = schedule_t
    rng = np.random.default_rng(seed)
    B, D = t.shape[0], 3
    prediction, xt = rng.normal(size=(2, B, D))
    v = rng.uniform(-1.0, 1.0, size=(B, D))
    output = np.concatenate([prediction, v], axis=1) if variance == "learned_range" else prediction
    diffusion = GaussianDiffusion(schedule, parameterization, variance)
    model = diffusion.p_mean_variance(tensor(output), tensor(xt), torch.from_numpy(t))

    x0 = numpy_x0(schedule, parameterization, xt, t, prediction)
    mean, var, log_var_clipped = process.posterior_mean_var(schedule, x0, xt, t)
    scale = 1.0 + np.abs(x0)
    close(model["x0"], x0, atol=ATOL * scale)
    close(model["eps"], process.eps_from_x0(schedule, xt, t, x0), rtol=RTOL_LOOSE, atol=ATOL_LOOSE)
    close(model["mean"], mean, atol=ATOL * scale)
    log_var = np.broadcast_to(numpy_log_variance(schedule, variance, t, v), (B, D))
    close(model["log_var"], log_var)
    close(model["var"], np.exp(log_var))
    if variance == "fixed_small":
        close(model["log_var"], log_var_clipped)
        later = t >= 2  # beta_tilde_t itself where it is not clipped
        close(model["var"][torch.from_numpy(later)], var[later])


@given(
    schedule_and_conditioned_t(min_alpha_bar=1e-200),
    st.sampled_from(PARAMETERIZATIONS),
    st.sampled_from(VARIANCES),
    st.sampled_from([None, 0.5]),
    st.integers(0, 2**32 - 1),
)
def test_predict_x0_eps_is_x0_hat_and_eps_hat_of_the_reverse_step(
    schedule_t, parameterization, variance, clip_x0, seed
):
    """predict_x0_eps (what the DDIM, ODE and SDE samplers call) returns exactly the x0 and
    eps of p_mean_variance, with and without clipping; after clipping, eps_hat is
    `process.eps_from_x0` at the clipped x0_hat (so x_t = sqrt(alpha_bar_t) x0_hat +
    sqrt(1 - alpha_bar_t) eps_hat still holds)."""
    schedule, t = schedule_t
    rng = np.random.default_rng(seed)
    B, D = t.shape[0], 3
    prediction, xt = rng.normal(size=(2, B, D))
    output = prediction
    if variance == "learned_range":
        output = np.concatenate([prediction, rng.uniform(-1.0, 1.0, size=(B, D))], axis=1)
    diffusion = GaussianDiffusion(schedule, parameterization, variance)
    args = (tensor(output), tensor(xt), torch.from_numpy(t), clip_x0)
    x0, eps = diffusion.predict_x0_eps(*args)
    step = diffusion.p_mean_variance(*args)
    assert torch.equal(x0, step["x0"]) and torch.equal(eps, step["eps"])
    if clip_x0 is not None:
        assert float(x0.abs().max()) <= clip_x0
        expected = process.eps_from_x0(schedule, xt, t, x0.numpy())
        close(eps, expected, rtol=RTOL_LOOSE, atol=ATOL_LOOSE * (1.0 + np.abs(expected)))


def test_gather_takes_the_schedule_tables_by_attribute():
    """``gather(schedule.TABLE, t, like)`` is that table at t in like's dtype, shaped
    (B, 1, ...); an array that is not one of the diffusion's schedule tables (an equal copy
    included) raises ValueError naming what is expected."""
    schedule = process.linear_schedule(10)
    diffusion = GaussianDiffusion(schedule)
    like = torch.zeros(3, 2, 2, dtype=torch.float32)
    t = torch.tensor([1, 5, 10])
    values = diffusion.gather(schedule.sqrt_alpha_bar, t, like)
    assert values.shape == (3, 1, 1) and values.dtype == torch.float32
    expected = schedule.sqrt_alpha_bar[[1, 5, 10]].astype(np.float32)
    np.testing.assert_array_equal(values.reshape(3).numpy(), expected)
    with pytest.raises(ValueError, match="schedule"):
        diffusion.gather(schedule.sqrt_alpha_bar.copy(), t, like)
    with pytest.raises(ValueError, match="schedule"):
        diffusion.gather(process.linear_schedule(10).beta, t, like)


@given(schedule_and_conditioned_t(), st.sampled_from(VARIANCES), st.integers(0, 2**32 - 1))
def test_parameterizations_give_the_same_reverse_step_given_their_exact_targets(
    schedule_t, variance, seed
):
    """Given x_t formed from (x0, eps), the eps, x0 and v denoisers that output their exact
    target (eps, x0, v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x0) define the same
    p_theta(x_{t-1} | x_t): same mean, log variance, x0 and eps, to round-off (amplified
    by 1 / sqrt(alpha_bar_t) and 1 / sqrt(1 - alpha_bar_t) where a conversion divides:
    100 float64 epsilons times the size of the inputs)."""
    schedule, t = schedule_t
    rng = np.random.default_rng(seed)
    B, D = t.shape[0], 2
    x0, eps = rng.normal(size=(2, B, D))
    v = rng.uniform(-1.0, 1.0, size=(B, D))
    xt = process.q_sample(schedule, x0, t, eps)
    steps = {}
    for parameterization in PARAMETERIZATIONS:
        diffusion = GaussianDiffusion(schedule, parameterization, variance)
        output = numpy_target(schedule, parameterization, x0, t, eps)
        if variance == "learned_range":
            output = np.concatenate([output, v], axis=1)
        steps[parameterization] = diffusion.p_mean_variance(
            tensor(output), tensor(xt), torch.from_numpy(t)
        )
    amplify = 1.0 / np.minimum(schedule.sqrt_alpha_bar[t], schedule.sqrt_one_minus_alpha_bar[t])
    atol = 100 * np.finfo(np.float64).eps * (1.0 + np.abs(xt) + np.abs(x0)) * amplify[:, None]
    for parameterization in ("x0", "v"):
        for key in ("mean", "log_var", "x0", "eps"):
            close(steps[parameterization][key], steps["eps"][key].numpy(), rtol=0, atol=atol)


@given(schedule_and_batched_t(), st.integers(0, 2**32 - 1))
def test_learned_range_endpoints_are_the_fixed_variances(schedule_t, seed):
    """With a learned variance, v = -1 gives the fixed_small log variance log beta_tilde_t
    and v = +1 the fixed_large one log beta_t (Nichol & Dhariwal 2021, eq. 15)."""
    schedule, t = schedule_t
    xt = tensor(np.random.default_rng(seed).normal(size=(t.shape[0], 2)))
    t = torch.from_numpy(t)
    learned = GaussianDiffusion(schedule, "eps", "learned_range")
    for v, fixed in ((-1.0, "fixed_small"), (1.0, "fixed_large")):
        expected = GaussianDiffusion(schedule, "eps", fixed).log_variance(t, xt)
        close(learned.log_variance(t, xt, torch.full_like(xt, v)), expected.numpy())


# -- the losses ----------------------------------------------------------------------------
def test_hybrid_loss_is_simple_plus_lambda_vlb_and_vlb_trains_only_the_variance():
    """L_hybrid = L_simple + 0.001 L_vlb (Nichol & Dhariwal 2021, sec. 3.1), and through the
    stop-gradient on the mean the weights producing the prediction get exactly the
    gradient of L_simple, while the weights producing the variance get 0.001 times the
    gradient of L_vlb; under the pure "vlb" loss the prediction weights do get a gradient."""
    torch.manual_seed(0)
    B, D = 16, 3
    schedule = process.linear_schedule(20)
    x0 = tensor(on_bins(np.random.default_rng(0), (B, D)))
    eps = torch.randn(B, D, dtype=torch.float64)
    t = torch.arange(B) % schedule.T + 1  # t = 1 (the decoder) included
    net = torch.nn.Linear(D, 2 * D).double()

    def gradients(loss: str, key: str):
        diffusion = GaussianDiffusion(schedule, "eps", "learned_range", loss=loss)
        losses = diffusion.training_losses(lambda xt, t: net(xt), x0, t=t, eps=eps)
        net.zero_grad()
        losses[key].sum().backward()
        weight = net.weight.grad.clone()
        return losses, weight[:D], weight[D:]

    hybrid, hybrid_mean, hybrid_var = gradients("hybrid", "loss")
    _, simple_mean, simple_var = gradients("simple", "loss")
    _, vlb_mean, vlb_var = gradients("vlb", "vlb")
    close(hybrid["loss"], (hybrid["mse"] + HYBRID_VLB_WEIGHT * hybrid["vlb"]).detach().numpy())
    assert HYBRID_VLB_WEIGHT == 0.001
    close(hybrid_mean, simple_mean.numpy())
    assert torch.all(simple_var == 0)
    close(hybrid_var, HYBRID_VLB_WEIGHT * vlb_var.numpy())
    assert vlb_mean.abs().max() > 0 and vlb_var.abs().max() > 0


@pytest.mark.parametrize("variance", ["fixed_small", "fixed_large"])
def test_hybrid_loss_with_a_fixed_variance_has_the_gradient_of_the_simple_loss(variance):
    """With a fixed variance the vlb term of the hybrid loss has no trainable part (the
    mean is behind the stop-gradient), so the gradient is exactly that of L_simple."""
    torch.manual_seed(1)
    schedule = process.cosine_schedule(10)
    x0 = tensor(on_bins(np.random.default_rng(1), (8, 2)))
    net = torch.nn.Linear(2, 2).double()
    grads = []
    for loss in ("hybrid", "simple"):
        generator = torch.Generator().manual_seed(3)
        diffusion = GaussianDiffusion(schedule, "v", variance, loss=loss)
        net.zero_grad()
        diffusion.training_losses(lambda xt, t: net(xt), x0, generator=generator)[
            "loss"
        ].sum().backward()
        grads.append(net.weight.grad.clone())
    close(grads[0], grads[1].numpy())


@pytest.mark.parametrize("parameterization", PARAMETERIZATIONS)
def test_exact_oracle_minimises_the_expected_simple_loss(parameterization):
    """The exact Gaussian-mixture denoiser E[target | x_t] minimises E||target - f(x_t)||^2
    (Ho et al. 2020, eq. 14): for a perturbed f (scaled and shifted oracle),
    E[L(f)] - E[L(oracle)] = E||f - oracle||^2 > 0, the cross term
    2 E[(oracle - target)(f - oracle)] being 0. Monte Carlo over (x_0, t, eps), n = 4000:
    the mean difference lies within 4 standard errors of the mean of ||f - oracle||^2,
    which exceeds 4 standard errors."""
    n = 4000
    mixture = GaussianMixture.isotropic([0.3, 0.7], [[-1.5, 0.5], [1.0, -0.5]], [0.3, 0.6])
    schedule = process.linear_schedule(100, 1e-3, 0.1)
    rng = np.random.default_rng(42)
    x0 = tensor(mixture.sample(n, rng))
    oracle = TorchDenoiser(mixture.denoiser(schedule, parameterization))

    def perturbed(xt, t):
        return 1.5 * oracle(xt, t) + 0.2

    diffusion = GaussianDiffusion(schedule, parameterization)
    generator = torch.Generator().manual_seed(42)
    t = torch.randint(1, schedule.T + 1, (n,), generator=generator)
    eps = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    exact = diffusion.training_losses(oracle, x0, t=t, eps=eps)["mse"]
    other = diffusion.training_losses(perturbed, x0, t=t, eps=eps)["mse"]
    xt = diffusion.q_sample(x0, t, eps)
    gap = ((perturbed(xt, t) - oracle(xt, t)) ** 2).mean(dim=1)
    difference = other - exact
    cross = difference - gap
    cross_se = cross.std() / math.sqrt(n)
    assert abs(float(cross.mean())) <= N_STANDARD_ERRORS * float(cross_se)
    assert float(difference.mean()) > N_STANDARD_ERRORS * float(difference.std() / math.sqrt(n))


# -- randomness, dtypes, shapes ----------------------------------------------------------------
def test_training_losses_draw_t_uniformly_in_1_to_T_and_replay_with_the_generator():
    """Without t and eps the losses draw t in 1..T (every value occurs over many draws,
    none outside) and eps from the generator: the same seed gives the same losses."""
    schedule = process.linear_schedule(5)
    diffusion = GaussianDiffusion(schedule, loss="hybrid")
    x0 = tensor(on_bins(np.random.default_rng(0), (500, 2)))
    denoiser = fixed_output(torch.zeros(500, 2, dtype=torch.float64))
    first = diffusion.training_losses(denoiser, x0, generator=torch.Generator().manual_seed(5))
    again = diffusion.training_losses(denoiser, x0, generator=torch.Generator().manual_seed(5))
    assert set(first["t"].tolist()) == set(range(1, schedule.T + 1))
    for key in ("loss", "mse", "vlb", "t"):
        assert torch.equal(first[key], again[key])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_losses_and_bound_keep_the_input_dtype(dtype):
    """The losses and bound terms come out in the data's dtype, shaped (B,) and (B, T)."""
    schedule = process.cosine_schedule(8)
    diffusion = GaussianDiffusion(schedule, "eps", "learned_range", loss="hybrid")
    x0 = tensor(on_bins(np.random.default_rng(0), (4, 3, 2, 2))).to(dtype)
    net = torch.nn.Conv2d(3, 6, 1).to(dtype)
    losses = diffusion.training_losses(
        lambda xt, t: net(xt), x0, generator=torch.Generator().manual_seed(0)
    )
    for key in ("loss", "mse", "vlb"):
        assert losses[key].dtype == dtype and losses[key].shape == (4,)
        assert torch.all(torch.isfinite(losses[key]))
    bound = diffusion.vlb_terms(lambda xt, t: net(xt), x0)
    assert bound["terms"].shape == (4, 8) and bound["total"].dtype == dtype


def test_y_is_passed_to_the_denoiser_only_when_given():
    """A class label y reaches the denoiser as denoiser(xt, t, y); without y the
    denoiser is called as denoiser(xt, t), so unconditional denoisers need no y argument."""
    diffusion = GaussianDiffusion(process.linear_schedule(4))
    x0 = torch.zeros(3, 2, dtype=torch.float64)
    seen = []

    def conditional(xt, t, y):
        seen.append(y)
        return torch.zeros_like(xt)

    y = torch.tensor([0, 1, 2])
    diffusion.training_losses(conditional, x0, y=y)
    diffusion.vlb_terms(conditional, x0, y=y, num_bins=None)
    assert len(seen) == 1 + 4 and all(s is y for s in seen)
    diffusion.training_losses(lambda xt, t: torch.zeros_like(xt), x0)


# -- errors ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "choices"),
    [("parameterization", PARAMETERIZATIONS), ("variance", VARIANCES), ("loss", LOSSES)],
)
def test_unknown_options_are_rejected_listing_the_choices(name, choices):
    """An unknown option raises ValueError naming the option, the value and the choices."""
    with pytest.raises(ValueError, match=name) as info:
        GaussianDiffusion(process.linear_schedule(4), **{name: "bogus"})
    assert "bogus" in str(info.value) and str(choices) in str(info.value)


def _zeros(*shape: int) -> torch.Tensor:
    return torch.zeros(*shape, dtype=torch.float64)


# (call of a diffusion with loss "vlb", of one with a learned variance, message)
BAD_INPUTS = {
    "t = 0": (lambda d, learned: d.training_losses(fixed_output(_zeros(2, 4)), _zeros(2, 4), t=0),
              r"t must lie in \[1, T = 4\]"),
    "t = T + 1": (lambda d, learned: d.training_losses(fixed_output(_zeros(2, 4)), _zeros(2, 4),
                                                       t=5), r"t must lie in \[1, T = 4\]"),
    "output unlike x_t": (lambda d, learned: d.training_losses(fixed_output(_zeros(2, 3)),
                                                               _zeros(2, 4)), "does not match"),
    "p_mean_variance output unlike x_t": (
        lambda d, learned: d.p_mean_variance(_zeros(2, 3), _zeros(2, 4), 1), "does not match"),
    "odd channels, learned variance": (
        lambda d, learned: learned.training_losses(fixed_output(_zeros(2, 7)), _zeros(2, 4)),
        "even channel count"),
    "eps unlike x0": (lambda d, learned: d.training_losses(fixed_output(_zeros(2, 4)),
                                                           _zeros(2, 4), eps=_zeros(2, 3)),
                      "eps must have the shape"),
    "loss off the bins": (lambda d, learned: d.training_losses(
        fixed_output(_zeros(2, 4)), _zeros(2, 4) + 0.001, t=1), "bin centres"),
    "bound off the bins": (lambda d, learned: d.vlb_terms(fixed_output(_zeros(2, 4)),
                                                          _zeros(2, 4) + 0.001), "bin centres"),
    "bound outside [-1, 1]": (lambda d, learned: d.vlb_terms(fixed_output(_zeros(2, 4)),
                                                             _zeros(2, 4) + 2.0), r"\[-1, 1\]"),
    "one bin": (lambda d, learned: d.vlb_terms(fixed_output(_zeros(2, 4)), _zeros(2, 4),
                                               num_bins=1), "num_bins"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_inputs_raise_clear_errors(case):
    """t outside 1..T, an output shaped unlike x_t, an odd channel count with a learned
    variance, eps shaped unlike x0 and data off the 8-bit grid each raise ValueError."""
    schedule = process.linear_schedule(4)
    diffusion = GaussianDiffusion(schedule, loss="vlb")
    learned = GaussianDiffusion(schedule, variance="learned_range")
    call, match = BAD_INPUTS[case]
    with pytest.raises(ValueError, match=match):
        call(diffusion, learned)


BAD_Q_SAMPLE_INPUTS = {
    "eps of another shape": (np.ones((2, 3)), np.ones((2, 1))),
    "eps of another batch": (np.ones((2, 3)), np.ones((4, 3))),
    "complex x0": (np.ones((2, 3)) + 1j, np.ones((2, 3))),
    "complex eps": (np.ones((2, 3)), np.ones((2, 3)) + 0.5j),
}


@pytest.mark.parametrize("case", sorted(BAD_Q_SAMPLE_INPUTS))
def test_q_sample_refuses_the_same_bad_inputs_with_the_same_message_at_both_layers(case):
    """An eps of another shape (which torch would broadcast) or batch, or a complex x0
    or eps: `GaussianDiffusion.q_sample` raises the ValueError that
    `minidiff.process.q_sample` raises, word for word."""
    x0, eps = BAD_Q_SAMPLE_INPUTS[case]
    schedule = process.linear_schedule(10)
    with pytest.raises(ValueError) as numpy_error:
        process.q_sample(schedule, x0, np.array([1, 2]), eps)
    with pytest.raises(ValueError) as torch_error:
        GaussianDiffusion(schedule).q_sample(
            torch.from_numpy(x0), torch.tensor([1, 2]), torch.from_numpy(eps)
        )
    assert str(torch_error.value) == str(numpy_error.value)
