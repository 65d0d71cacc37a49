"""Layer 4: measuring samples.

- `frechet`: the Fréchet (Wasserstein-2) distance between Gaussians, the distance behind
  FID (Dowson & Landau 1982; Heusel et al. 2017), computed stably in float64.
- `inception`: the FID InceptionV3 (TensorFlow's 2015-12-05 graph) written out in PyTorch,
  loading the published weight files as they are.
- `metrics`: FID, the Inception Score, KID and precision/recall from features, each result
  with its sample sizes.
- `likelihood`: bits/dim by the variational bound and by the probability-flow ODE (exact or
  Hutchinson-Skilling divergence, uniform dequantization).
- `judge`: a Fashion-MNIST CNN judge trained here and the feature spaces of the metrics.
- `digits`: a digits classifier trained on the real 8x8 digits and the sample-quality
  metrics of a digits model (confident share, class coverage, Fréchet distance in the
  classifier's features next to its train-vs-test floor).
- `image_quality`: PSNR and SSIM (Wang et al. 2004; Gaussian 11 x 11 window, sigma 1.5).
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
from minidiff.evaluation.image_quality import gaussian_window, psnr, ssim
from minidiff.evaluation.inception import FIDInception
from minidiff.evaluation.inception_weights import load_inception
from minidiff.evaluation.likelihood import (
    mixture_denoiser,
    ode_bits_per_dim,
    ode_log_likelihood,
    vlb_bits_per_dim,
)
from minidiff.evaluation.metrics import (
    fid_bias,
    frechet_inception_distance,
    inception_score,
    kernel_inception_distance,
    precision_recall,
)

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
    "FIDInception",
    "load_inception",
    "fid_bias",
    "frechet_inception_distance",
    "inception_score",
    "kernel_inception_distance",
    "precision_recall",
    "mixture_denoiser",
    "ode_bits_per_dim",
    "ode_log_likelihood",
    "vlb_bits_per_dim",
    "gaussian_window",
    "psnr",
    "ssim",
]
