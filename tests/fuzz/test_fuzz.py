"""Fuzzed configs and hardware profiles: exit 0 or 2, one ``error:`` line, nothing written on failure.

Deterministic (seeded) and bounded; ``python -m tests.fuzz.run --cases N`` runs more and tallies them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.mutate import make_case
from tests.fuzz.run import check_written_json, run_in_process

#: Cases of the default run (under a minute on two cores); the slow run goes further.
DEFAULT_CASES, SLOW_CASES = 400, 1500


def _check(tmp_path: Path, seed: int, index: int) -> None:
    case = make_case(seed, index, tmp_path)
    outcome = run_in_process(case)
    context = f"case {index}: {case.description}\n{outcome.stderr}"
    assert outcome.code in (0, 2), context
    assert outcome.verdict in ("ok", "error-2"), f"{outcome.verdict}: {context}"
    assert check_written_json(outcome) is None, context
    if outcome.code == 2:
        assert outcome.written == [], context  # nothing (not even a temporary file) is left


def test_fuzzed_configs_and_profiles_never_crash(tmp_path: Path) -> None:
    for index in range(DEFAULT_CASES):
        _check(tmp_path, 0, index)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_more_fuzzed_configs(tmp_path: Path, seed: int) -> None:
    for index in range(SLOW_CASES // 3):
        _check(tmp_path, seed, index)
