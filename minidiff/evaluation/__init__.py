"""Layer 4: measuring samples.

- `frechet`: the Fréchet (Wasserstein-2) distance between Gaussians, the distance behind
  FID (Dowson & Landau 1982; Heusel et al. 2017), computed stably in float64.
- `digits`: a digits classifier trained on the real 8x8 digits and the sample-quality
  metrics of a digits model (confident share, class coverage, Fréchet distance in the
  classifier's features next to its train-vs-test floor).
"""

from minidiff.evaluation.digits import (
    CONFIDENCE_THRESHOLD,
    DigitsClassifier,
    DigitsReference,
    class_entropy,
    digit_quality,
    digits_reference,
    quantise_digits,
)
from minidiff.evaluation.frechet import frechet_distance, gaussian_statistics, psd_sqrt

__all__ = [
    "CONFIDENCE_THRESHOLD",
    "DigitsClassifier",
    "DigitsReference",
    "class_entropy",
    "digit_quality",
    "digits_reference",
    "quantise_digits",
    "frechet_distance",
    "gaussian_statistics",
    "psd_sqrt",
]
