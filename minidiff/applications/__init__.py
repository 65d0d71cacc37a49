"""Layer 5: applications built on the diffusion layers.

- `guidance`: classifier-free guidance (Ho & Salimans 2022) with the guidance rescale of
  Lin et al. (2024), and classifier guidance (Dhariwal & Nichol 2021), as denoiser
  wrappers that every sampler takes.
- `classifier`: a noise-aware classifier p(y | x_t, t) and its training; the exact class
  posterior and class-conditional denoisers of a Gaussian mixture.
- `captions`: captions for the digits from templates and measured attributes (stroke
  thickness, slant), and a word tokenizer.
- `text`: a small caption encoder, a U-Net that cross-attends to it, and their settings
  (`CaptionUNetConfig`, the model section of the ``digits-caption`` preset).
- `pipeline`: classifier guidance on a trained ``digits-cond`` run (the presets train
  through `minidiff.runs.train`, the same `Trainer` as every preset).
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
