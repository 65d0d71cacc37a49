"""Judges for generated audio: dominant frequency for tones, a log-mel classifier for digits.

- `dominant_frequency`: the peak of the zero-padded magnitude spectrum, in Hz; for a
  synthetic tone it recovers the pitch (tested). `frequency_distance` is the 1-Wasserstein
  distance between the dominant-frequency distributions of two sets, to be read next to
  the data-vs-data floor (two independent draws of the data).
- `log_mel`: log mel-band energies of the short-time Fourier transform (the mel scale
  m = 2595 log10(1 + f / 700), O'Shaughnessy 1987; triangular filters as in HTK).
- `SpokenDigitsJudge`: a one-hidden-layer classifier (scikit-learn's MLP) on time-pooled
  log-mel features of the training voices. It scores class-conditional samples by
  accuracy (the sample's label against the judge's) and by the Fréchet distance
  (Heusel et al. 2017) in its hidden features, next to the train-vs-test floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from minidiff.evaluation.frechet import frechet_distance, gaussian_statistics

__all__ = [
    "dominant_frequency",
    "frequency_distance",
    "mel_filterbank",
    "log_mel",
    "SpokenDigitsJudge",
    "save_spectrograms",
]


def dominant_frequency(waveforms: torch.Tensor, rate: int, *, pad_factor: int = 8) -> np.ndarray:
    """(N,) the frequency in Hz of the largest |FFT| bin of each (N, 1, S) waveform,
    zero-padded to ``pad_factor`` S (bin width rate / (pad_factor S))."""
    x = torch.as_tensor(waveforms, dtype=torch.float64).reshape(len(waveforms), -1)
    n_fft = pad_factor * x.shape[1]
    spectrum = torch.fft.rfft(x, n=n_fft).abs()
    return spectrum.argmax(dim=1).numpy() * rate / n_fft


def frequency_distance(a: np.ndarray, b: np.ndarray) -> float:
    """1-Wasserstein distance between two empirical distributions of frequencies (Hz)."""
    from scipy.stats import wasserstein_distance

    return float(wasserstein_distance(np.asarray(a), np.asarray(b)))


def mel_filterbank(n_fft: int, rate: int, bands: int) -> torch.Tensor:
    """(bands, n_fft // 2 + 1) triangular filters equally spaced on the mel scale, 0 to rate / 2."""

    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hertz(m):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    edges = hertz(np.linspace(mel(0.0), mel(rate / 2), bands + 2))  # (bands + 2,) Hz
    bins = np.linspace(0.0, rate / 2, n_fft // 2 + 1)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    return torch.as_tensor(np.clip(np.minimum(rising, falling), 0.0, None), dtype=torch.float32)


def log_mel(
    waveforms: torch.Tensor, rate: int, *, n_fft: int = 256, hop: int = 128, bands: int = 40
) -> torch.Tensor:
    """(N, bands, frames) log(mel energy + 1e-6) of (N, 1, S) waveforms (Hann window)."""
    x = torch.as_tensor(waveforms, dtype=torch.float32).reshape(len(waveforms), -1)
    window = torch.hann_window(n_fft)
    power = (
        torch.stft(x, n_fft, hop, window=window, return_complex=True).abs() ** 2
    )  # (N, F, frames)
    return torch.log(torch.einsum("mf,nft->nmt", mel_filterbank(n_fft, rate, bands), power) + 1e-6)


@dataclass
class SpokenDigitsJudge:
    """A log-mel MLP classifier of spoken digits, fitted on training voices."""

    rate: int
    frames: int  # log-mel frames after pooling
    mean: np.ndarray  # (D,) feature standardisation
    std: np.ndarray
    classifier: object  # sklearn.neural_network.MLPClassifier

    @classmethod
    def fit(
        cls,
        waveforms: torch.Tensor,
        labels: torch.Tensor,
        rate: int,
        *,
        frames: int = 16,
        hidden: int = 64,
        seed: int = 0,
    ) -> SpokenDigitsJudge:
        """Fit on (N, 1, S) waveforms with labels (N,)."""
        from sklearn.neural_network import MLPClassifier

        features = cls._pooled(waveforms, rate, frames)
        mean, std = features.mean(0), features.std(0) + 1e-6
        classifier = MLPClassifier((hidden,), alpha=1e-3, max_iter=400, random_state=seed)
        classifier.fit((features - mean) / std, np.asarray(labels))
        return cls(rate, frames, mean, std, classifier)

    @staticmethod
    def _pooled(waveforms: torch.Tensor, rate: int, frames: int) -> np.ndarray:
        mel = log_mel(waveforms, rate)  # (N, bands, frames_full)
        pooled = torch.nn.functional.adaptive_avg_pool1d(mel, frames)  # (N, bands, frames)
        return pooled.reshape(len(waveforms), -1).double().numpy()

    def _inputs(self, waveforms: torch.Tensor) -> np.ndarray:
        return (self._pooled(waveforms, self.rate, self.frames) - self.mean) / self.std

    def predict(self, waveforms: torch.Tensor) -> np.ndarray:
        """(N,) predicted digits."""
        return self.classifier.predict(self._inputs(waveforms))

    def features(self, waveforms: torch.Tensor) -> np.ndarray:
        """(N, hidden) the classifier's hidden ReLU activations."""
        weights, biases = self.classifier.coefs_[0], self.classifier.intercepts_[0]
        return np.maximum(self._inputs(waveforms) @ weights + biases, 0.0)

    def accuracy(self, waveforms: torch.Tensor, labels: torch.Tensor) -> float:
        """Share of waveforms whose predicted digit is ``labels``."""
        return float((self.predict(waveforms) == np.asarray(labels)).mean())

    def frechet(self, a: torch.Tensor, b: torch.Tensor) -> float:
        """Fréchet distance between the Gaussians fitted to the hidden features of two sets."""
        return frechet_distance(
            *gaussian_statistics(self.features(a)), *gaussian_statistics(self.features(b))
        )


def save_spectrograms(
    waveforms: torch.Tensor, path, rate: int, *, titles: list[str] | None = None
) -> None:
    """Save a PNG with the waveform (top) and log-mel spectrogram (bottom) of each of the
    (N, 1, S) waveforms, one column each (matplotlib, imported here)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = len(waveforms)
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles must name each of the {n} waveforms, got {len(titles)}")
    mel = log_mel(waveforms, rate)
    fig, axes = plt.subplots(2, n, figsize=(3 * n, 4), squeeze=False)
    for i in range(n):
        axes[0, i].plot(
            np.arange(waveforms.shape[-1]) / rate, waveforms[i].reshape(-1).numpy(), lw=0.5
        )
        axes[0, i].set_title(titles[i] if titles else f"sample {i}")
        axes[1, i].imshow(mel[i].numpy(), origin="lower", aspect="auto")
        axes[1, i].set_xlabel("frame")
    axes[0, 0].set_ylabel("amplitude")
    axes[1, 0].set_ylabel("mel band")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
