"""Stream a configured data set through a model under one profiler, batch by batch.

The reader (``[input] reader``) gives ``(inputs, target)`` per sample; a ``DataLoader`` over a
:class:`~snnprof.dataset.sharding.BatchShardSampler` collates them into batches of
``input.batch_size``; the zoo entry turns collated inputs into its runner's inputs
(``entry.batch_to_inputs``) and runs them (``entry.run(model, inputs, T)``); the profiler closes
each batch (``end_batch``) so per-sample statistics fold into running moments. Nothing per sample
is kept: memory is constant in the number of samples.

Failures are reported as :class:`~snnprof.dataset.errors.DatasetError` naming the data set, the
reader and how far the run got: a reader exception, or an ``IndexError`` before ``len(dataset)``
samples were read (the data set ended early).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate

from snnprof.config import RunConfig
from snnprof.counting import Profiler
from snnprof.dataset.errors import DatasetError
from snnprof.dataset.sharding import BatchShardSampler
from snnprof.errors import ConfigError, SnnprofError, described
from snnprof.models.registry import ModelEntry

__all__ = ["BatchDone", "first_batch", "open_config_dataset", "stream_dataset", "to_device"]

logger = logging.getLogger(__name__)

#: ``(batches done on this rank, samples done on this rank, samples in the batch just done)``.
BatchDone = Callable[[int, int, int], None]


def open_config_dataset(cfg: RunConfig) -> Dataset:
    """Open ``input.path`` with ``input.reader`` and its ``input.kwargs``; the data set must have a length.

    Raises:
        ConfigError: the reader rejects the path or kwargs, or the data set has no ``len()``.
    """
    from snnprof.data import get_reader

    if cfg.input.reader is None or cfg.input.path is None:
        raise ConfigError(cfg.path, "input.source", "a dataset count needs source = 'dataset' with path and reader")
    try:
        dataset = get_reader(cfg.input.reader)(cfg.input.path, **cfg.input.kwargs)
        length = len(dataset)  # type: ignore[arg-type]
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001  (readers raise many types for bad files)
        raise ConfigError(cfg.path, "input.path", f"cannot open {cfg.input.path} with reader "
                                                  f"{cfg.input.reader!r}: {described(err)}") from None
    if length < 1:
        raise ConfigError(cfg.path, "input.path", f"dataset {cfg.input.path} (reader {cfg.input.reader!r}) is empty")
    return dataset


def to_device(obj: Any, device: torch.device) -> Any:
    """Move the tensors of ``obj`` (a tensor, or tuples/lists/dicts of them) to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, Mapping):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


def _pair(batch: Any, cfg: RunConfig) -> tuple[Any, Any]:
    """The collated ``(inputs, targets)`` of a batch."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ConfigError(cfg.path, "input.reader", f"reader {cfg.input.reader!r} must give (inputs, target) pairs")
    return batch[0], batch[1]


def _inputs_of(batch: Any, cfg: RunConfig) -> Any:
    """The collated inputs of a collated ``(inputs, target)`` batch."""
    return _pair(batch, cfg)[0]


def first_batch(cfg: RunConfig, entry: ModelEntry) -> tuple[Any, Any]:
    """The data set's first ``input.batch_size`` samples: ``(runner inputs, collated targets)``.

    What a dataset config profiles without ``--dataset``.

    Raises:
        ConfigError: unreadable data set.
        DatasetError: a sample cannot be read.
    """
    dataset = open_config_dataset(cfg)
    sampler = BatchShardSampler(dataset, batch_size=cfg.input.batch_size, limit=cfg.input.batch_size)  # type: ignore[arg-type]
    inputs, targets = _pair(next(_batches(dataset, sampler, cfg)), cfg)
    return entry.batch_to_inputs(inputs), targets


def _batches(dataset: Dataset, sampler: BatchShardSampler, cfg: RunConfig,
             quiet: Callable[[], AbstractContextManager[Any]] = nullcontext) -> Iterator[Any]:
    """Collated batches (each read inside ``quiet()``); reader failures become :class:`DatasetError`."""
    loader = DataLoader(dataset, batch_size=cfg.input.batch_size, sampler=sampler, collate_fn=default_collate,
                        num_workers=0)
    it = iter(loader)
    where = f"{cfg.input.path} (reader {cfg.input.reader!r})"
    for done, k in enumerate(sampler.batches):
        first = k * sampler.batch_size
        span = f"{first}..{first + sampler.batch_length(k) - 1}"
        try:
            with quiet():
                batch = next(it)
        except StopIteration:
            raise DatasetError(f"dataset {where} ended early: batch {done + 1} of {len(sampler.batches)} "
                               "is missing") from None
        except IndexError as err:
            raise DatasetError(f"dataset {where} ended early: samples {span} missing though len() = "
                               f"{len(dataset)} ({described(err)})") from None  # type: ignore[arg-type]
        except Exception as err:  # noqa: BLE001  (any reader failure: report it, do not write a result)
            raise DatasetError(f"cannot read samples {span} of {where}: {described(err)}") from None
        yield batch


def _batch_len(inputs: Any, expected: int) -> int:
    first = inputs if isinstance(inputs, torch.Tensor) else next(
        (v for v in (inputs.values() if isinstance(inputs, Mapping) else inputs) if isinstance(v, torch.Tensor)), None)
    return int(first.shape[0]) if isinstance(first, torch.Tensor) and first.dim() else expected


@dataclass
class StreamSpec:
    """What to stream: the model and its zoo entry, the data, where to run it.

    Attributes:
        cfg: the validated config (``input.batch_size``, ``input.time_steps``, reader).
        entry: the zoo entry (``batch_to_inputs`` and ``run``).
        model: the network (already on ``device``, in eval mode).
        dataset: the opened data set.
        sampler: this rank's batches.
        device: where inputs go.
    """

    cfg: RunConfig
    entry: ModelEntry
    model: nn.Module
    dataset: Dataset
    sampler: BatchShardSampler
    device: torch.device


def stream_dataset(spec: StreamSpec, prof: Profiler, on_batch: BatchDone | None = None) -> int:
    """Run every batch of ``spec.sampler`` under ``prof`` (which must be entered); returns samples done.

    Raises:
        DatasetError: a reader failure or a data set that ends early.
        ConfigError: the model rejects a batch.
    """
    cfg, steps = spec.cfg, spec.cfg.input.time_steps
    samples = 0
    for done, batch in enumerate(_batches(spec.dataset, spec.sampler, cfg, prof.paused), start=1):
        expected = spec.sampler.batch_length(spec.sampler.batches[done - 1])
        inputs = _inputs_of(batch, cfg)
        size = _batch_len(inputs, expected)
        if size != expected:
            raise DatasetError(f"dataset {cfg.input.path}: batch {done} holds {size} samples, expected {expected}")
        model_inputs = to_device(spec.entry.batch_to_inputs(inputs), spec.device)
        try:
            spec.entry.run(spec.model, model_inputs, steps)
        except SnnprofError:
            raise
        except Exception as err:  # noqa: BLE001  (model code raises anything; reported, never a traceback)
            raise ConfigError(cfg.path, "input", f"the model rejected batch {done} of the dataset: "
                                                 f"{described(err)}") from None
        prof.end_batch(size)
        samples += size
        if on_batch is not None:
            on_batch(done, samples, size)
    if samples != spec.sampler.num_samples:
        raise DatasetError(f"dataset {cfg.input.path} ended early: {samples} of {spec.sampler.num_samples} samples")
    return samples
