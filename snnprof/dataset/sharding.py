"""Shard a data set over ranks by whole batches: exact totals, no padding, no duplicated samples.

``torch``'s :class:`~torch.utils.data.DistributedSampler` pads the last shard with repeated samples
so that every rank gets as many; counts would then include duplicates. :class:`BatchShardSampler`
deals the batches of a sequential single-process pass round-robin instead: batch ``k`` (samples
``k*B .. min((k+1)*B, N) - 1``) goes to rank ``k mod W``. A ``DataLoader`` with ``batch_size=B``
on each rank regroups its indices into exactly those batches (only the last global batch can be
short, and it is the last one of its rank), so every call sees the same inputs as in a
single-process run and the merged counts are identical, call counts included.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized

from torch.utils.data import DistributedSampler

__all__ = ["BatchShardSampler"]


class BatchShardSampler(DistributedSampler):
    """Indices of the batches of one rank (see the module docstring).

    Args:
        dataset: a map-style data set (``len`` is used).
        batch_size: B, samples per batch.
        num_replicas: W, ranks.
        rank: this rank.
        limit: profile only the first ``limit`` samples (``--max-batches`` x B); default all.
        start_batch: skip the global batches before this one (a resumed run).

    Attributes:
        batches: global indices of this rank's batches, ascending.
        num_samples: samples of this rank.
        total_samples: samples of all ranks (after ``limit``).
    """

    def __init__(self, dataset: Sized, *, batch_size: int, num_replicas: int = 1, rank: int = 0,
                 limit: int | None = None, start_batch: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=False)  # type: ignore[arg-type]
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        total = len(dataset) if limit is None else min(limit, len(dataset))
        self.batch_size = batch_size
        self.total_samples = total
        self.total_size = total
        self.batches = [k for k in range(start_batch, math.ceil(total / batch_size)) if k % num_replicas == rank]
        self.num_samples = sum(self.batch_length(k) for k in self.batches)

    def batch_length(self, k: int) -> int:
        """Samples in global batch ``k``."""
        return min(self.batch_size, self.total_samples - k * self.batch_size)

    def __iter__(self) -> Iterator[int]:
        for k in self.batches:
            start = k * self.batch_size
            yield from range(start, start + self.batch_length(k))

    def __len__(self) -> int:
        return self.num_samples
