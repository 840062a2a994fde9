"""Models from outside the zoo: ``"package.module:callable"`` and ``"path/to/file.py:callable"`` references.

A reference names a callable that returns an ``nn.Module`` (a class or a factory function; an
``nn.Module`` instance is taken as it is). ``package.module`` is imported with the working
directory first on ``sys.path`` (as ``python -m`` and uvicorn do); ``file.py`` is executed as a
module of its own (once per file version), with its folder first on ``sys.path`` so that its
sibling imports work. A relative file resolves against the config's folder, then the working
directory.

:func:`external_entry` wraps such a callable (or any factory) in a :class:`ModelEntry` whose inputs
come from :mod:`snnprof.data.synthetic_tensors` and whose runner follows the step mode: one call
(``multi``, ``ann``) or one call per time step (``single``). Before every run, SpikingJelly state
(``MemoryModule``) is reset, so repeated runs (``compare`` runs a model twice) count the same.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnprof.data.synthetic_tensors import TensorSpec, make_tensors
from snnprof.errors import described
from snnprof.models.registry import Inputs, ModelEntry, default_run

__all__ = [
    "ModelReferenceError",
    "external_entry",
    "is_reference",
    "load_reference",
    "reference_file",
    "reset_state",
    "split_reference",
]

logger = logging.getLogger(__name__)

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED = re.compile(rf"{_IDENT}(\.{_IDENT})*")


class ModelReferenceError(ValueError):
    """A model reference cannot be resolved (the message names the reference and what went wrong)."""


def is_reference(name: str) -> bool:
    """Whether ``name`` is a ``module:callable`` / ``file.py:callable`` reference rather than a zoo name."""
    return ":" in name


def split_reference(ref: str) -> tuple[str, str]:
    """``(module or file, attribute path)`` of a reference (the last ``:`` splits; Windows drives survive).

    Raises:
        ModelReferenceError: a malformed reference.
    """
    source, _, attr = ref.rpartition(":")
    if not source or not attr:
        raise ModelReferenceError(f"expected 'package.module:callable' or 'path/file.py:callable', got {ref!r}")
    if not _DOTTED.fullmatch(attr):
        raise ModelReferenceError(f"expected a callable name after ':' (e.g. 'TinyNet'), got {attr!r} in {ref!r}")
    if not source.endswith(".py") and not _DOTTED.fullmatch(source):
        raise ModelReferenceError(f"expected a dotted module name (e.g. 'mypkg.models') or a .py file before ':', "
                             f"got {source!r} in {ref!r}")
    return source, attr


def reference_file(source: str, folder: Path | None) -> Path | None:
    """The Python file a reference names (``None`` for a module name).

    Args:
        source: the part before ``:``.
        folder: the config's folder (relative files resolve against it first, then the working directory).

    Raises:
        ModelReferenceError: the file does not exist.
    """
    if not source.endswith(".py"):
        return None
    given = Path(source).expanduser()
    candidates = [given] if given.is_absolute() or folder is None else list(dict.fromkeys([folder / given, given]))
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise ModelReferenceError(f"expected an existing Python file, not found: {' or '.join(map(str, candidates))}")


@contextmanager
def _first_on_path(folder: Path) -> Iterator[None]:
    """``folder`` first on ``sys.path`` inside the block (removed again unless it was there)."""
    entry = str(folder)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


def _module_from_file(path: Path) -> Any:
    """Execute ``path`` as a module (cached per path and modification time)."""
    stamp = f"{path}:{path.stat().st_mtime_ns}"
    name = f"snnprof_user_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}_{hashlib.sha1(stamp.encode()).hexdigest()[:10]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelReferenceError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up while it executes
    try:
        with _first_on_path(path.parent):
            spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _import(source: str, folder: Path | None, ref: str) -> Any:
    """The module a reference names (imported or executed)."""
    path = reference_file(source, folder)
    try:
        if path is not None:
            return _module_from_file(path)
        with _first_on_path(Path.cwd()):
            return importlib.import_module(source)
    except ModelReferenceError:
        raise
    except Exception as err:  # noqa: BLE001  (user code raises anything while it imports)
        what = path if path is not None else f"module {source!r}"
        raise ModelReferenceError(f"cannot import {what} of {ref!r}: {described(err)}") from None


def load_reference(ref: str, folder: Path | None = None) -> Callable[..., nn.Module]:
    """Resolve a reference to its callable (a class, a factory, or an ``nn.Module`` instance wrapped in one).

    Args:
        ref: ``"package.module:callable"`` or ``"path/file.py:callable"`` (dotted attributes allowed).
        folder: the config's folder, against which a relative file resolves first.

    Raises:
        ModelReferenceError: malformed reference, missing file, failing import, missing attribute, or an
            attribute that is neither callable nor an ``nn.Module``.
    """
    source, attr = split_reference(ref)
    obj = _import(source, folder, ref)
    where = source
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ModelReferenceError(f"{where} has no attribute {part!r} (reference {ref!r})")
        obj = getattr(obj, part)
        where = f"{where}:{part}" if where == source else f"{where}.{part}"
    if isinstance(obj, nn.Module):
        return _instance_factory(obj, ref)
    if not callable(obj):
        raise ModelReferenceError(f"expected {ref!r} to be a callable returning a torch.nn.Module, got "
                             f"{type(obj).__name__}")
    return obj


def _instance_factory(module: nn.Module, ref: str) -> Callable[..., nn.Module]:
    """A factory returning a module defined as an instance (it takes no keyword arguments)."""

    def factory(**kwargs: Any) -> nn.Module:
        if kwargs:
            raise TypeError(f"{ref} is a module instance: it takes no kwargs (got {', '.join(sorted(kwargs))})")
        return module

    return factory


def reset_state(model: nn.Module) -> None:
    """Reset SpikingJelly memories (membranes, traces) of every ``MemoryModule`` in ``model``."""
    from spikingjelly.activation_based import base

    for module in model.modules():
        if isinstance(module, base.MemoryModule):
            module.reset()


def _run_multi(model: nn.Module, inputs: Inputs, time_steps: int) -> Any:
    """One call with every time step (``[T, B, ...]``) or no time axis; state reset first."""
    reset_state(model)
    return default_run(model, inputs, time_steps)


def _slice(inputs: Inputs, t: int) -> Inputs:
    if isinstance(inputs, tuple):
        return tuple(x[t] for x in inputs)
    if isinstance(inputs, dict):
        return {k: v[t] for k, v in inputs.items()}
    return inputs[t]


def _run_single(model: nn.Module, inputs: Inputs, time_steps: int) -> Any:
    """One call per time step on ``[B, ...]`` slices of ``[T, B, ...]`` inputs; outputs stacked on dim 0."""
    reset_state(model)
    outputs = [default_run(model, _slice(inputs, t), time_steps) for t in range(time_steps)]
    first = outputs[0]
    return torch.stack(outputs) if isinstance(first, torch.Tensor) else outputs


def _single_from_batch(batch: Any) -> Inputs:
    """A collated ``[B, T, ...]`` batch as ``[T, B, ...]`` (the single-step runner slices dim 0)."""
    if isinstance(batch, torch.Tensor):
        return batch.transpose(0, 1).contiguous()
    if isinstance(batch, (tuple, list)):
        return tuple(_single_from_batch(x) for x in batch)
    return batch


def external_entry(name: str, factory: Callable[..., nn.Module], specs: Sequence[TensorSpec],
                   step_mode: str) -> ModelEntry:
    """A zoo-like entry for a model outside the zoo.

    Args:
        name: what results and messages call the model (the reference or the graph file).
        factory: builds the model from the config's ``kwargs``.
        specs: the synthetic inputs (may be empty for dataset configs).
        step_mode: ``multi``, ``single`` or ``ann`` (see :mod:`snnprof.data.synthetic_tensors`).
    """
    specs = tuple(specs)

    def make_inputs(model: nn.Module, batch_size: int, time_steps: int, seed: int, **kwargs: Any) -> Inputs:
        del model, seed
        if kwargs:
            raise TypeError(f"synthetic inputs of {name} take no input.kwargs (got {', '.join(sorted(kwargs))}); "
                            "use input.shape, kind, rate and seed")
        return make_tensors(specs, batch_size, time_steps, step_mode)

    run = _run_single if step_mode == "single" else _run_multi
    return ModelEntry(name, factory, make_inputs, run, step_mode, description="model outside the zoo",
                      from_batch=_single_from_batch if step_mode == "single" else None)
