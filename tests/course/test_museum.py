"""The bug museum: each exhibit's buggy variant fails the property test it names, and the
library's own function (the fix) passes it."""

import importlib
import inspect
import os
import warnings

import pytest
from hypothesis import settings

from minidiff.course.museum import EXHIBITS, installed

# The default run proves four exhibits; the others (10-20 s each) run with -m slow.
FAST = {"cosine_without_square", "fid_sqrtm_of_singular_covariance", "inception_train_mode",
        "cfg_never_dropped"}


def _test_function(node_id: str):
    path, name = node_id.split("::")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


def _call(test, tmp_path):
    wanted = inspect.signature(test).parameters
    return test(**({"tmp_path": tmp_path} if "tmp_path" in wanted else {}))


def test_the_museum_has_ten_pieces_with_distinct_names_and_real_tests():
    assert len(EXHIBITS) >= 10
    assert len({e.name for e in EXHIBITS}) == len(EXHIBITS)
    for exhibit in EXHIBITS:
        assert exhibit.url.startswith("https://github.com/")
        assert exhibit.url.rstrip("/").split("/")[-1] == exhibit.source.split()[-1]
        _test_function(exhibit.test)


@pytest.mark.parametrize(
    "exhibit",
    [pytest.param(e, marks=[] if e.name in FAST else [pytest.mark.slow]) for e in EXHIBITS],
    ids=lambda e: e.name,
)
def test_the_bug_fails_its_test_and_the_fix_passes(exhibit, tmp_path):
    test = _test_function(exhibit.test)
    settings.load_profile("grade")  # report the first failing example, without shrinking
    try:
        with installed(exhibit), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the bugs may warn (complex roots, NaN)
            with pytest.raises(Exception) as failure:
                _call(test, tmp_path / "bug")
    finally:
        settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
    errors = getattr(failure.value, "exceptions", (failure.value,))  # hypothesis may group
    assert any(isinstance(error, AssertionError) for error in errors), failure.value
    _call(test, tmp_path / "fix")
