"""The hidden tests of each exercise: node ids kept by the instructor. The student version
ships this module without the entries of the exercises it removes."""

HIDDEN_TESTS: dict[str, tuple[str, ...]] = {
    "n_step_kernel": (
        "tests/markov/test_finite.py::test_n_step_kernel_satisfies_chapman_kolmogorov",
    ),
    "stationary_law": (
        "tests/markov/test_finite.py::test_stationary_law_puts_no_mass_on_transient_states",
        "tests/markov/test_finite.py::test_stationary_law_of_a_weighted_random_walk_is_proportional_to_row_sums",
    ),
    "q_sample": (
        "tests/process/test_forward.py::test_batched_t_equals_per_sample_results",
    ),
    "posterior": (
        "tests/process/test_posterior.py::test_posterior_at_t1_is_point_mass_at_x0",
        "tests/process/test_posterior.py::test_posterior_averaged_over_xt_gives_marginal",
    ),
    "ddim_step": (
        "tests/process/test_ddim.py::test_ddim_mean_is_the_coefficients_applied_to_x0_and_eps",
    ),
    "mlp_backward": (
        "tests/toy/test_mlp.py::test_backward_input_gradient_matches_central_differences",
    ),
    "adam": (
        "tests/toy/test_optim.py::test_adam_matches_hand_computation_on_a_quadratic",
        "tests/toy/test_optim.py::test_adam_first_step_is_lr_times_sign_of_gradient",
    ),
    "training_step": (
        "tests/toy/test_train.py::test_training_is_deterministic_given_the_seed",
    ),
    "ancestral_loop": (
        "tests/diffusion/test_samplers.py::test_ancestral_matches_the_numpy_sampler",
    ),
    "resblock": (
        "tests/nn/test_blocks.py::test_resblock_shapes_and_skip_projection",
    ),
    "attention": (
        "tests/nn/test_blocks.py::test_attention_is_equivariant_to_spatial_permutations",
    ),
    "guided_output": (
        "tests/applications/test_guidance.py::test_guidance_is_the_same_in_every_parameterization",
    ),
    "d3pm_posterior": (
        "tests/discrete/test_d3pm.py::test_posterior_matches_path_enumeration",
    ),
}
