"""Single-value graded inputs: nonzeros that all share one value are read as scaled spikes (1 per event).

A tensor whose nonzeros are all 2 (with at least one zero) matches the ``spike`` kind ``{0, c}``
exactly as OTTT's x2.74 spikes do, so it counts one accumulate per (nonzero, connected output).
When those 2s are graded counts (two events each, e.g. a sum pool of sparse spikes), a per-layer
override ``count`` weighs each nonzero by its value (``count_weighting = "value"``), or by 1 with
``count_weighting = "nonzero"``. Both the native and the Torch paths are checked.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snnprof.counting import native, profile
from tests.counting._helpers import binary, conv_sops_bruteforce


@pytest.fixture(params=["native", "torch"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the native statistics and with their Torch fallback."""
    if request.param == "torch":
        monkeypatch.setattr(native, "_load", lambda: "disabled in this test")
    return request.param


def _twos() -> torch.Tensor:
    """``[2, 3, 6, 6]``: 0 or 2 everywhere (at least one of each)."""
    return binary((2, 3, 6, 6), p=0.3, seed=7) * 2.0


def test_linear_all_twos(engine: str):
    x = _twos().flatten(1)
    nnz = int((x != 0).sum())
    net = nn.Sequential(nn.Linear(x.shape[1], 5))
    default = profile(net, x).layer("0")
    assert (default.input_kind, default.sops) == ("spike", nnz * 5)  # read as scaled spikes: 1 per event
    forced = profile(net, x, overrides={"0": "count"}).layer("0")
    assert (forced.input_kind, forced.sops, forced.macs) == ("count", 2 * nnz * 5, 0)
    ones = profile(net, x, overrides={"0": "count"}, count_weighting="nonzero").layer("0")
    assert (ones.input_kind, ones.sops) == ("count", nnz * 5)


def test_conv_all_twos(engine: str):
    x = _twos()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1))
    per_event = conv_sops_bruteforce((x != 0).double(), 4, 3, (6, 6), padding=1)
    assert profile(net, x).layer("0").sops == per_event
    forced = profile(net, x, overrides={"0": "count"}).layer("0")
    assert (forced.input_kind, forced.sops) == ("count", 2 * per_event)
    assert forced.sops == conv_sops_bruteforce(x.double(), 4, 3, (6, 6), padding=1)  # by value


class SumPoolLinear(nn.Module):
    """A sum pool (average pool x window size) of spikes, then a linear map."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 9, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc((F.avg_pool2d(x, 2) * 4).flatten(1))


def _paired_spikes() -> torch.Tensor:
    """``[2, 3, 6, 6]`` spikes whose every 2x2 window holds 0 or exactly 2 spikes (a sum pool of 0s and 2s)."""
    gen = torch.Generator().manual_seed(3)
    x = torch.zeros(2, 3, 6, 6)
    windows = torch.rand(2, 3, 3, 3, generator=gen) < 0.4
    windows.view(-1)[0] = True
    for n, c, i, j in windows.nonzero().tolist():
        x[n, c, 2 * i, 2 * j] = x[n, c, 2 * i + 1, 2 * j + 1] = 1.0  # two spikes on the window's diagonal
    return x


def test_sum_pool_of_sparse_spikes(engine: str):
    x = _paired_spikes()
    windows = int((F.avg_pool2d(x, 2) > 0).sum())  # windows holding two spikes
    spikes = int(x.sum())
    assert spikes == 2 * windows
    net = SumPoolLinear()
    default = profile(net, x).layer("fc")
    assert (default.input_kind, default.sops) == ("spike", windows * 4)  # pooled 2s read as 1 event each
    forced = profile(net, x, overrides={"fc": "count"}).layer("fc")
    assert (forced.input_kind, forced.sops) == ("count", 2 * windows * 4)  # 2 events per window
    folded = profile(net, x, fold_pooling=True).layer("fc")
    assert (folded.input_kind, folded.sops) == ("spike (folded)", spikes * 4)  # one per pre-pool spike
    assert folded.folded_kinds == {"spike": 1}  # what the unfolded view detected
