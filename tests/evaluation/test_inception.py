"""The FID Inception network against torch-fidelity's independent implementation, its key
names, its evaluation mode, its input checks, its weights checks, and (with the published
weights and CIFAR-10 present) torch-fidelity's published figures."""

import hashlib
import importlib.util
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from minidiff.evaluation.inception import (
    FEATURE_NAMES,
    FIDInception,
    images_to_uint8,
    resize_bilinear_tf1,
)
from minidiff.evaluation.inception_weights import (
    INCEPTION_SHA256,
    WEIGHTS_ENV,
    InceptionWeightsError,
    inception_weights_path,
    load_inception,
)
from tests.requirements import missing

PARITY_TOL = 1e-5  # relative to the largest |feature|, float64 on both sides


def _reference_modules():
    """torch-fidelity's Inception and resize modules, imported without the package's
    __init__ (which imports torchvision, not installable beside this torch)."""
    spec = importlib.util.find_spec("torch_fidelity")
    if spec is None or not spec.submodule_search_locations:
        missing("torch-fidelity is not installed (pip install --no-deps torch-fidelity==0.4.0)")
    folder = Path(spec.submodule_search_locations[0])
    saved = {
        name: sys.modules.get(name)
        for name in list(sys.modules)
        if name.startswith("torch_fidelity")
    }
    package = types.ModuleType("torch_fidelity")
    package.__path__ = [str(folder)]
    sys.modules["torch_fidelity"] = package
    try:
        loaded = {}
        for name in ("helpers", "feature_extractor_base", "interpolate_compat_tensorflow",
                     "feature_extractor_inceptionv3"):  # fmt: skip
            module_spec = importlib.util.spec_from_file_location(
                f"torch_fidelity.{name}", folder / f"{name}.py"
            )
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[f"torch_fidelity.{name}"] = module
            module_spec.loader.exec_module(module)
            loaded[name] = module
        return loaded
    finally:  # leave sys.modules as it was
        for name in [n for n in sys.modules if n.startswith("torch_fidelity")]:
            del sys.modules[name]
        sys.modules.update({k: v for k, v in saved.items() if v is not None})


def _random_state_dict(network: FIDInception, seed: int) -> dict[str, torch.Tensor]:
    """Seeded random weights of a sensible scale: He-scaled convolutions, batch-norm
    statistics and affine parameters away from the identity, a random classifier."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in network.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = value.clone()
        elif key.endswith("conv.weight"):
            fan_in = value[0].numel()
            state[key] = torch.randn(value.shape, generator=generator) * (2.0 / fan_in) ** 0.5
        elif key.endswith(("running_var", "bn.weight")):
            state[key] = 0.5 + torch.rand(value.shape, generator=generator)
        else:  # running_mean, bn.bias, fc
            state[key] = 0.1 * torch.randn(value.shape, generator=generator)
    return state


@pytest.fixture(scope="module")
def reference():
    return _reference_modules()


@pytest.fixture(scope="module")
def networks(reference, tmp_path_factory):
    """minidiff's network and torch-fidelity's, both float64 with the same random weights."""
    ours = FIDInception()
    state = _random_state_dict(ours, seed=0)
    ours.load_state_dict(state)
    path = tmp_path_factory.mktemp("weights") / "random.pth"
    torch.save(state, path)
    theirs = reference["feature_extractor_inceptionv3"].FeatureExtractorInceptionV3(
        "inception-v3-compat", list(FEATURE_NAMES), feature_extractor_weights_path=str(path),
        feature_extractor_internal_dtype="float64",
    )  # fmt: skip
    # torch-fidelity 0.4.0 maps "float64" to float32 in text_to_dtype; set it directly.
    theirs.feature_extractor_internal_dtype = torch.float64
    return ours.double(), theirs.double()


def test_state_dict_keys_and_shapes_equal_the_reference(networks):
    """Every parameter and buffer has the reference's name and shape, so the published
    weight files load as they are."""
    ours, theirs = networks
    mine = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    reference = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert mine == reference


def test_features_equal_torch_fidelity(networks):
    """With the same random weights, every feature (64, 192, 768, 2048, logits with and
    without bias) equals torch-fidelity's to 1e-5 of its scale, on images of two sizes."""
    ours, theirs = networks
    generator = torch.Generator().manual_seed(1)
    for side in (32, 37):
        images = torch.randint(0, 256, (2, 3, side, side), generator=generator, dtype=torch.uint8)
        with torch.no_grad():
            mine = ours(images)
            reference = dict(zip(FEATURE_NAMES, theirs(images), strict=True))
        for name in FEATURE_NAMES:
            scale = float(reference[name].abs().max())
            assert scale > 0, name
            error = float((mine[name].float() - reference[name]).abs().max())
            assert error <= PARITY_TOL * scale, (name, side, error, scale)


def test_resize_equals_tensorflow1_bilinear_reference(reference):
    """The TF1 bilinear resize equals torch-fidelity's TF1-compatible resize (float32 and
    float64, up- and down-sampling)."""
    resize = reference["interpolate_compat_tensorflow"].interpolate_bilinear_2d_like_tensorflow1x
    generator = torch.Generator().manual_seed(2)
    for dtype in (torch.float32, torch.float64):
        for side, size in ((8, 299), (32, 299), (400, 299), (5, 7)):
            x = torch.rand((2, 3, side, side), generator=generator, dtype=dtype) * 255
            expected = resize(x, size=(size, size), align_corners=False)
            torch.testing.assert_close(resize_bilinear_tf1(x, size), expected, rtol=0, atol=1e-4)


