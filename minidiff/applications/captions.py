"""Captions for the 8x8 digits, so that a caption says more than the label: templates
filled with the digit and with attributes measured from the image, and a word tokenizer.

Attributes (measured, not annotated):

- ``ink``: the mean ink (x + 1) / 2 over the 64 pixels, in [0, 1]. Within one class the
  shape is about fixed, so more ink means thicker strokes.
- ``slant``: from the ink-weighted second moments of the pixel coordinates (row r
  downwards, column c rightwards), slant = -cov(r, c) / var(r): the horizontal shift per
  row going up, > 0 when the top of the digit leans right (as italics do).

Each attribute becomes a word only where it is clear: below the class's lower third
("thin", "leaning left") or above its upper third ("thick", "leaning right") of the
training split (`AttributeThresholds`); in between the caption says nothing about it.

Templates. `TRAIN_TEMPLATES` are used in training; `HELD_OUT_TEMPLATES` are phrasings
never seen in training, built from the training vocabulary only (no unknown words), so
an evaluation measures whether the model generalises over phrasing, not over words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "NUMBER_WORDS",
    "TRAIN_TEMPLATES",
    "HELD_OUT_TEMPLATES",
    "ink",
    "slant",
    "AttributeThresholds",
    "caption",
    "captions_for",
    "caption_pairs",
    "WordTokenizer",
]

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
THICKNESS_WORDS = {"thin": ("thin", "thinly"), "thick": ("thick", "thickly")}
SLANT_WORDS = {"left": "leaning left", "right": "leaning right"}

# {n}: the number word, {d}: the numeral, {w}: thickness adjective, {a}: its adverb,
# {s}: the slant phrase. A template is used only when the image has its attributes.
TRAIN_TEMPLATES = (
    "a handwritten {n}",
    "the digit {d}",
    "number {n}",
    "a {w} {n}",
    "the digit {d}, written {a}",
    "a {n} {s}",
    "a {w} {n} {s}",
    "the number {n}, {w}",
)
HELD_OUT_TEMPLATES = (
    "a {n}",
    "the handwritten number {d}",
    "digit {n}, written {a}",
    "{n}, {s}",
    "the {w} digit {d}",
)


def _check_images(images: torch.Tensor | np.ndarray) -> np.ndarray:
    x = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    if x.ndim != 4 or x.shape[1] != 1 or x.shape[0] < 1:
        raise ValueError(f"images must have shape (N, 1, H, W) with N >= 1, got {x.shape}")
    return np.asarray(x[:, 0], dtype=np.float64)  # (N, H, W)


def ink(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """(N,) mean ink (x + 1) / 2 of (N, 1, H, W) images in [-1, 1]."""
    x = _check_images(images)
    return np.clip((x + 1) / 2, 0, 1).mean(axis=(1, 2))


def slant(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """(N,) -cov(r, c) / var(r) of the ink-weighted pixel coordinates (see the module
    docstring); 0 for an image without ink or with all its ink on one row."""
    x = np.clip((_check_images(images) + 1) / 2, 0, 1)  # (N, H, W) ink weights
    H, W = x.shape[1:]
    r, c = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")  # (H, W) each
    mass = x.sum(axis=(1, 2))
    safe = np.where(mass > 0, mass, 1.0)
    mean_r = (x * r).sum(axis=(1, 2)) / safe
    mean_c = (x * c).sum(axis=(1, 2)) / safe
    dr = r[None] - mean_r[:, None, None]
    dc = c[None] - mean_c[:, None, None]
    var_r = (x * dr * dr).sum(axis=(1, 2)) / safe
    cov_rc = (x * dr * dc).sum(axis=(1, 2)) / safe
    return np.where(var_r > 1e-12, -cov_rc / np.where(var_r > 1e-12, var_r, 1.0), 0.0)


@dataclass(frozen=True)
class AttributeThresholds:
    """Per class, the lower and upper thirds of ink and slant on reference images.

    Attributes:
        ink: (10, 2) the 1/3 and 2/3 quantiles of `ink` per class.
        slant: (10, 2) the same for `slant`.
    """

    ink: np.ndarray
    slant: np.ndarray

    @classmethod
    def fit(cls, images: torch.Tensor, labels: torch.Tensor) -> AttributeThresholds:
        """The class-wise terciles of ``images`` (N, 1, H, W) with ``labels`` (N,) in 0..9."""
        labels = np.asarray(labels)
        values = {"ink": ink(images), "slant": slant(images)}
        tables = {name: np.zeros((10, 2)) for name in values}
        for k in range(10):
            rows = labels == k
            if not rows.any():
                raise ValueError(f"labels hold no image of class {k}")
            for name, v in values.items():
                tables[name][k] = np.quantile(v[rows], [1 / 3, 2 / 3])
        return cls(**tables)

    def words(self, images: torch.Tensor, labels: torch.Tensor) -> list[tuple[str, str]]:
        """Per image, (thickness, slant): "thin"/"thick"/"" and "left"/"right"/""."""
        labels = np.asarray(labels)
        thickness = _tercile_words(ink(images), self.ink[labels], ("thin", "thick"))
        lean = _tercile_words(slant(images), self.slant[labels], ("left", "right"))
        return list(zip(thickness, lean, strict=True))


def _tercile_words(values: np.ndarray, bounds: np.ndarray, words: tuple[str, str]) -> list[str]:
    """words[0] below bounds[:, 0], words[1] above bounds[:, 1], "" in between."""
    low, high = values < bounds[:, 0], values > bounds[:, 1]
    return [words[0] if lo else words[1] if hi else "" for lo, hi in zip(low, high, strict=True)]


def caption(template: str, label: int, thickness: str = "", lean: str = "") -> str | None:
    """Fill ``template`` for digit ``label`` with the given attribute words ("" = none);
    None when the template needs an attribute the image does not have."""
    needs_thickness = "{w}" in template or "{a}" in template
    needs_slant = "{s}" in template
    if (needs_thickness and not thickness) or (needs_slant and not lean):
        return None
    adjective, adverb = THICKNESS_WORDS.get(thickness, ("", ""))
    return template.format(
        n=NUMBER_WORDS[int(label)], d=str(int(label)), w=adjective, a=adverb,
        s=SLANT_WORDS.get(lean, ""),
    )  # fmt: skip


def captions_for(label: int, thickness: str = "", lean: str = "",
                 templates: tuple[str, ...] = TRAIN_TEMPLATES) -> list[str]:  # fmt: skip
    """Every template of ``templates`` filled for one image (those it has the attributes
    for)."""
    return [c for t in templates if (c := caption(t, label, thickness, lean)) is not None]


def caption_pairs(
    images: torch.Tensor, labels: torch.Tensor, tokenizer: WordTokenizer, length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A captioned data set: each image once per training template that fits it, as an
    image-text data set holds several captions per image.

    The attributes are measured against the terciles of ``images`` themselves
    (`AttributeThresholds.fit`).

    Args:
        images: (N, 1, H, W) in [-1, 1].
        labels: (N,) digits 0..9.
        tokenizer: encodes the captions.
        length: tokens per caption, the start token included.

    Returns:
        ``(x0, tokens)``: (M, 1, H, W) images (each repeated once per caption, in order)
        and (M, length) int64 caption ids; M >= 3N (three templates need no attribute).
    """
    words = AttributeThresholds.fit(images, labels).words(images, labels)
    texts = [captions_for(int(k), *w) for k, w in zip(labels, words, strict=True)]
    counts = torch.tensor([len(t) for t in texts])
    tokens = tokenizer.encode([c for t in texts for c in t], length)
    return images.repeat_interleave(counts, dim=0), tokens


