"""Proofs for minidiff.nn.mlp: `ToyMLP` is the NumPy `minidiff.toy.MLP` in PyTorch (same
outputs and gradients in float64 once the weights are copied), embeds real times
continuously, and trains to the quality of the NumPy model."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidiff.nn.mlp import ToyMLP, ToyMLPConfig, toy_sinusoidal_embedding
from minidiff.process import toy_schedule
from minidiff.toy.datasets import make_dataset
from minidiff.toy.metrics import sliced_wasserstein
from minidiff.toy.mlp import ACTIVATIONS, MLP
from minidiff.toy.mlp import sinusoidal_embedding as numpy_sinusoidal_embedding
from minidiff.toy.sampling import sample_ancestral
from minidiff.toy.train import train_ddpm
from tests.tolerances import ATOL, N_STANDARD_ERRORS, RTOL


@st.composite
def numpy_mlps(draw):
    """A NumPy MLP of random shape and activation, with random (non-zero) biases."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dim = draw(st.integers(1, 4))
    hidden = tuple(draw(st.lists(st.integers(1, 24), min_size=1, max_size=3)))
    embed_dim = 2 * draw(st.integers(1, 8))
    mlp = MLP(
        dim, rng, hidden=hidden, embed_dim=embed_dim, activation=draw(st.sampled_from(ACTIVATIONS))
    )
    for name, value in mlp.params.items():
        if name.startswith("b"):
            value[...] = rng.normal(0.0, 0.5, size=value.shape)
    return mlp, rng


@given(st.lists(st.integers(0, 5000), min_size=1, max_size=16), st.integers(1, 16))
def test_toy_sinusoidal_embedding_equals_the_numpy_embedding(t, half):
    """emb(t) = [sin(t w_i), cos(t w_i)], w_i = 10000^(-i/h): the torch and NumPy
    embeddings agree to round-off for integer steps."""
    expected = numpy_sinusoidal_embedding(np.array(t), 2 * half)
    got = toy_sinusoidal_embedding(torch.tensor(t, dtype=torch.float64), 2 * half).numpy()
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL)


@given(numpy_mlps(), st.integers(1, 12))
def test_from_numpy_gives_the_numpy_output_in_float64(mlp_and_rng, B):
    """ToyMLP.from_numpy(mlp)(x, t) = mlp(x, t) to float64 round-off, for random
    architectures, activations, weights, inputs and steps 0..1000."""
    mlp, rng = mlp_and_rng
    model = ToyMLP.from_numpy(mlp, dtype=torch.float64)
    x = rng.normal(0.0, 2.0, size=(B, mlp.dim))
    t = rng.integers(0, 1001, size=B)
    got = model(torch.from_numpy(x), torch.from_numpy(t)).detach().numpy()
    np.testing.assert_allclose(got, mlp(x, t), rtol=RTOL, atol=ATOL)


@given(numpy_mlps(), st.integers(1, 8))
def test_autograd_gradients_equal_the_numpy_backprop(mlp_and_rng, B):
    """For a loss L = sum(G * out), torch's autograd gradients of every weight and bias and
    of the input x equal the hand-written backprop of the NumPy MLP (W transposed)."""
    mlp, rng = mlp_and_rng
    model = ToyMLP.from_numpy(mlp, dtype=torch.float64)
    x = rng.normal(size=(B, mlp.dim))
    t = rng.integers(0, 1001, size=B)
    grad_out = rng.normal(size=(B, mlp.dim))
    mlp.forward(x, t)
    grads, grad_x = mlp.backward(grad_out, return_input_grad=True)
    x_torch = torch.from_numpy(x).requires_grad_(True)
    (model(x_torch, torch.from_numpy(t)) * torch.from_numpy(grad_out)).sum().backward()
    for index, layer in enumerate(model.layers):
        np.testing.assert_allclose(
            layer.weight.grad.numpy().T, grads[f"W{index}"], rtol=RTOL, atol=ATOL
        )
        np.testing.assert_allclose(
            layer.bias.grad.numpy(), grads[f"b{index}"], rtol=RTOL, atol=ATOL
        )
    np.testing.assert_allclose(x_torch.grad.numpy(), grad_x, rtol=RTOL, atol=ATOL)


