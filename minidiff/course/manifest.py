"""The exercises of the course: where each solution sits, what it implements, and the tests
that grade it.

Every exercise is a region of the package between ``### BEGIN SOLUTION`` and
``### END SOLUTION`` (nbgrader's markers) inside one function. The student version
(`minidiff.course.student`) replaces the region with a ``raise NotImplementedError``
naming the exercise, what to implement and the equation; the grader
(`minidiff.course.grade`) runs the exercise's tests against a student's package.

``visible`` tests ship with the student version; ``hidden`` tests are left out of it and run
only when grading; their names live in `minidiff.course.hidden_tests`, which the student
version ships without the removed exercises' entries. Tests are pytest node ids relative
to the repository root.

``dependent`` tests of an exercise are the other tests of the default suite that fail when
its solution alone is removed (they call its function, directly or through other code):
found by `minidiff.course.dependents` and stored in `minidiff.course.dependent_tests`.
They are worth 0 points: each fails only because another function is missing, and the
exercise's own graded tests already measure that function, so counting them would charge
the student twice for one gap and make one exercise's grade depend on another's. They say
which tests a student version is expected to fail: exactly the graded and dependent tests
of the exercises it removes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from minidiff.course.dependent_tests import DEPENDENT_TESTS
from minidiff.course.hidden_tests import HIDDEN_TESTS

__all__ = [
    "EXERCISES",
    "Exercise",
    "exercise",
    "exercises_of_layer",
    "resolve_exercises",
    "write_table",
]


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

    @property
    def tests(self) -> tuple[str, ...]:
        """Every graded test, visible first."""
        return self.visible + self.hidden

    @property
    def dependent(self) -> tuple[str, ...]:
        """The tests, not graded for this exercise, that fail when it alone is removed
        (0 points)."""
        return DEPENDENT_TESTS.get(self.name, ())

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
        HIDDEN_TESTS["n_step_kernel"],
        _T01,
    ),
    Exercise(
        "stationary_law", 0, "minidiff/markov/finite.py", "stationary_distribution",
        "solve pi = pi P with sum(pi) = 1 on the closed class, zero elsewhere",
        "the stationary equation pi P = pi (Norris 1997, sec. 1.7)", 3,
        (_FINITE + "test_stationary_law_is_invariant_and_sums_to_one",),
        HIDDEN_TESTS["stationary_law"],
        _T01,
    ),
    Exercise(
        "q_sample", 1, "minidiff/process/forward.py", "q_sample",
        "return x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps",
        "Ho et al. (2020), eq. 4", 2,
        (_FORWARD + "test_q_sample_is_reparameterised_marginal",),
        HIDDEN_TESTS["q_sample"],
        _T01,
    ),
    Exercise(
        "posterior", 1, "minidiff/process/posterior.py", "posterior_mean_var",
        "return the mean, variance and clipped log variance of q(x_{t-1} | x_t, x_0)",
        "Ho et al. (2020), eqs. 6-7", 3,
        (_POSTERIOR + "test_posterior_satisfies_bayes_rule",),
        HIDDEN_TESTS["posterior"],
        _T01,
    ),
    Exercise(
        "ddim_step", 1, "minidiff/process/ddim.py", "ddim_posterior_mean_var",
        "return the mean and variance of q_sigma(x_{t_prev} | x_t, x_0)",
        "Song, Meng & Ermon (2021), eq. 7", 3,
        (_DDIM + "test_ddim_keeps_the_marginals",),
        HIDDEN_TESTS["ddim_step"],
        _T05,
    ),
    Exercise(
        "mlp_backward", 2, "minidiff/toy/mlp.py", "MLP.backward",
        "back-propagate dL/d(out) through the layers into every weight and bias",
        "the chain rule for z = h W + b, h = act(z)", 3,
        (_MLP + "test_backward_matches_central_differences_for_every_parameter",),
        HIDDEN_TESTS["mlp_backward"],
        _T02,
    ),
    Exercise(
        "adam", 2, "minidiff/toy/optim.py", "Adam.step",
        "update the moments and the parameters with bias-corrected steps",
        "Kingma & Ba (2015), Algorithm 1", 3,
        (_OPTIM + "test_adam_first_step_worked_example",),
        HIDDEN_TESTS["adam"],
        _T02,
    ),
    Exercise(
        "training_step", 2, "minidiff/toy/train.py", "ddpm_loss_and_grads",
        "compute L_simple on one minibatch and its gradients",
        "Ho et al. (2020), eq. 14 and Algorithm 1", 3,
        (_TRAIN + "test_ddpm_loss_is_l_simple_and_its_gradient_matches_finite_differences",),
        HIDDEN_TESTS["training_step"],
        _T02,
    ),
    Exercise(
        "ancestral_loop", 3, "minidiff/diffusion/samplers.py", "sample_ancestral",
        "loop t = T..1: x_{t-1} = mean + sqrt(var) z, with no noise at t = 1",
        "Ho et al. (2020), Algorithm 2", 3,
        (_SAMPLERS + "test_ancestral_with_the_exact_denoiser_reproduces_the_mixture",),
        HIDDEN_TESTS["ancestral_loop"],
        _T04,
    ),
    Exercise(
        "resblock", 3, "minidiff/nn/blocks.py", "ResBlock.forward",
        "norm, SiLU, conv, add the time projection, norm, SiLU, dropout, conv, add the shortcut",
        "Ho et al. (2020), appendix B", 2,
        (_BLOCKS + "test_resblock_adds_a_per_channel_time_shift_after_conv1",),
        HIDDEN_TESTS["resblock"],
        _T04,
    ),
    Exercise(
        "attention", 3, "minidiff/nn/blocks.py", "AttentionBlock.forward",
        "x + proj(softmax(q k^T / sqrt(C)) v) over the H x W positions",
        "Ho et al. (2020), appendix B; Vaswani et al. (2017), eq. 1", 2,
        (_BLOCKS + "test_attention_matches_scaled_dot_product_attention",),
        HIDDEN_TESTS["attention"],
        _T04,
    ),
    Exercise(
        "guided_output", 5, "minidiff/applications/guidance.py", "guided_output",
        "return out_null + s (out_y - out_null)", "Ho & Salimans (2022), eq. 6", 2,
        (_GUIDANCE + "test_scale_one_is_the_conditional_and_zero_the_unconditional_prediction",),
        HIDDEN_TESTS["guided_output"],
        _T09,
    ),
    Exercise(
        "d3pm_posterior", 3, "minidiff/discrete/d3pm.py", "posterior_matrix",
        "q(x_{t-1} = j | x_t = k, x_0 = i) by Bayes from Q_t and the cumulative kernels",
        "Austin et al. (2021), eq. 3", 3,
        (_D3PM + "test_posterior_rows_sum_to_one",),
        HIDDEN_TESTS["d3pm_posterior"],
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


def write_table(path: str | Path, name: str, table: dict[str, tuple[str, ...]], doc: str
                ) -> None:
    """Write ``table`` (exercise -> test node ids) as a Python module defining ``name``,
    as `minidiff.course.hidden_tests` and `minidiff.course.dependent_tests` are."""
    lines = [f'"""{doc}"""', "", f"{name}: dict[str, tuple[str, ...]] = {{"]
    for exercise_name, tests in table.items():
        lines.append(f"    {exercise_name!r}: (")
        lines += [f"        {test!r}," for test in tests]
        lines.append("    ),")
    Path(path).write_text("\n".join([*lines, "}", ""]).replace("'", '"'))
