"""Checkpoints of a dataset count: the profiler's aggregate after whole batches, written atomically.

``snnprof count CONFIG --dataset --json OUT.json --checkpoint-every K`` writes ``OUT.json.ckpt``
every K batches: the :meth:`~snnprof.counting.Profiler.state_dict` plus the progress (batches and
samples done) and a fingerprint of what is being counted (config text, hardware profiles, batch
size, data-set length). Everything is plain data, so the file loads with
``torch.load(..., weights_only=True)``. ``--resume`` reloads it, checks the fingerprint and skips
the batches already counted; the finished run equals an uninterrupted one exactly. The checkpoint
is removed once the result is written.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from snnprof.errors import ConfigError
from snnprof.io import atomic_write_bytes

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "checkpoint_path", "fingerprint", "load_checkpoint",
           "save_checkpoint"]

logger = logging.getLogger(__name__)

#: Version tag of the checkpoint layout.
CHECKPOINT_FORMAT = "snnprof.count-checkpoint/1"
SUFFIX = ".ckpt"


@dataclass
class Checkpoint:
    """A saved aggregate.

    Attributes:
        batches_done: batches counted (the resumed run starts at this batch index).
        samples_done: samples counted.
        state: the profiler state (:meth:`~snnprof.counting.Profiler.state_dict`).
        fingerprint: what was being counted (see :func:`fingerprint`).
    """

    batches_done: int
    samples_done: int
    state: dict[str, Any]
    fingerprint: dict[str, Any]


def checkpoint_path(output: Path) -> Path:
    """Where the checkpoint of a run writing ``output`` lives: ``output`` + ``.ckpt``."""
    return output.with_name(output.name + SUFFIX)


def fingerprint(config_text: str, profiles: list[str], batch_size: int, dataset_len: int) -> dict[str, Any]:
    """What a checkpoint must match to be resumed (plain strings and ints)."""
    return {"config_sha256": hashlib.sha256(config_text.encode("utf-8")).hexdigest(),
            "profiles": list(profiles), "batch_size": int(batch_size), "dataset_len": int(dataset_len)}


def save_checkpoint(path: Path, ckpt: Checkpoint) -> None:
    """Write ``ckpt`` atomically (a crash mid-write leaves the previous checkpoint intact)."""
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "batches_done": ckpt.batches_done, "samples_done": ckpt.samples_done,
                "fingerprint": dict(ckpt.fingerprint), "profiler": ckpt.state}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    logger.debug("checkpoint after %d batches -> %s", ckpt.batches_done, path)


def _mismatch(saved: Mapping[str, Any], expected: Mapping[str, Any]) -> str:
    labels = {"config_sha256": "the config file changed", "profiles": "other hardware profiles",
              "batch_size": "another batch size", "dataset_len": "another data-set length"}
    return "; ".join(f"{labels.get(k, k)} ({saved.get(k)!r} != {v!r})" if k != "config_sha256" else labels[k]
                     for k, v in expected.items() if saved.get(k) != v)


def load_checkpoint(path: Path, expected: Mapping[str, Any]) -> Checkpoint:
    """Read a checkpoint (``torch.load(weights_only=True)``) and check it belongs to this run.

    Raises:
        ConfigError: missing or unreadable file, another format, or a fingerprint mismatch
            (naming what differs).
    """
    if not path.is_file():
        raise ConfigError(path, "", "--resume: no checkpoint here (run with --checkpoint-every first)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  (torch raises many types for bad files)
        raise ConfigError(path, "", f"cannot load checkpoint: {err}") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(path, "format", f"expected a {CHECKPOINT_FORMAT} checkpoint")
    problem = _mismatch(data["fingerprint"], expected)
    if problem:
        raise ConfigError(path, "", f"checkpoint is of another run: {problem}")
    return Checkpoint(int(data["batches_done"]), int(data["samples_done"]), data["profiler"], data["fingerprint"])
