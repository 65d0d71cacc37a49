"""Character-level text: the King James Bible from Debian, and a tiny bundled text.

The corpus is the Authorized (King James) Version, public domain, shipped by Debian as
``bible-kjv-text`` (the compressed text) and ``bible-kjv`` (the ``bible`` program that
decodes it). `load_kjv` runs ``bible -f`` over Genesis 1:1 to Revelation 22:21, which
prints one verse a line after its reference ("Ge1:1 In the beginning ..."); the loader
strips the references (the program prints no headings in this mode), joins the verses
with newlines, checks the SHA-256 of the cleaned text, and splits it by position: the
first 90% for training, then 5% validation and the last 5% test.

Characters map to integers through a fixed vocabulary, `VOCAB` (the 63 characters of the
cleaned corpus); a discrete diffusion adds one more state, the mask, at index
``len(VOCAB)``. `TINY_TEXT` is a short text written for this project, in the same
vocabulary, for unit tests and tutorials that must run without the package.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from functools import lru_cache
from typing import Literal, get_args

import torch

__all__ = [
    "VOCAB",
    "MASK_ID",
    "TEXT_SPLITS",
    "TextSplit",
    "KJV_PACKAGES",
    "KJV_SHA256",
    "KJV_CHARACTERS",
    "TINY_TEXT",
    "TextDataMissingError",
    "clean_kjv",
    "load_kjv",
    "split_by_position",
    "encode",
    "decode",
    "text_windows",
]

# The 63 characters of the cleaned KJV, in code-point order; index = token id.
# (The KJV has no capital X.)
VOCAB = "\n !'(),-.:;?ABCDEFGHIJKLMNOPQRSTUVWYZabcdefghijklmnopqrstuvwxyz"
MASK_ID = len(VOCAB)  # the absorbing state of a discrete diffusion over VOCAB
_INDEX = {c: i for i, c in enumerate(VOCAB)}

TextSplit = Literal["train", "validation", "test"]
TEXT_SPLITS: tuple[str, ...] = get_args(TextSplit)
SPLIT_FRACTIONS = {"train": (0.0, 0.9), "validation": (0.9, 0.95), "test": (0.95, 1.0)}

KJV_PACKAGES = ("bible-kjv-text", "bible-kjv")
KJV_RANGE = "Gen1:1-Rev22:21"
KJV_CHARACTERS = 4_137_849  # length of the cleaned text
KJV_SHA256 = "b55e956fcf5f187160b3d0dfa93bbac269d127902ad9fb6c8f05a5dab019f6d5"

_REFERENCE = re.compile(r"^[1-3]?[A-Za-z]+\d+:\d+ ")

TINY_TEXT = (
    "The river ran by the old mill, and the miller counted his sacks of grain.\n"
    "Seven sacks were full; two were torn, and the mice had found them first.\n"
    "He said to his son: Mend the sacks before the rain comes, and bring the cat.\n"
    "The son laughed (for the cat was asleep) and went down to the water's edge.\n"
    "Is the wheel turning? Yes, it turns, and the stones grind slowly all the day!\n"
    "Quick brown foxes jump over lazy dogs; zealous judges vex the quiet kings.\n"
)


class TextDataMissingError(RuntimeError):
    """The KJV packages are not installed, or the decoded text is not the expected one."""


def clean_kjv(raw: str) -> str:
    """Strip the verse references of ``bible -f`` output; one verse a line, "\\n" ended.

    Args:
        raw: the program's output, lines like ``"Ge1:1 In the beginning ..."``.

    Raises:
        ValueError: a non-empty line does not start with a verse reference.
    """
    verses = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        match = _REFERENCE.match(line)
        if match is None:
            raise ValueError(f"line {number} of the bible output has no verse reference: {line!r}")
        verses.append(line[match.end() :].strip())
    return "\n".join(verses) + "\n"


def _missing(reason: str) -> TextDataMissingError:
    return TextDataMissingError(
        f"{reason}. The King James text comes from the Debian packages "
        f"{' and '.join(KJV_PACKAGES)}: install them with "
        f"`apt-get install {' '.join(KJV_PACKAGES)}` (or `make system-deps` as root)."
    )


@lru_cache(maxsize=1)
def _kjv_text() -> str:
    program = shutil.which("bible")
    if program is None:
        raise _missing("the `bible` program was not found")
    result = subprocess.run(
        [program, "-f", KJV_RANGE], capture_output=True, text=True, check=False, timeout=120
    )
    if result.returncode != 0 or not result.stdout:
        raise _missing(f"`bible -f {KJV_RANGE}` failed: {result.stderr.strip()!r}")
    text = clean_kjv(result.stdout)
    digest = hashlib.sha256(text.encode()).hexdigest()
    if digest != KJV_SHA256:
        raise _missing(
            f"the cleaned text has SHA-256 {digest} and {len(text)} characters, expected "
            f"{KJV_SHA256} and {KJV_CHARACTERS}; the installed text differs from the one "
            f"this loader was written for"
        )
    return text


def split_by_position(text: str, split: TextSplit) -> str:
    """The ``split`` part of ``text`` by position: first 90% train, 5% validation, last 5% test.

    The three parts are disjoint and concatenate back to ``text``.
    """
    if split not in TEXT_SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {TEXT_SPLITS}")
    start, stop = SPLIT_FRACTIONS[split]
    n = len(text)
    return text[round(start * n) : round(stop * n)]


def load_kjv(split: TextSplit | None = None) -> str:
    """The cleaned King James text, whole (``split=None``) or one positional split.

    Raises:
        TextDataMissingError: the Debian packages are missing or the text differs.
    """
    text = _kjv_text()
    return text if split is None else split_by_position(text, split)


def encode(text: str) -> torch.Tensor:
    """Token ids (len(text),) int64 of ``text`` in `VOCAB`.

    Raises:
        ValueError: a character is not in the vocabulary.
    """
    try:
        ids = [_INDEX[c] for c in text]
    except KeyError as error:
        raise ValueError(
            f"text holds the character {error.args[0]!r}, which is not in VOCAB"
        ) from None
    return torch.tensor(ids, dtype=torch.int64)


def decode(ids: torch.Tensor, mask: str = "_") -> str:
    """The text of token ids (L,); the mask state prints as ``mask``."""
    ids = torch.as_tensor(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must have shape (L,), got {tuple(ids.shape)}")
    symbols = VOCAB + mask
    if ids.numel() and not (0 <= int(ids.min()) and int(ids.max()) <= MASK_ID):
        raise ValueError(f"ids must lie in 0..{MASK_ID}, got {int(ids.min())}..{int(ids.max())}")
    return "".join(symbols[i] for i in ids.tolist())


def text_windows(ids: torch.Tensor, length: int, stride: int | None = None) -> torch.Tensor:
    """The windows of ``length`` consecutive tokens of ``ids`` starting every ``stride``
    tokens (default: ``length``, windows side by side), as a training set.

    Args:
        ids: (N,) token ids, N >= length.

    Returns:
        (1 + (N - length) // stride, length) int64, window i starting at token i * stride.
    """
    stride = length if stride is None else stride
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be an int >= 1, got {length!r}")
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be an int >= 1, got {stride!r}")
    if ids.ndim != 1 or ids.shape[0] < length:
        raise ValueError(
            f"ids must have shape (N,) with N >= length = {length}, got {tuple(ids.shape)}"
        )
    return ids.unfold(0, length, stride).to(torch.int64).contiguous()  # (windows, length)
