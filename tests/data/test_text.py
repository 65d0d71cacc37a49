"""Tests of `minidiff.data.text`: the KJV loader, the vocabulary, windows."""

import hashlib
import shutil

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from minidiff.data import text as text_module
from minidiff.data.text import (
    KJV_SHA256,
    MASK_ID,
    TEXT_SPLITS,
    TINY_TEXT,
    VOCAB,
    TextDataMissingError,
    clean_kjv,
    decode,
    encode,
    load_kjv,
    split_by_position,
    text_windows,
)
from tests.requirements import needs

needs_kjv = needs(shutil.which("bible") is not None, "Debian bible-kjv not installed")


def test_clean_kjv_strips_references_and_keeps_verses():
    """References such as "1Co13:4" go, the verse text stays, one verse a line."""
    raw = "Ge1:1 In the beginning.\n1Co13:4 Charity suffereth long.\n\nRev22:21 Amen.\n"
    assert clean_kjv(raw) == "In the beginning.\nCharity suffereth long.\nAmen.\n"


def test_clean_kjv_rejects_lines_without_reference():
    """Any other line (a heading, say) is an error that names the line."""
    with pytest.raises(ValueError, match="line 2"):
        clean_kjv("Ge1:1 In the beginning.\nTHE FIRST BOOK OF MOSES\n")


@given(st.text(alphabet=VOCAB, max_size=200), st.sampled_from(TEXT_SPLITS))
def test_splits_partition_the_text_in_order(text, split):
    """train + validation + test = the text, in that order; each split is a substring."""
    parts = [split_by_position(text, s) for s in TEXT_SPLITS]
    assert "".join(parts) == text
    assert split_by_position(text, split) in text


@given(st.text(alphabet=VOCAB, max_size=200))
def test_encode_decode_round_trip(text):
    """decode(encode(s)) = s for any string over the vocabulary."""
    assert decode(encode(text)) == text


def test_vocabulary_and_mask():
    """63 distinct characters, the mask just after them, printed as "_"; others rejected."""
    assert len(set(VOCAB)) == len(VOCAB) == MASK_ID == 63
    assert decode(torch.tensor([MASK_ID, 0])) == "_\n"
    with pytest.raises(ValueError, match="'X'"):
        encode("aXb")
    with pytest.raises(ValueError, match="ids must lie"):
        decode(torch.tensor([MASK_ID + 1]))


def test_tiny_text_is_in_the_vocabulary():
    """The bundled text encodes, and uses most of the vocabulary."""
    assert len(set(TINY_TEXT)) > 40 and decode(encode(TINY_TEXT)) == TINY_TEXT


@given(st.integers(1, 30), st.integers(1, 30))
def test_text_windows_start_every_stride(length, stride):
    """Window i is the text's tokens i * stride .. i * stride + length - 1, and the windows
    run to the last one that fits."""
    ids = encode(TINY_TEXT)
    windows = text_windows(ids, length, stride)
    assert windows.shape == ((ids.shape[0] - length) // stride + 1, length)
    for i in (0, windows.shape[0] - 1):
        assert torch.equal(windows[i], ids[i * stride : i * stride + length])
    with pytest.raises(ValueError, match="N >= length"):
        text_windows(ids[:5], 20)


def test_missing_program_names_the_packages(monkeypatch):
    """Without the bible program the error names both Debian packages."""
    text_module._kjv_text.cache_clear()
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(TextDataMissingError, match="bible-kjv-text and bible-kjv"):
        load_kjv()
    text_module._kjv_text.cache_clear()


@needs_kjv
def test_kjv_loads_checked_and_split():
    """The cleaned text has the recorded SHA-256, starts with Genesis and ends with
    Revelation, and its test split is the last 5%."""
    text = load_kjv()
    assert hashlib.sha256(text.encode()).hexdigest() == KJV_SHA256
    assert text.startswith("In the beginning God created the heaven and the earth.\n")
    assert text.endswith("The grace of our Lord Jesus Christ be with you all. Amen.\n")
    assert text.endswith(load_kjv("test")) and abs(len(load_kjv("test")) / len(text) - 0.05) < 1e-6
