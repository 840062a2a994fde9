"""pytest-benchmark: streaming a data set with ``snnprof count --dataset`` vs plain inference over it.

Each case is one benchmark group (``plain`` and ``profiled`` side by side)::

    .venv/bin/python -m pytest benchmarks/test_dataset.py -o addopts="" --benchmark-columns=median,iqr,rounds

``profiled`` is :func:`snnprof.pipeline.run_dataset` (one profiler over the whole data set,
per-sample statistics and energy on two profiles); ``plain`` is the same loop (model build, reader,
DataLoader, zoo runner) without the profiler. See :mod:`benchmarks.dataset_cases`. For interleaved
A/B ratios that cancel machine drift use ``python -m benchmarks.dataset_table``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from benchmarks.dataset_cases import CASES, DatasetCase, make_dataset_case, plain_run, profiled_run
from benchmarks.models import ROUNDS

RUNS = {"plain": plain_run, "profiled": profiled_run}


@pytest.fixture(scope="module", params=CASES)
def case(request: pytest.FixtureRequest) -> DatasetCase:
    torch.set_num_threads(1)
    made = make_dataset_case(request.param)
    yield made
    made.tmp.cleanup()


@pytest.mark.parametrize("mode", list(RUNS))
def test_dataset(benchmark: Any, case: DatasetCase, mode: str) -> None:
    benchmark.group = f"dataset {case.name}: {case.note}"
    samples = benchmark.pedantic(RUNS[mode], args=(case,), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert samples == case.samples
