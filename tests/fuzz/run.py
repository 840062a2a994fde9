"""Run fuzz cases through ``snnprof count`` and tally the outcomes.

Usage (tallies for the closing note)::

    python -m tests.fuzz.run --cases 300 --seed 0 [--subprocess --timeout 60] [--repo PATH]

In-process (default) the CLI runs through Typer's ``CliRunner``; with ``--subprocess`` every case is
``python -m snnprof count`` in its own process with a timeout (``--repo`` picks the source tree, so
an older checkout can be measured with the same cases).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.fuzz.mutate import REPO, Case, make_case

#: Limits the in-process runs use so that huge mutations are refused, not run.
FUZZ_ENV = {"SNNPROF_MAX_MACS": "5e9", "SNNPROF_MAX_MEMORY": "2G", "OMP_NUM_THREADS": "1"}


@dataclass
class Outcome:
    """What one case did."""

    case: Case
    code: int | None
    stderr: str
    written: list[str]

    @property
    def verdict(self) -> str:
        """``ok``, ``error-2``, ``traceback``, ``killed``, ``multi-line``, ``wrote-on-failure`` or ``exit-N``."""
        if self.code is None:
            return "killed"
        if "Traceback" in self.stderr:
            return "traceback"
        if self.code == 0:
            return "ok"
        if self.code == 2:
            lines = [ln for ln in self.stderr.strip().splitlines() if ln.strip()]
            if len(lines) != 1 or not lines[0].startswith("error: "):
                return "multi-line"
            return "wrote-on-failure" if self.written else "error-2"
        return f"exit-{self.code}"


def _outputs(case: Case) -> tuple[Path, Path]:
    out = case.folder / "out"
    return out / "result.json", out / "layers.csv"


def _written(case: Case) -> list[str]:
    out = case.folder / "out"
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


def run_in_process(case: Case) -> Outcome:
    """The case through the CLI in this process."""
    from typer.testing import CliRunner

    from snnprof.cli import app

    json_out, csv_out = _outputs(case)
    result = CliRunner().invoke(app, ["count", str(case.config), "--json", str(json_out), "--csv", str(csv_out),
                                      "-q"], env=FUZZ_ENV)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += f"\nTraceback (in process): {type(result.exception).__name__}: {result.exception}"
    return Outcome(case, result.exit_code, stderr, _written(case))


def run_subprocess(case: Case, repo: Path, timeout: float) -> Outcome:
    """The case as ``python -m snnprof count`` with a timeout."""
    json_out, csv_out = _outputs(case)
    env = {**os.environ, **FUZZ_ENV, "PYTHONPATH": str(repo)}
    cmd = [sys.executable, "-m", "snnprof", "count", str(case.config), "--json", str(json_out), "--csv",
           str(csv_out), "-q"]
    try:
        done = subprocess.run(cmd, cwd=case.folder, env=env, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        return Outcome(case, None, "", _written(case))
    return Outcome(case, done.returncode, done.stderr, _written(case))


def check_written_json(outcome: Outcome) -> str | None:
    """A successful case's JSON parses strictly (no NaN/Infinity); returns the problem or ``None``."""
    json_out, _ = _outputs(outcome.case)
    if outcome.code != 0 or not json_out.exists():
        return None

    def reject(value: str) -> None:
        raise ValueError(f"non-standard JSON constant {value}")

    try:
        json.loads(json_out.read_text(encoding="utf-8"), parse_constant=reject)
    except ValueError as err:
        return str(err)
    return None


def main() -> None:
    """Tally ``--cases`` cases of ``--seed``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subprocess", action="store_true")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--repo", type=Path, default=REPO)
    parser.add_argument("--show", type=int, default=5, help="examples printed per non-ok verdict")
    args = parser.parse_args()
    tally: collections.Counter[str] = collections.Counter()
    examples: dict[str, list[str]] = collections.defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="snnprof_fuzz_") as tmp:
        for i in range(args.cases):
            case = make_case(args.seed, i, Path(tmp))
            outcome = run_subprocess(case, args.repo, args.timeout) if args.subprocess else run_in_process(case)
            verdict = outcome.verdict
            bad_json = check_written_json(outcome)
            if bad_json:
                verdict = "bad-json"
            tally[verdict] += 1
            if verdict not in ("ok", "error-2") and len(examples[verdict]) < args.show:
                tail = (outcome.stderr.strip().splitlines() or [""])[-1][:160]
                examples[verdict].append(f"#{i} {case.description} :: {tail}")
            print(f"{i:5d} {verdict:16s} {case.description[:100]}", file=sys.stderr, flush=True)
    print(json.dumps(dict(sorted(tally.items())), indent=1))
    for verdict, lines in examples.items():
        print(f"-- {verdict}")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
