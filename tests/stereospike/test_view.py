"""StereoSpike's firing-rate view (tensor density nonzero/numel) against hand computations."""

from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import functional

import snnprof
from snnprof.models.stereospike import StereoSpike, make_inputs, run
from snnprof.views.stereospike import (
    DECODER_TENSORS,
    ENCODER_TENSORS,
    SEED_TENSORS,
    DensityRecorder,
    StereoSpikeDensity,
    densities_from_profile,
    density,
    stereospike_density,
)


def test_density_counts_graded_entries_once() -> None:
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    assert density(a) == 2 / 4
    assert density(a + b) == 3 / 4  # the entry of value 2 counts once: density, not spike sum (4/4)
    assert density(torch.zeros(3, 5)) == 0.0


def test_means_of_hand_values() -> None:
    values = dict(zip(SEED_TENSORS, [i / 100 for i in range(len(SEED_TENSORS))], strict=True))
    view = StereoSpikeDensity(tensors=values, samples=1)
    assert len(SEED_TENSORS) == 14  # the seed's 15 keys minus 'out_combined', which it never fills
    assert view.mean == pytest.approx(sum(values.values()) / 14)
    assert view.encoder_mean == pytest.approx(sum(values[t] for t in ENCODER_TENSORS) / 5)
    assert view.decoder_mean == pytest.approx(sum(values[t] for t in DECODER_TENSORS) / 4)
    assert StereoSpikeDensity(tensors=dict.fromkeys(SEED_TENSORS)).mean is None
    assert view.to_dict()["view"] == "stereospike_density"


def _seed_calculate_firing_rates(model: StereoSpike, x: torch.Tensor) -> dict[str, float]:
    """The seed's ``StereoSpike.calculate_firing_rates``, written out step by step (batch 1)."""
    functional.reset_net(model)
    out: dict[str, float] = {}

    def rate(name: str, t: torch.Tensor) -> torch.Tensor:
        out[name] = float(t.count_nonzero()) / t.numel()
        return t

    frame = x[:, 0]
    b = rate("out_bottom", model.bottom(frame))
    c1 = rate("out_conv1", model.conv1(b))
    c2 = rate("out_conv2", model.conv2(c1))
    c3 = rate("out_conv3", model.conv3(c2))
    c4 = rate("out_conv4", model.conv4(c3))
    r = rate("out_rconv", model.bottleneck(c4))
    a4 = rate("out_add4", rate("out_deconv4", model.deconv4(r)) + c3)
    a3 = rate("out_add3", rate("out_deconv3", model.deconv3(a4)) + c2)
    a2 = rate("out_add2", rate("out_deconv2", model.deconv2(a3)) + c1)
    rate("out_add1", rate("out_deconv1", model.deconv1(a2)) + b)
    return out


@pytest.fixture(scope="module")
def active_model() -> StereoSpike:
    torch.manual_seed(0)
    return StereoSpike(input_size=(32, 48), v_threshold=0.05).eval()  # low threshold: every layer fires


def test_recorder_matches_the_seeds_procedure(active_model: StereoSpike) -> None:
    batches = [make_inputs(active_model, 1, 1, seed=s) for s in range(3)]
    with torch.no_grad():
        by_hand = [_seed_calculate_firing_rates(active_model, x) for x in batches]
    expected = {t: sum(d[t] for d in by_hand) / 3 for t in SEED_TENSORS}
    view = stereospike_density(active_model, batches)
    assert view.samples == 3
    assert view.tensors == pytest.approx(expected, abs=1e-12)
    assert min(view.tensors.values()) > 0 and max(view.tensors.values()) < 1
    # per-sample averaging with batches of 3 gives the same numbers
    assert stereospike_density(active_model, [torch.cat(batches)]).tensors == pytest.approx(expected, abs=1e-12)


def test_profile_statistics_give_the_binary_tensors(active_model: StereoSpike) -> None:
    x = make_inputs(active_model, 2, 1, seed=5)
    with torch.no_grad(), snnprof.Profiler(active_model, time_steps=1, batch_size=2) as prof:
        run(active_model, x, 1)
    from_stats = densities_from_profile(prof.result())
    with DensityRecorder(active_model) as rec, torch.no_grad():
        run(active_model, x, 1)
    hooked = rec.result()
    for tensor in ENCODER_TENSORS + DECODER_TENSORS:
        assert from_stats.tensors[tensor] == pytest.approx(hooked.tensors[tensor], abs=1e-12), tensor
    assert from_stats.tensors["out_add4"] is None and from_stats.mean is None
    assert from_stats.encoder_mean == pytest.approx(hooked.encoder_mean)
    assert from_stats.decoder_mean == pytest.approx(hooked.decoder_mean)


def test_recorder_leaves_no_hooks(active_model: StereoSpike) -> None:
    before = sum(len(m._forward_hooks) for m in active_model.modules())
    with DensityRecorder(active_model):
        pass
    assert sum(len(m._forward_hooks) for m in active_model.modules()) == before
