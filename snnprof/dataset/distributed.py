"""The ``torchrun`` side of a distributed count: environment, process group and result gathering.

``torchrun --nproc_per_node=N [--nnodes=M ...] -m snnprof count CONFIG --dataset`` starts one
process per rank with ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``
set. Each rank profiles its shard, then ONE collective (``all_gather_object``) brings every
rank's outcome to every rank: ``{"ok": True, "result": ProfileResult.to_dict()}`` or ``{"ok":
False, "rank": r, "error": "..."}``. A rank that fails therefore still takes part in the gather,
and rank 0 reports its error instead of hanging. Backend: ``gloo`` on CPU, ``nccl`` on CUDA.
The gather waits for the slowest rank; its timeout is ``SNNPROF_DIST_TIMEOUT_S`` seconds
(default 86400).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

from snnprof.dataset.errors import DistributedRunError
from snnprof.errors import first_line

__all__ = ["DistContext", "device_for", "distributed", "first_failure", "gather_outcomes", "world_from_env"]

logger = logging.getLogger(__name__)

_DEFAULT_TIMEOUT_S = 86400


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a (possibly single-process) run.

    Attributes:
        rank: global rank (0 writes the result).
        world_size: number of ranks.
        local_rank: rank on this node (picks the CUDA device).
        backend: ``gloo``/``nccl``, or ``None`` when not distributed.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """True on rank 0."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """True when more than one rank runs."""
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise DistributedRunError(f"environment variable {name}={raw!r} is not an integer") from None


def world_from_env() -> DistContext:
    """The rank layout torchrun set (``WORLD_SIZE``/``RANK``/``LOCAL_RANK``), without initialising anything.

    Raises:
        DistributedRunError: malformed values.
    """
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    if world < 1 or not 0 <= rank < world:
        raise DistributedRunError(f"invalid torchrun environment: RANK={rank}, WORLD_SIZE={world}")
    return DistContext(rank=rank, world_size=world, local_rank=local)


def device_for(ctx: DistContext, device: str) -> torch.device:
    """The torch device of this rank: ``cuda:LOCAL_RANK`` for ``cuda`` runs, else ``cpu``."""
    if device == "cuda":
        return torch.device("cuda", ctx.local_rank if ctx.active else torch.cuda.current_device())
    return torch.device(device)


@contextmanager
def distributed(device: str) -> Iterator[DistContext]:
    """Initialise the process group when ``WORLD_SIZE > 1`` (destroyed on exit).

    Args:
        device: ``cpu`` (gloo) or ``cuda`` (nccl; sets this rank's CUDA device first).

    Raises:
        DistributedRunError: the process group cannot be initialised.
    """
    ctx = world_from_env()
    if not ctx.active:
        yield ctx
        return
    import torch.distributed as dist

    backend = "nccl" if device == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(ctx.local_rank)
    timeout = timedelta(seconds=_env_int("SNNPROF_DIST_TIMEOUT_S", _DEFAULT_TIMEOUT_S))
    try:
        dist.init_process_group(backend=backend, rank=ctx.rank, world_size=ctx.world_size, timeout=timeout)
    except Exception as err:  # noqa: BLE001  (rendezvous failures come in many types)
        raise DistributedRunError(f"cannot initialise torch.distributed ({backend}): {err}") from None
    logger.debug("rank %d/%d initialised (%s)", ctx.rank, ctx.world_size, backend)
    try:
        yield DistContext(ctx.rank, ctx.world_size, ctx.local_rank, backend)
    finally:
        with contextlib.suppress(Exception):  # a lost peer can make the teardown fail too; the error is reported
            dist.destroy_process_group()


def gather_outcomes(ctx: DistContext, outcome: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every rank's outcome, in rank order (the one collective of a distributed count).

    Raises:
        DistributedRunError: the gather timed out or a rank vanished (reported by every surviving rank).
    """
    if not ctx.active:
        return [dict(outcome)]
    import torch.distributed as dist

    gathered: list[Any] = [None] * ctx.world_size
    try:
        dist.all_gather_object(gathered, dict(outcome))
    except Exception as err:  # noqa: BLE001  (gloo/nccl report timeouts and lost peers in many types)
        timeout = _env_int("SNNPROF_DIST_TIMEOUT_S", _DEFAULT_TIMEOUT_S)
        line = (first_line(err) or type(err).__name__)[:200]
        raise DistributedRunError(
            f"rank {ctx.rank} of {ctx.world_size} lost contact with the other ranks while gathering the results "
            f"(a rank hung or died; timeout {timeout} s, SNNPROF_DIST_TIMEOUT_S): {type(err).__name__}: {line}",
            every_rank=True,
        ) from None
    return [dict(g) for g in gathered]


def first_failure(outcomes: list[dict[str, Any]]) -> DistributedRunError | None:
    """The error to report for the first failed rank (``None`` when all succeeded)."""
    failed = [o for o in outcomes if not o.get("ok")]
    if not failed:
        return None
    first = failed[0]
    more = f" ({len(failed) - 1} more rank(s) failed)" if len(failed) > 1 else ""
    if len(outcomes) == 1:
        return DistributedRunError(f"{first['error']}{more}")
    return DistributedRunError(f"rank {first['rank']} of {len(outcomes)} failed: {first['error']}{more}")
