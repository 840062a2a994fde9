"""The run pipeline: config → workload → one profiler → one pricing step → :class:`~snnprof.run.Run`.

Every command goes through it: ``count`` and ``report`` (:func:`run_config`), ``compare``
(:func:`compare_configs`), ``count --dataset`` (:func:`run_dataset`), ``measure``
(:func:`run_measurement`) and ``train``'s final count (:func:`profile_model`).
"""

from __future__ import annotations

from snnprof.pipeline.compare import compare_configs
from snnprof.pipeline.core import choose_profiles, profile_model, run_config
from snnprof.pipeline.dataset import DatasetOptions, run_dataset

__all__ = ["DatasetOptions", "choose_profiles", "compare_configs", "profile_model", "run_config", "run_dataset"]