@given(
    st.integers(0, 2**32 - 1),
    st.floats(1e-3, 1e3),
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8),
)
def test_real_times_are_embedded_as_time_scale_times_t(seed, scale, t):
    """Continuous time: a network with time_scale k at real t equals the same weights
    with time_scale 1 at k t; and a float t with integer values equals the int t."""
    generator = torch.Generator().manual_seed(seed)
    scaled = ToyMLP(2, (8,), 4, time_scale=scale, generator=generator).double()
    plain = ToyMLP(2, (8,), 4).double()
    plain.load_state_dict(scaled.state_dict())
    x = torch.randn(len(t), 2, generator=generator, dtype=torch.float64)
    t = torch.tensor(t, dtype=torch.float64)
    with torch.no_grad():
        np.testing.assert_allclose(scaled(x, t), plain(x, scale * t), rtol=RTOL, atol=ATOL)
        steps = torch.arange(len(t)) * 7
        np.testing.assert_allclose(plain(x, steps.double()), plain(x, steps), rtol=RTOL, atol=ATOL)


def test_initial_weights_follow_the_numpy_scheme():
    """Weights before an activation have std sqrt(2 / fan_in), the output layer's
    sqrt(1 / fan_in), biases are 0: the sample std of each matrix lies within 4 standard
    errors (std / sqrt(2 n) for n normal entries) of its target."""
    model = ToyMLP(2, (256, 256), 32, generator=torch.Generator().manual_seed(0)).double()
    for index, layer in enumerate(model.layers):
        gain = 1.0 if index == len(model.layers) - 1 else 2.0
        target = np.sqrt(gain / layer.in_features)
        n = layer.weight.numel()
        assert abs(
            float(layer.weight.detach().std()) - target
        ) <= N_STANDARD_ERRORS * target / np.sqrt(2 * n)
        assert torch.all(layer.bias == 0)


def test_initial_weights_come_from_the_generator_only():
    """Two networks built with equally seeded generators are equal, and building one
    leaves torch's global generator untouched (the library never draws from it when
    given a generator)."""
    state = torch.random.get_rng_state()
    first = ToyMLP(num_classes=3, generator=torch.Generator().manual_seed(5))
    second = ToyMLP(num_classes=3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(state, torch.random.get_rng_state())
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)


def test_class_conditioning_uses_a_null_label_when_y_is_none():
    """With num_classes = C, y = None uses the extra "no label" row C, labels change the
    output, and an unconditional network rejects y."""
    model = ToyMLP(2, (16,), 8, num_classes=3, generator=torch.Generator().manual_seed(1)).double()
    x = torch.randn(4, 2, dtype=torch.float64)
    t = torch.tensor([1, 5, 9, 20])
    with torch.no_grad():
        null = model(x, t)
        np.testing.assert_array_equal(null, model(x, t, torch.full((4,), 3)))
        assert not torch.allclose(model(x, t, torch.zeros(4, dtype=torch.int64)), null)
    with pytest.raises(ValueError, match="num_classes"):
        ToyMLP(2, (16,), 8)(x.float(), t, torch.zeros(4, dtype=torch.int64))


