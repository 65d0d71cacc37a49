"""minidiff: diffusion models built from scratch, one layer at a time.

Layers (each imports only from the layers below it):

- 0 `minidiff.markov`: finite-state and Gaussian Markov chains, Langevin samplers (NumPy)
- 1 `minidiff.process`: the Gaussian diffusion math in float64 (NumPy)
- 2 `minidiff.toy`: 2-D data, the exact Gaussian-mixture oracle, a NumPy MLP, DDPM (NumPy)
- 3 `minidiff.nn`: the DDPM U-Net and the toy MLP (PyTorch)
- 3 `minidiff.diffusion`: `GaussianDiffusion`, its losses and samplers, score and flow
  matching (PyTorch)
- 3 `minidiff.data`: toy data, digits and CIFAR-10 as tensors (PyTorch)
- 4 `minidiff.training`: the trainer, EMA, checkpoints, torch.distributed (PyTorch)
- 4 `minidiff.evaluation`: sample quality (Frechet distances, a digits classifier)
- `minidiff.configs`, `minidiff.sections`: named presets, each made of sections
  (data, model, diffusion, training, sampling), and `section.field=value` overrides
- `minidiff.runs`: a preset's run folder (train, resume, load, sample) and the pipelines
  of the command line
- `minidiff.cli`: the ``minidiff`` command, which parses and prints

`import minidiff` is light: import the layer you need, e.g. ``from minidiff import process``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
