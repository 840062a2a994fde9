"""Dataset-scale and distributed profiling: stream a data set through one profiler, shard it over ranks.

``snnprof count CONFIG --dataset`` (see ``docs/dataset_profiling.md``) is built from these parts:

* :mod:`~snnprof.dataset.sharding`: whole batches dealt to ranks, no padding or duplicates;
* :mod:`~snnprof.dataset.loop`: the streaming loop (reader errors, early ends, checkpoints);
* :mod:`~snnprof.dataset.distributed`: ``torchrun`` environment, process group, result gathering;
* :mod:`~snnprof.dataset.checkpoint`: atomic aggregate checkpoints and ``--resume``;
* :mod:`~snnprof.energy.spread`: the spread of per-sample energy per hardware profile;
* :mod:`~snnprof.render.dataset`: the across-samples table of the terminal output.
"""

from __future__ import annotations

from snnprof.dataset.errors import DatasetError, DistributedRunError
from snnprof.dataset.sharding import BatchShardSampler

__all__ = ["BatchShardSampler", "DatasetError", "DistributedRunError"]