def test_output_follows_the_parameters_dtype():
    """A float32 network maps float32 inputs to float32 outputs of shape (B, D); a scalar t
    is broadcast over the batch."""
    model = ToyMLP(3, (8, 8), 4)
    out = model(torch.randn(5, 3), 7)
    assert out.shape == (5, 3) and out.dtype == torch.float32


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"dim": 0}, "dim"),
        ({"hidden": ()}, "hidden"),
        ({"hidden": (8, 0)}, "hidden"),
        ({"embed_dim": 3}, "embed_dim"),
        ({"activation": "relu"}, "activation"),
        ({"num_classes": 0}, "num_classes"),
        ({"time_scale": 0.0}, "time_scale"),
        ({"out_dim": 0}, "out_dim"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    """Each invalid constructor argument raises ValueError naming it."""
    with pytest.raises(ValueError, match=match):
        ToyMLP(**kwargs)


def test_bad_inputs_raise():
    """x of the wrong width, t of the wrong length, or a boolean t are rejected."""
    model = ToyMLP(2, (8,), 4)
    with pytest.raises(ValueError, match="x must"):
        model(torch.randn(3, 3), torch.zeros(3))
    with pytest.raises(ValueError, match="t must"):
        model(torch.randn(3, 2), torch.zeros(2))
    with pytest.raises(TypeError, match="t must"):
        model(torch.randn(3, 2), torch.zeros(3, dtype=torch.bool))
    with pytest.raises(TypeError, match="MLP"):
        ToyMLP.from_numpy(model)


# -- the torch model trains as well as the NumPy model -----------------------------------

TRAIN_STEPS = 600
BATCH = 128
HIDDEN = (64, 64, 64)
T_TRAIN = 50
N_EVAL = 1000
EVAL_REPEATS = 4
# The torch model is held to SW_torch <= RATIO * max(SW_numpy, SW_floor). At this small
# budget both models are still far from the floor, and the SW of one run varies by 10-20%
# from seed to seed (ratios torch / NumPy from 0.9 to 1.2 over seeds), so 1.5 leaves room
# for that noise while failing a model that trains clearly worse.
RATIO = 1.5


def _mean_sw(samples, name, rng):
    """SW to EVAL_REPEATS fresh held-out sets (each with its own directions), averaged."""
    return np.mean(
        [
            sliced_wasserstein(samples, make_dataset(name, N_EVAL, rng), rng)
            for _ in range(EVAL_REPEATS)
        ]
    )


def test_torch_toy_mlp_trains_to_the_quality_of_the_numpy_model():
    """Test 6 of the issue: ToyMLP trained in PyTorch (float32, GaussianDiffusion.q_sample
    and .target, torch Adam, the same schedule, data, budget and settings as
    `train_ddpm`) reaches the NumPy model's sample quality: with the same ancestral
    sampler, its sliced Wasserstein distance to held-out moons data is at most RATIO times
    the larger of the NumPy model's and the data-vs-data floor."""
    from benchmarks.toy2d_torch import train_toy_mlp

    name = "moons"
    data = make_dataset(name, 5000, np.random.default_rng(0))
    schedule = toy_schedule(T_TRAIN)
    settings = dict(steps=TRAIN_STEPS, batch_size=BATCH, warmup=50, hidden=HIDDEN)
    numpy_model = train_ddpm(data, schedule, np.random.default_rng(1), progress=False, **settings)
    torch_model = train_toy_mlp(data, schedule, torch.Generator().manual_seed(1), **settings)
    x_T = np.random.default_rng(2).standard_normal((N_EVAL, 2))
    distances = {}
    for key, denoiser in (
        ("numpy", numpy_model.denoiser),
        ("torch", torch_model.numpy_denoiser()),
    ):
        samples = sample_ancestral(denoiser, schedule, x_T, np.random.default_rng(3))
        distances[key] = _mean_sw(samples, name, np.random.default_rng(4))
    floor = _mean_sw(
        make_dataset(name, N_EVAL, np.random.default_rng(5)), name, np.random.default_rng(4)
    )
    assert distances["torch"] <= RATIO * max(distances["numpy"], floor), (distances, floor)


def test_out_dim_widens_only_the_output_layer():
    """out_dim = 2D (a learned variance) gives (B, 2D) outputs; the hidden layers are as
    with out_dim = D, and `from_config` of the network's config rebuilds the same weights
    from the same generator."""
    model = ToyMLP(3, (8, 8), 4, out_dim=6, generator=torch.Generator().manual_seed(0))
    assert model(torch.randn(5, 3), 7).shape == (5, 6)
    assert [layer.out_features for layer in model.layers] == [8, 8, 6]
    again = ToyMLP.from_config(model.config, generator=torch.Generator().manual_seed(0))
    assert again.config == ToyMLPConfig(3, (8, 8), 4, out_dim=6)
    for a, b in zip(model.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)