def test_resize_keeps_constants_and_samples_source_grid():
    """A constant image stays constant; destination pixel i reads source i * in / out, so
    upsampling by k = 4 (a scale exact in float32) keeps every k-th pixel equal to the source."""
    x = torch.full((1, 1, 5, 5), 7.0, dtype=torch.float64)
    assert torch.equal(resize_bilinear_tf1(x, 13), torch.full((1, 1, 13, 13), 7.0, dtype=x.dtype))
    source = torch.rand(
        (1, 2, 4, 4), generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    torch.testing.assert_close(
        resize_bilinear_tf1(source, 16)[..., ::4, ::4], source, rtol=0, atol=1e-12
    )


def test_features_do_not_depend_on_batch_or_order_even_in_train_mode():
    """Batch norm uses stored statistics even after .train(): an image's features are the
    same alone, in a batch, and in a permuted batch."""
    network = FIDInception()
    network.load_state_dict(_random_state_dict(network, seed=3))
    network.train()
    assert not network.training and not any(m.training for m in network.modules())
    images = torch.randint(0, 256, (3, 3, 16, 16), generator=torch.Generator().manual_seed(4),
                           dtype=torch.uint8)  # fmt: skip
    with torch.no_grad():
        batch = network(images)["2048"]
        alone = network(images[1:2])["2048"]
        permuted = network(images[[2, 0, 1]])["2048"]
    torch.testing.assert_close(alone[0], batch[1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(permuted, batch[[2, 0, 1]], rtol=1e-5, atol=1e-6)


def test_input_must_be_uint8_rgb():
    """Float input (the uint8-vs-float pitfall) and other shapes are refused."""
    network = FIDInception()
    with pytest.raises(ValueError, match="uint8"):
        network(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="uint8"):
        network(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))


def test_images_to_uint8_maps_model_range_to_pixels():
    """-1 -> 0, 1 -> 255, 0 -> 128 (round half to even of 127.5), one channel -> three."""
    images = torch.tensor([-1.0, 0.0, 1.0, 2.0]).reshape(1, 1, 2, 2)
    pixels = images_to_uint8(images)
    assert pixels.shape == (1, 3, 2, 2) and pixels.dtype == torch.uint8
    assert pixels[0, 2].flatten().tolist() == [0, 128, 255, 255]
    with pytest.raises(ValueError, match="images"):
        images_to_uint8(torch.zeros(1, 2, 4, 4))


def test_missing_weights_name_the_variable_and_the_source(tmp_path, monkeypatch):
    """No file: the error names the option, the variable and the URL; a file that is not
    the published one is refused by its SHA-256."""
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    with pytest.raises(InceptionWeightsError, match="--inception-weights.*pt_inception"):
        inception_weights_path()
    with pytest.raises(InceptionWeightsError, match="does not exist"):
        load_inception(tmp_path / "missing.pth")
    fake = tmp_path / "fake.pth"
    torch.save({"x": torch.zeros(1)}, fake)
    monkeypatch.setenv(WEIGHTS_ENV, str(fake))
    assert inception_weights_path() == fake
    with pytest.raises(InceptionWeightsError, match=hashlib.sha256(fake.read_bytes()).hexdigest()):
        load_inception()


def _published_weights() -> Path:
    try:
        path = inception_weights_path()
    except InceptionWeightsError:
        pytest.skip(f"no Inception weights file ({WEIGHTS_ENV} unset)")
    if hashlib.sha256(path.read_bytes()).hexdigest() != INCEPTION_SHA256:
        pytest.skip(f"{path} is not the published weights file")
    return path


@pytest.mark.slow
def test_reproduces_torch_fidelity_published_cifar10_figures():
    """With the published weights: FID(CIFAR-10 train[:5000], test[:5000]) = 10.3233274 and
    the IS of the first 100 training images = 4.51089784587268, torch-fidelity's published
    figures (to 1e-4)."""
    from minidiff.data.cifar10 import load_cifar10
    from minidiff.evaluation.metrics import frechet_inception_distance, inception_score

    network = load_inception(_published_weights())
    try:
        root = os.environ.get("MINIDIFF_DATA", "data")
        train, _ = load_cifar10(root, "train")
        test, _ = load_cifar10(root, "test")
    except Exception as error:  # no CIFAR-10 here: nothing to compare
        pytest.skip(f"CIFAR-10 is not available: {error}")

    def features(images: np.ndarray, name: str) -> np.ndarray:
        tensor = torch.as_tensor(np.asarray(images)).permute(0, 3, 1, 2).contiguous()
        with torch.no_grad():
            return np.concatenate(
                [network(chunk)[name].double().numpy() for chunk in tensor.split(100)]
            )

    fid = frechet_inception_distance(features(train[:5000], "2048"), features(test[:5000], "2048"))
    assert abs(fid.value - 10.3233274) <= 1e-4
    score = inception_score(features(train[:100], "logits_unbiased"), splits=10, seed=2020)
    assert abs(score.mean - 4.51089784587268) <= 1e-4
