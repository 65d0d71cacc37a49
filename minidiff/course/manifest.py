"""The exercises of the course: where each solution sits, what it implements, and the tests
that grade it.

Every exercise is a region of the package between ``### BEGIN SOLUTION`` and
``### END SOLUTION`` (nbgrader's markers) inside one function. The student version
(`minidiff.course.student`) replaces the region with a ``raise NotImplementedError``
naming the exercise, what to implement and the equation; the grader
(`minidiff.course.grade`) runs the exercise's tests against a student's package.

``visible`` tests ship with the student version; ``hidden`` tests are left out of it and run
only when grading. Tests are pytest node ids relative to the repository root. ``requires``
pairs another exercise with a graded test of this one that calls its function too (found
by removing each exercise alone): removing that exercise makes the test fail as well.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EXERCISES", "Exercise", "exercise", "exercises_of_layer", "resolve_exercises"]


@dataclass(frozen=True)
class Exercise:
    """One exercise: a marked region of one function.

    Attributes:
        name: short identifier, used on the command line.
        layer: the layer of the package (0-5, `DESIGN.md`).
        file: the module, relative to the repository root.
        function: the function or method (``Class.method``) holding the region.
        task: what to implement, one line.
        equation: the source of the formula (paper, equation or algorithm).
        points: the exercise's weight in the grade.
        visible: test node ids shipped with the student version.
        hidden: test node ids kept by the instructor.
        tutorial: the notebook (under ``tutorials/``) that teaches it.
        requires: (exercise, test) pairs: this exercise's graded test that also calls the
            other exercise's function.
    """

    name: str
    layer: int
    file: str
    function: str
    task: str
    equation: str
    points: int
    visible: tuple[str, ...]
    hidden: tuple[str, ...]
    tutorial: str
    requires: tuple[tuple[str, str], ...] = ()

    @property
    def tests(self) -> tuple[str, ...]:
        """Every graded test, visible first."""
        return self.visible + self.hidden

    @property
    def message(self) -> str:
        """The text of the student version's NotImplementedError."""
        return f"{self.name}: {self.task}, {self.equation}"


_T01 = "01_markov_chains_and_the_forward_process.ipynb"
_T02 = "02_toy_diffusion_in_numpy.ipynb"
_T04 = "04_ddpm_in_pytorch.ipynb"
_T05 = "05_samplers.ipynb"
_T09 = "09_guidance_and_text_to_image.ipynb"
_T12 = "12_discrete_diffusion_for_text.ipynb"

_FINITE = "tests/markov/test_finite.py::"
_FORWARD = "tests/process/test_forward.py::"
_POSTERIOR = "tests/process/test_posterior.py::"
_DDIM = "tests/process/test_ddim.py::"
_MLP = "tests/toy/test_mlp.py::"
_OPTIM = "tests/toy/test_optim.py::"
_TRAIN = "tests/toy/test_train.py::"
_SAMPLERS = "tests/diffusion/test_samplers.py::"
_BLOCKS = "tests/nn/test_blocks.py::"
_GUIDANCE = "tests/applications/test_guidance.py::"
_D3PM = "tests/discrete/test_d3pm.py::"

