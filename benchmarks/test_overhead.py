"""pytest-benchmark: plain forward vs snnprof vs SpikingJelly 2.0 op_counter vs fvcore vs thop.

Each model is one benchmark group, so pytest-benchmark prints the tools side by side::

    .venv/bin/python -m pytest benchmarks --benchmark-columns=min,median,mean,max,rounds

* ``ottt_vgg11_ws``: OTTT online spiking VGG-11, 32x32, batch 16, the whole T=6 single-step loop.
* ``resnet18``: ResNet-18 ANN, 224x224, batch 8, one forward.

All runs are under ``torch.no_grad()`` with the model in eval mode; thop runs on a fresh deepcopy
(made in the untimed setup) because it adds buffers to the model. For interleaved A/B ratios that
cancel machine drift use ``python -m benchmarks.overhead_table`` instead.
"""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.models import ROUNDS, TOOLS, Runner


def _bench(benchmark: Any, runner: Runner) -> Any:
    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (runner.prepare(),), {}

    return benchmark.pedantic(runner.call, setup=setup, rounds=ROUNDS, iterations=1, warmup_rounds=1)


def _check(tool: str, out: Any) -> None:
    """Each tool must actually have counted something (guards against benchmarking a no-op)."""
    if tool == "snnprof":
        assert out.totals.dense_macs > 0
    elif tool == "sj_dispatch":
        assert sum(out) > 0
    elif tool in ("fvcore", "thop"):
        assert out > 0


@pytest.mark.benchmark(group="ottt_vgg11_ws (B=16, T=6, 32x32)")
@pytest.mark.parametrize("tool", TOOLS)
def test_ottt_vgg11_ws(benchmark: Any, ottt_runners: dict[str, Runner], tool: str) -> None:
    out = _bench(benchmark, ottt_runners[tool])
    _check(tool, out)


@pytest.mark.benchmark(group="resnet18 (B=8, 224x224)")
@pytest.mark.parametrize("tool", TOOLS)
def test_resnet18(benchmark: Any, resnet_runners: dict[str, Runner], tool: str) -> None:
    out = _bench(benchmark, resnet_runners[tool])
    _check(tool, out)
