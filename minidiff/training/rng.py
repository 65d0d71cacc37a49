"""Capture and restore random-number-generator states, for exact resumption.

A resumed run draws the same random numbers as an uninterrupted one only if every
generator it uses is put back where it was. The state is made of types that
``torch.load(..., weights_only=True)`` accepts (uint8 tensors, dicts, lists, ints,
strings), so it can travel inside a checkpoint without unsafe unpickling.

Captured: torch's global CPU generator (used by dropout and by user code), the CUDA
generators of every visible device when CUDA is available, and any named
``torch.Generator`` or ``numpy.random.Generator`` you pass. NumPy's global RandomState
and Python's ``random`` are not captured: the library never draws from them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

__all__ = [
    "DATA_STREAM", "DROPOUT_STREAM", "capture_rng_state", "global_rng_from",
    "restore_rng_state", "stream_seed",
]  # fmt: skip

Generators = Mapping[str, "torch.Generator | np.random.Generator"]


def _to_safe(value: Any) -> Any:
    """A NumPy bit-generator state with arrays as lists and NumPy scalars as Python ones."""
    if isinstance(value, Mapping):
        return {str(key): _to_safe(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, (list, tuple)):
        return [_to_safe(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _from_safe(value: Any) -> Any:
    """Invert `_to_safe`."""
    if isinstance(value, Mapping):
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=value["dtype"])
        return {key: _from_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_safe(item) for item in value]
    return value


def _check_generators(generators: Generators | None) -> dict[str, Any]:
    if generators is None:
        return {}
    if not isinstance(generators, Mapping):
        raise TypeError(
            f"generators must be a mapping name -> generator, got {type(generators).__name__}"
        )
    for name, generator in generators.items():
        if not isinstance(generator, (torch.Generator, np.random.Generator)):
            raise TypeError(
                f"generators[{name!r}] must be a torch.Generator or numpy.random.Generator, "
                f"got {type(generator).__name__}"
            )
    return dict(generators)


def capture_rng_state(generators: Generators | None = None) -> dict[str, Any]:
    """Snapshot the global torch generators and the named ``generators``.

    Args:
        generators: ``{name: torch.Generator | numpy.random.Generator}`` to capture too.

    Returns:
        ``{"torch": uint8 tensor, "cuda": list of uint8 tensors or None,
        "generators": {name: uint8 tensor (torch) or dict (NumPy bit-generator state)}}``.
    """
    generators = _check_generators(generators)
    states: dict[str, Any] = {}
    for name, generator in generators.items():
        if isinstance(generator, torch.Generator):
            states[name] = generator.get_state()
        else:
            states[name] = {"numpy": _to_safe(generator.bit_generator.state)}
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    return {"torch": torch.get_rng_state(), "cuda": cuda, "generators": states}


def restore_rng_state(state: Mapping[str, Any], generators: Generators | None = None) -> None:
    """Put the global torch generators and the named ``generators`` back to ``state``.

    Args:
        state: the output of `capture_rng_state`.
        generators: the generators to restore, by the names they were captured under;
            each must be of the same kind (torch or NumPy) as when captured.

    Raises:
        ValueError: ``state`` is malformed, lacks a requested name, or holds the other kind
            of generator under that name.
    """
    generators = _check_generators(generators)
    if not isinstance(state, Mapping) or not {"torch", "cuda", "generators"} <= set(state):
        raise ValueError(
            "state must be the dict returned by capture_rng_state, with keys "
            f"'torch', 'cuda', 'generators'; got {state!r:.200}"
        )
    saved = state["generators"]
    for name, generator in generators.items():
        if name not in saved:
            raise ValueError(f"no RNG state saved for generator {name!r}; saved: {sorted(saved)}")
        entry = saved[name]
        if isinstance(generator, torch.Generator):
            if not isinstance(entry, torch.Tensor):
                raise ValueError(f"the state saved for {name!r} is not a torch.Generator state")
            generator.set_state(entry)
        else:
            if not (isinstance(entry, Mapping) and "numpy" in entry):
                raise ValueError(f"the state saved for {name!r} is not a NumPy Generator state")
            generator.bit_generator.state = _from_safe(entry["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        if len(state["cuda"]) != torch.cuda.device_count():
            raise ValueError(
                f"state holds {len(state['cuda'])} CUDA generator states, but "
                f"{torch.cuda.device_count()} devices are visible"
            )
        torch.cuda.set_rng_state_all(state["cuda"])


DATA_STREAM, DROPOUT_STREAM = 0, 1  # the streams of `stream_seed` a training run uses


def stream_seed(seed: int, stream: int, index: int) -> int:
    """A 63-bit seed that is a function of (seed, stream, index) only (NumPy's
    SeedSequence): for a training run, ``index`` is the epoch of the data order
    (`DATA_STREAM`) or the rank for dropout (`DROPOUT_STREAM`)."""
    entropy = [seed, stream, index]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)


@contextmanager
def global_rng_from(generator: torch.Generator, device: torch.device) -> Iterator[None]:
    """Run with the global generator of ``device`` set from ``generator``, and read its
    state back into ``generator`` afterwards (`torch.random.fork_rng` restores the
    caller's global state): code that draws from the global generator, as dropout does,
    then depends on ``generator`` alone."""
    cuda = device.type == "cuda"
    devices = [device.index if device.index is not None else 0] if cuda else []
    fork = torch.random.fork_rng(devices=devices, **({"device_type": "cuda"} if cuda else {}))
    with fork:
        if cuda:
            torch.cuda.set_rng_state(generator.get_state(), device)
        else:
            torch.set_rng_state(generator.get_state())
        yield
        state = torch.cuda.get_rng_state(device) if cuda else torch.get_rng_state()
        generator.set_state(state)
