"""Fixtures of the overhead benchmarks: the two cases (built once per session) and their tool runners.

Run with ``.venv/bin/python -m pytest benchmarks`` (not part of the default ``tests/`` run). Rounds per
benchmark: 5, or ``SNNPROF_BENCH_ROUNDS``.
"""

from __future__ import annotations

import warnings

import pytest

from benchmarks.models import Case, Runner, make_case, make_runners


@pytest.fixture(scope="session")
def ottt_case() -> Case:
    return make_case("ottt_vgg11_ws")


@pytest.fixture(scope="session")
def resnet_case() -> Case:
    return make_case("resnet18")


@pytest.fixture(scope="session")
def ottt_runners(ottt_case: Case) -> dict[str, Runner]:
    return make_runners(ottt_case)


@pytest.fixture(scope="session")
def resnet_runners(resnet_case: Case) -> dict[str, Runner]:
    return make_runners(resnet_case)


@pytest.fixture(autouse=True)
def _quiet_peers():
    """fvcore and thop warn about every op/module they do not handle; keep the benchmark output readable."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