EXERCISES: tuple[Exercise, ...] = (
    Exercise(
        "n_step_kernel", 0, "minidiff/markov/finite.py", "n_step_kernel",
        "return the n-step transition matrix P^n", "Chapman-Kolmogorov, P^(m+n) = P^m P^n",
        2,
        (_FINITE + "test_n_step_kernel_equals_repeated_multiplication",),
        (_FINITE + "test_n_step_kernel_satisfies_chapman_kolmogorov",),
        _T01,
    ),
    Exercise(
        "stationary_law", 0, "minidiff/markov/finite.py", "stationary_distribution",
        "solve pi = pi P with sum(pi) = 1 on the closed class, zero elsewhere",
        "the stationary equation pi P = pi (Norris 1997, sec. 1.7)", 3,
        (_FINITE + "test_stationary_law_is_invariant_and_sums_to_one",),
        (
            _FINITE + "test_stationary_law_puts_no_mass_on_transient_states",
            _FINITE + "test_stationary_law_of_a_weighted_random_walk_is_proportional_to_row_sums",
        ),
        _T01,
    ),
    Exercise(
        "q_sample", 1, "minidiff/process/forward.py", "q_sample",
        "return x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps",
        "Ho et al. (2020), eq. 4", 2,
        (_FORWARD + "test_q_sample_is_reparameterised_marginal",),
        (_FORWARD + "test_batched_t_equals_per_sample_results",),
        _T01,
    ),
    Exercise(
        "posterior", 1, "minidiff/process/posterior.py", "posterior_mean_var",
        "return the mean, variance and clipped log variance of q(x_{t-1} | x_t, x_0)",
        "Ho et al. (2020), eqs. 6-7", 3,
        (_POSTERIOR + "test_posterior_satisfies_bayes_rule",),
        (
            _POSTERIOR + "test_posterior_at_t1_is_point_mass_at_x0",
            _POSTERIOR + "test_posterior_averaged_over_xt_gives_marginal",
        ),
        _T01,
    ),
    Exercise(
        "ddim_step", 1, "minidiff/process/ddim.py", "ddim_posterior_mean_var",
        "return the mean and variance of q_sigma(x_{t_prev} | x_t, x_0)",
        "Song, Meng & Ermon (2021), eq. 7", 3,
        (_DDIM + "test_ddim_keeps_the_marginals",),
        (_DDIM + "test_ddim_mean_is_the_coefficients_applied_to_x0_and_eps",),
        _T05,
    ),
    Exercise(
        "mlp_backward", 2, "minidiff/toy/mlp.py", "MLP.backward",
        "back-propagate dL/d(out) through the layers into every weight and bias",
        "the chain rule for z = h W + b, h = act(z)", 3,
        (_MLP + "test_backward_matches_central_differences_for_every_parameter",),
        (_MLP + "test_backward_input_gradient_matches_central_differences",),
        _T02,
    ),
    Exercise(
        "adam", 2, "minidiff/toy/optim.py", "Adam.step",
        "update the moments and the parameters with bias-corrected steps",
        "Kingma & Ba (2015), Algorithm 1", 3,
        (_OPTIM + "test_adam_first_step_worked_example",),
        (
            _OPTIM + "test_adam_matches_hand_computation_on_a_quadratic",
            _OPTIM + "test_adam_first_step_is_lr_times_sign_of_gradient",
        ),
        _T02,
    ),
    Exercise(
        "training_step", 2, "minidiff/toy/train.py", "ddpm_loss_and_grads",
        "compute L_simple on one minibatch and its gradients",
        "Ho et al. (2020), eq. 14 and Algorithm 1", 3,
        (_TRAIN + "test_ddpm_loss_is_l_simple_and_its_gradient_matches_finite_differences",),
        (_TRAIN + "test_training_is_deterministic_given_the_seed",),
        _T02,
        requires=tuple(
            (name, _TRAIN + test)
            for name, tests in (
                ("q_sample", ("test_ddpm_loss_is_l_simple_and_its_gradient_matches_finite_"
                              "differences", "test_training_is_deterministic_given_the_seed")),
                ("mlp_backward", ("test_ddpm_loss_is_l_simple_and_its_gradient_matches_finite_"
                                  "differences", "test_training_is_deterministic_given_the_seed")),
                ("adam", ("test_training_is_deterministic_given_the_seed",)),
            )
            for test in tests
        ),
    ),
    Exercise(
        "ancestral_loop", 3, "minidiff/diffusion/samplers.py", "sample_ancestral",
        "loop t = T..1: x_{t-1} = mean + sqrt(var) z, with no noise at t = 1",
        "Ho et al. (2020), Algorithm 2", 3,
        (_SAMPLERS + "test_ancestral_with_the_exact_denoiser_reproduces_the_mixture",),
        (_SAMPLERS + "test_ancestral_matches_the_numpy_sampler",),
        _T04,
        # the NumPy sampler it is compared with uses the posterior
        requires=(("posterior", _SAMPLERS + "test_ancestral_matches_the_numpy_sampler"),),
    ),
    Exercise(
        "resblock", 3, "minidiff/nn/blocks.py", "ResBlock.forward",
        "norm, SiLU, conv, add the time projection, norm, SiLU, dropout, conv, add the shortcut",
        "Ho et al. (2020), appendix B", 2,
        (_BLOCKS + "test_resblock_adds_a_per_channel_time_shift_after_conv1",),
        (_BLOCKS + "test_resblock_shapes_and_skip_projection",),
        _T04,
    ),
    Exercise(
        "attention", 3, "minidiff/nn/blocks.py", "AttentionBlock.forward",
        "x + proj(softmax(q k^T / sqrt(C)) v) over the H x W positions",
        "Ho et al. (2020), appendix B; Vaswani et al. (2017), eq. 1", 2,
        (_BLOCKS + "test_attention_matches_scaled_dot_product_attention",),
        (_BLOCKS + "test_attention_is_equivariant_to_spatial_permutations",),
        _T04,
    ),
    Exercise(
        "guided_output", 5, "minidiff/applications/guidance.py", "guided_output",
        "return out_null + s (out_y - out_null)", "Ho & Salimans (2022), eq. 6", 2,
        (_GUIDANCE + "test_scale_one_is_the_conditional_and_zero_the_unconditional_prediction",),
        (_GUIDANCE + "test_guidance_is_the_same_in_every_parameterization",),
        _T09,
    ),
    Exercise(
        "d3pm_posterior", 3, "minidiff/discrete/d3pm.py", "posterior_matrix",
        "q(x_{t-1} = j | x_t = k, x_0 = i) by Bayes from Q_t and the cumulative kernels",
        "Austin et al. (2021), eq. 3", 3,
        (_D3PM + "test_posterior_rows_sum_to_one",),
        (_D3PM + "test_posterior_matches_path_enumeration",),
        _T12,
    ),
)


def exercise(name: str) -> Exercise:
    """The exercise called ``name``.

    Raises:
        ValueError: if no exercise has that name.
    """
    for candidate in EXERCISES:
        if candidate.name == name:
            return candidate
    names = ", ".join(e.name for e in EXERCISES)
    raise ValueError(f"unknown exercise {name!r}; expected one of {names}")


def exercises_of_layer(layer: int) -> tuple[Exercise, ...]:
    """The exercises of one layer (0-5).

    Raises:
        ValueError: if the layer has no exercise.
    """
    chosen = tuple(e for e in EXERCISES if e.layer == layer)
    if not chosen:
        layers = sorted({e.layer for e in EXERCISES})
        raise ValueError(f"layer must be one of {layers}, got {layer!r}")
    return chosen


def resolve_exercises(names: str | None = None, layer: int | None = None) -> tuple[Exercise, ...]:
    """The exercises chosen on the command line: a comma-separated list of names, a layer,
    or (neither) every exercise.

    Raises:
        ValueError: both given, an empty list, or an unknown name or layer.
    """
    if names is not None and layer is not None:
        raise ValueError("give either exercises or layer, not both")
    if layer is not None:
        return exercises_of_layer(layer)
    if names is None:
        return EXERCISES
    listed = [name.strip() for name in names.split(",") if name.strip()]
    if not listed:
        raise ValueError(f"exercises must name at least one exercise, got {names!r}")
    return tuple(exercise(name) for name in dict.fromkeys(listed))
