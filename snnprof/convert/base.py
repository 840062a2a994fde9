"""What every upstream-checkpoint converter shares: reading the file safely, errors, the registry, key helpers.

A converter turns the checkpoint an upstream repository writes (its container and module layout) into a
``state_dict`` of a zoo model, and says which zoo model and constructor kwargs the checkpoint implies.
Files are read with ``torch.load(weights_only=True)``: tensors, plain containers and numbers, plus numpy
arrays and scalars (several seeds store ``numpy`` values next to the weights; numpy's array
reconstruction is allowlisted, nothing else). A checkpoint that needs any other Python object (a whole
pickled ``nn.Module``, e.g. ``mlflow.pytorch.log_model``) is refused with an error naming the file and
the class, never unpickled.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snnprof.errors import ConfigError

__all__ = [
    "CONVERTERS",
    "MODEL_SEEDS",
    "Converted",
    "SeedConverter",
    "UpstreamCheckpointError",
    "find_state_dict",
    "matching",
    "read_checkpoint",
    "register_converter",
    "rename_keys",
    "require",
    "strip_prefix",
]

logger = logging.getLogger(__name__)


class UpstreamCheckpointError(ConfigError):
    """An upstream checkpoint cannot be converted: ``FILE: KEY: expected ...`` (``KEY`` may be empty).

    Attributes:
        path: the checkpoint file.
        key: the checkpoint entry at fault (``""`` for the file as a whole).
        expected: what was expected there.
    """


@dataclass(frozen=True)
class Converted:
    """A converted checkpoint.

    Attributes:
        state: the zoo model's ``state_dict`` (CPU tensors).
        model: the zoo model the checkpoint is for.
        kwargs: the constructor kwargs the checkpoint implies (what ``[model] kwargs`` must say for the
            shapes and semantics to match; only the keys the checkpoint determines).
        notes: what the conversion dropped or checked, one line each.
        free_shapes: entries whose shape may differ from the configured model's (it takes the saved one:
            DVGO's occupancy cache has its own resolution).
    """

    state: dict[str, torch.Tensor]
    model: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    free_shapes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SeedConverter:
    """A seed's converter in the registry.

    Attributes:
        seed: the seed's short name (``snnprof convert SEED ...``).
        models: the zoo models it converts to.
        convert: ``(loaded checkpoint, path, target model or None) -> Converted``.
        upstream: the repository, commit and files whose checkpoint layout it reads.
    """

    seed: str
    models: tuple[str, ...]
    convert: Callable[[Any, Path, str | None], Converted]
    upstream: str


#: Seed name -> converter.
CONVERTERS: dict[str, SeedConverter] = {}
#: Zoo model name -> seed name of its converter.
MODEL_SEEDS: dict[str, str] = {}


def register_converter(seed: str, models: Iterable[str], upstream: str) -> Callable[
        [Callable[[Any, Path, str | None], Converted]], Callable[[Any, Path, str | None], Converted]]:
    """Decorator registering a seed's converter for its zoo models; refuses duplicates."""
    names = tuple(models)

    def deco(fn: Callable[[Any, Path, str | None], Converted]) -> Callable[[Any, Path, str | None], Converted]:
        if seed in CONVERTERS or any(m in MODEL_SEEDS for m in names):
            raise ValueError(f"a converter for seed {seed!r} or one of {names} is already registered")
        CONVERTERS[seed] = SeedConverter(seed, names, fn, upstream)
        MODEL_SEEDS.update(dict.fromkeys(names, seed))
        return fn

    return deco


# ----------------------------------------------------------------------------------------- reading


def _numpy_globals() -> list[Any]:
    """Numpy's array/scalar reconstruction and its dtype classes (no code runs but numpy's constructors)."""
    core = getattr(np, "_core", None) or np.core
    kinds = (np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
             np.uint32, np.uint64, np.bool_)
    return [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype,
            *(type(np.dtype(k)) for k in kinds)]


