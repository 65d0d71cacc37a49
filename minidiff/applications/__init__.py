"""Layer 5: applications built on the diffusion layers.

- `guidance`: classifier-free guidance (Ho & Salimans 2022) with the guidance rescale of
  Lin et al. (2024), and classifier guidance (Dhariwal & Nichol 2021), as denoiser
  wrappers that every sampler takes.
- `classifier`: a noise-aware classifier p(y | x_t, t) and its training; the exact class
  posterior and class-conditional denoisers of a Gaussian mixture.
- `captions`: captions for the digits from templates and measured attributes (stroke
  thickness, slant), and a word tokenizer.
- `text`: a small caption encoder and a U-Net that cross-attends to it.
- `pipeline`: `train_conditional` and `sample_guided`, label- or caption-conditioned
  digits from one frozen `ConditionalConfig`.
- `inpainting`: replacement (Song et al. 2021) and RePaint (Lugmayr et al. 2022) for any
  unconditional model; masks.
- `superres`: SR3 (Saharia et al. 2021) and its residual variant SRDiff (Li et al. 2022),
  with noise augmentation of the low-resolution input.
- `anomaly`: ELBO, multi-t reconstruction (Graham et al. 2023) and AnoDDPM (Wyatt et al.
  2022) anomaly scores, kNN and PCA baselines, AUROC.
"""

from minidiff.applications.classifier import (
    MixtureClassPosterior,
    MixtureConditionalDenoiser,
    NoiseAwareClassifier,
    train_noise_aware_classifier,
)
from minidiff.applications.guidance import (
    CLASSIFIER_GUIDANCE_FORMS,
    GRADIENT_POINTS,
    ClassifierFreeGuidance,
    ClassifierGuidance,
    class_log_prob_gradient,
    guided_output,
    rescale_guided,
)

__all__ = [
    "MixtureClassPosterior",
    "MixtureConditionalDenoiser",
    "NoiseAwareClassifier",
    "train_noise_aware_classifier",
    "CLASSIFIER_GUIDANCE_FORMS",
    "GRADIENT_POINTS",
    "ClassifierFreeGuidance",
    "ClassifierGuidance",
    "class_log_prob_gradient",
    "guided_output",
    "rescale_guided",
]
