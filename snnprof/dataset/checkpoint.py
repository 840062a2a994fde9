"""Checkpoints of a dataset count: the profiler's aggregate after whole batches, written atomically.

``snnprof count CONFIG --dataset --json OUT.json --checkpoint-every K`` writes ``OUT.json.ckpt``
every K batches: the :meth:`~snnprof.counting.Profiler.state_dict` plus the progress (batches and
samples done) and a fingerprint of what is being counted (config text, hardware profiles, batch
size, data-set length). Everything is plain data, so the file loads with
``torch.load(..., weights_only=True)``. ``--resume`` reloads it, checks the fingerprint and skips
the batches already counted; the finished run equals an uninterrupted one exactly. The checkpoint
is removed once the result is written.

A resume file is untrusted input: it is validated against a schema (types and ranges of every
field), its progress must be consistent (``samples_done`` is exactly what ``batches_done`` whole
batches hold, and what the saved per-sample statistics counted), and its fingerprint must match
the config text, the hardware profiles, the batch size, the data (its length and a digest of its
files' names, sizes and modification times) and the snnprof version. Anything off is one
:class:`~snnprof.errors.ConfigError` (exit 2).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from pydantic import Field, model_validator

from snnprof.errors import ConfigError
from snnprof.io import atomic_write_bytes
from snnprof.validation import KeyProblem, PositiveInt, StrictModel, validate
from snnprof.version import __version__

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "checkpoint_path", "fingerprint", "load_checkpoint",
           "save_checkpoint"]

logger = logging.getLogger(__name__)

#: Version tag of the checkpoint layout.
CHECKPOINT_FORMAT = "snnprof.count-checkpoint/2"
#: At most this many files of a data folder enter its digest (names, sizes, modification times).
_MAX_DIGEST_FILES = 100_000
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


def data_digest(path: Path | str | None) -> str:
    """SHA-256 of a data set's file names, sizes and modification times (not their contents)."""
    digest = hashlib.sha256()
    if path is None:
        return digest.hexdigest()
    root = Path(path)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())[:_MAX_DIGEST_FILES]
    for file in files:
        stat = file.stat()
        name = file.name if file == root else os.fsdecode(file.relative_to(root))
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def fingerprint(config_text: str, profiles: list[str], batch_size: int, dataset_len: int,
                data_path: Path | str | None = None) -> dict[str, Any]:
    """What a checkpoint must match to be resumed (plain strings and ints)."""
    return {"config_sha256": hashlib.sha256(config_text.encode("utf-8")).hexdigest(),
            "profiles": list(profiles), "batch_size": int(batch_size), "dataset_len": int(dataset_len),
            "data_sha256": data_digest(data_path), "snnprof_version": __version__}


Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Fingerprint(StrictModel):
    config_sha256: Hex64
    profiles: list[str]
    batch_size: PositiveInt
    dataset_len: PositiveInt
    data_sha256: Hex64
    snnprof_version: str


class _CheckpointFile(StrictModel):
    """The layout of a resume file (the profiler state is checked when it is loaded)."""

    format: Literal["snnprof.count-checkpoint/2"]
    batches_done: Annotated[int, Field(ge=1)]
    samples_done: Annotated[int, Field(ge=1)]
    fingerprint: _Fingerprint
    profiler: dict[str, Any]

    @model_validator(mode="after")
    def _consistent(self) -> _CheckpointFile:
        size, length = self.fingerprint.batch_size, self.fingerprint.dataset_len
        batches = -(-length // size)
        if self.batches_done > batches:
            raise KeyProblem("batches_done", f"expected at most {batches} batches of {size} in a data set of "
                                             f"{length} samples, got {self.batches_done}")
        whole = min(self.batches_done * size, length)
        if self.samples_done != whole:
            raise KeyProblem("samples_done", f"expected {whole} samples in {self.batches_done} batches of {size}, "
                                             f"got {self.samples_done}")
        samples = self.profiler.get("samples")
        counted = samples.get("n") if isinstance(samples, Mapping) else None
        if samples and counted != self.samples_done:
            raise KeyProblem("profiler.samples.n", f"expected the saved statistics to count {self.samples_done} "
                                                   f"samples, got {counted!r}")
        return self


def save_checkpoint(path: Path, ckpt: Checkpoint) -> None:
    """Write ``ckpt`` atomically (a crash mid-write leaves the previous checkpoint intact)."""
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "batches_done": ckpt.batches_done, "samples_done": ckpt.samples_done,
                "fingerprint": dict(ckpt.fingerprint), "profiler": ckpt.state}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    logger.debug("checkpoint after %d batches -> %s", ckpt.batches_done, path)


def _mismatch(saved: Mapping[str, Any], expected: Mapping[str, Any]) -> str:
    labels = {"config_sha256": "the config file changed", "profiles": "other hardware profiles",
              "batch_size": "another batch size", "dataset_len": "another data-set length",
              "data_sha256": "the data files changed", "snnprof_version": "another snnprof version"}
    hashed = ("config_sha256", "data_sha256")
    return "; ".join(f"{labels.get(k, k)} ({saved.get(k)!r} != {v!r})" if k not in hashed else labels[k]
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
        raise ConfigError(path, "", f"cannot load checkpoint: {' '.join(str(err).split())[:300]}") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ConfigError(path, "format", f"expected a {CHECKPOINT_FORMAT} checkpoint, got {got!r}")
    doc = validate(_CheckpointFile, data, path=path)
    problem = _mismatch(doc.fingerprint.model_dump(), expected)
    if problem:
        raise ConfigError(path, "fingerprint", f"checkpoint is of another run: {problem}")
    return Checkpoint(doc.batches_done, doc.samples_done, doc.profiler, doc.fingerprint.model_dump())