def _words(text: str) -> list[str]:
    """Lower-case words and digits; punctuation dropped."""
    return re.findall(r"[a-z]+|[0-9]", text.lower())


class WordTokenizer:
    """Words to ids: 0 is padding, 1 the start token (every caption begins with it, so the
    empty caption is one token), 2 an unknown word; then the vocabulary, sorted.

    Args:
        texts: the texts whose words form the vocabulary.
    """

    PAD, START, UNKNOWN = 0, 1, 2

    def __init__(self, texts: list[str]) -> None:
        words = sorted({w for text in texts for w in _words(text)})
        self.vocabulary = ("<pad>", "<start>", "<unk>", *words)
        self.index = {w: i for i, w in enumerate(self.vocabulary)}

    @classmethod
    def for_digits(cls) -> WordTokenizer:
        """The vocabulary of every training template filled in every way."""
        texts = [
            caption(template, k, w, s) or ""
            for template in TRAIN_TEMPLATES
            for k in range(10)
            for w in THICKNESS_WORDS
            for s in SLANT_WORDS
        ]
        return cls(texts)

    @classmethod
    def from_vocabulary(cls, words: tuple[str, ...] | list[str]) -> WordTokenizer:
        """The tokenizer whose known words are ``words`` (its `words`, e.g. as stored with
        a model): the same ids as the tokenizer they came from."""
        return cls([" ".join(words)])

    @property
    def words(self) -> tuple[str, ...]:
        """The known words, sorted (ids 3, 4, ...)."""
        return self.vocabulary[3:]

    def unknown_words(self, text: str) -> list[str]:
        """The words of ``text`` that are not in the vocabulary (read as `UNKNOWN`)."""
        return [w for w in _words(text) if w not in self.index]

    def length_of(self, text: str) -> int:
        """The tokens ``text`` encodes to, the start token included."""
        return 1 + len(_words(text))

    def __len__(self) -> int:
        return len(self.vocabulary)

    def encode(self, texts: list[str], length: int) -> torch.Tensor:
        """(B, length) int64 ids: start token, the words (cut at ``length``), padding."""
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"length must be a positive integer, got {length!r}")
        ids = torch.full((len(texts), length), self.PAD, dtype=torch.int64)
        for row, text in enumerate(texts):
            tokens = [self.START] + [self.index.get(w, self.UNKNOWN) for w in _words(text)]
            ids[row, : min(length, len(tokens))] = torch.tensor(tokens[:length])
        return ids

    def decode(self, ids: torch.Tensor) -> list[str]:
        """The words of each row of ids, without start and padding."""
        return [" ".join(self.vocabulary[i] for i in row.tolist() if i > self.START) for row in ids]