_GLOBAL = re.compile(r"GLOBAL ([\w.]+)|got <class '([\w.]+)'>")


def _foreign_globals(path: Path) -> list[str]:
    """Globals a zip checkpoint needs beyond torch's defaults and numpy (empty if unknown or none)."""
    with contextlib.suppress(Exception):
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        return [n for n in names if not n.startswith("numpy.")]
    return []


def read_checkpoint(path: str | Path) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)`` with numpy arrays allowed.

    Raises:
        UpstreamCheckpointError: a missing or unreadable file, or one that holds pickled Python objects
            (the message names the first class and how to get a state dict out of it).
    """
    path = Path(path)
    if not path.is_file():
        raise UpstreamCheckpointError(str(path), "", "expected an upstream checkpoint file; not found")
    foreign = _foreign_globals(path)
    if not foreign:
        try:
            with torch.serialization.safe_globals(_numpy_globals()):
                return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            match = _GLOBAL.search(str(err))
            if match is None:  # not a pickle of allowed or foreign globals: not a checkpoint at all
                raise UpstreamCheckpointError(str(path), "", "expected a PyTorch checkpoint (torch.load cannot "
                                                             "read it)") from None
            foreign = [next(g for g in match.groups() if g)]
        except Exception as err:  # torch raises many types for files that are not checkpoints
            reason = " ".join(str(err).split())[:200]
            raise UpstreamCheckpointError(str(path), "", f"expected a PyTorch checkpoint ({reason})") from None
    raise UpstreamCheckpointError(
        str(path), "",
        f"expected tensors and plain containers (torch.load(weights_only=True)); the file holds pickled Python "
        f"objects ({', '.join(foreign[:3])}), which are never unpickled here: load it with the upstream code, "
        "torch.save(model.state_dict(), ...) and convert that file",
    )


def find_state_dict(obj: Any, path: Path, containers: Iterable[str]) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict inside a loaded checkpoint: under the first of ``containers`` present, or the mapping itself.

    Returns:
        ``(state dict, key it was found under or "")``.

    Raises:
        UpstreamCheckpointError: no mapping of tensors found.
    """
    keys = tuple(containers)
    if isinstance(obj, Mapping):
        for key in keys:
            value = obj.get(key)
            if isinstance(value, Mapping) and value and all(isinstance(v, torch.Tensor) for v in value.values()):
                return dict(value), key
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj), ""
    where = " or ".join(repr(k) for k in keys)
    raise UpstreamCheckpointError(str(path), "", f"expected a state dict of tensors (bare, or under {where})")


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    """Drop ``prefix`` from every key that starts with it (``nn.DataParallel`` / DDP checkpoints)."""
    return {k.removeprefix(prefix): v for k, v in state.items()}


def rename_keys(state: Mapping[str, torch.Tensor],
                rules: Iterable[tuple[str, str]]) -> dict[str, torch.Tensor]:
    """Apply regex substitutions ``(pattern, replacement)`` to every key, in order."""
    compiled = [(re.compile(p), r) for p, r in rules]
    out: dict[str, torch.Tensor] = {}
    for old, value in state.items():
        key = old
        for pattern, repl in compiled:
            key = pattern.sub(repl, key)
        out[key] = value
    return out


def matching(state: Mapping[str, torch.Tensor], pattern: str) -> Iterator[tuple[str, re.Match[str]]]:
    """``(key, match)`` for every key matching the regex ``pattern`` (full match)."""
    compiled = re.compile(pattern)
    for key in state:
        found = compiled.fullmatch(key)
        if found is not None:
            yield key, found


def require(state: Mapping[str, torch.Tensor], key: str, path: Path, what: str) -> torch.Tensor:
    """``state[key]``, or an error naming the key and what it should be."""
    if key not in state:
        raise UpstreamCheckpointError(str(path), key, f"expected {what}; the key is missing")
    return state[key]
