"""event_flow's per-layer activity: view of our statistics, hook helper and ``log=True``, vs hand counts."""

from __future__ import annotations

import pytest
import torch

import snnprof
from snnprof.models import create_model, get_entry
from snnprof.models.event_flow_activity import ActivityRecorder, activity_view


def _identity_head_model() -> torch.nn.Module:
    """LIF-FireNet (C = 2) whose head neurons copy 'count >= 1' of each polarity channel."""
    model = create_model("lif_firenet", base_channels=2).eval()
    head = model.head
    with torch.no_grad():
        head.ff.weight.zero_()
        head.ff.weight[0, 0, 1, 1] = 1.0
        head.ff.weight[1, 1, 1, 1] = 1.0
        head.neuron.beta.zero_()
        head.neuron.threshold.fill_(0.5)
    return model


def test_activity_matches_a_hand_computation():
    model = _identity_head_model()
    x = torch.zeros(2, 1, 2, 8, 8)  # two passes, B = 1, [2, 8, 8]
    x[0, 0, 0, :2, :3] = 1.0  # 6 positive pixels
    x[0, 0, 1, 5, 5] = 3.0  # 1 negative pixel with 3 events
    x[1, 0, 1, 0, :4] = 2.0  # 4 negative pixels
    hand = [7 / 128, 4 / 128]  # nonzero entries / numel, per pass
    with torch.no_grad(), snnprof.Profiler(model, time_steps=2, batch_size=1) as prof:
        logged = [model(x[t], log=True)["activity"] for t in range(2)]
    view = activity_view(prof.result())
    for t in range(2):
        assert logged[t]["0:input"] == pytest.approx(hand[t], abs=1e-7)
        assert logged[t]["1:head"] == pytest.approx(hand[t], abs=1e-7)
        assert view.per_pass["head"][t] == pytest.approx(hand[t], abs=1e-12)
    assert view.mean["head"] == pytest.approx(sum(hand) / 2, abs=1e-12)


@pytest.mark.parametrize("name", ["lif_firenet", "lif_firenet_short", "xlif_firenet"])
def test_view_equals_the_seed_log_for_every_layer(name):
    torch.manual_seed(1)
    entry = get_entry(name)
    model = entry.factory(base_channels=4).eval()
    x = entry.make_inputs(model, 2, 3, 5, height=24, width=32)
    model.reset_states()
    with torch.no_grad(), snnprof.Profiler(model, time_steps=3, batch_size=2) as prof, ActivityRecorder(model) as rec:
        logged = [model(x[t], log=True)["activity"] for t in range(3)]
    assert rec.passes == logged  # the hook helper reproduces log=True exactly
    view = activity_view(prof.result())
    assert list(view.per_pass) == list(model.layer_names)
    for i, layer in enumerate(model.layer_names, start=1):
        for t in range(3):
            assert view.per_pass[layer][t] == pytest.approx(logged[t][f"{i}:{layer}"], abs=1e-6)
    assert logged[0]["0:input"] == pytest.approx(float(x[0].ne(0).float().mean()))
    assert f"{len(model.layer_names) + 1}:pred" in logged[0]
    assert rec.mean()["0:input"] == pytest.approx(float(x.ne(0).float().mean()), abs=1e-6)


def test_recorder_needs_layers_for_other_models():
    model = create_model("spiking_rec_evflownet", base_channels=2)
    with pytest.raises(TypeError, match="explicitly"):
        ActivityRecorder(model)
    x = torch.ones(1, 2, 16, 16)
    with torch.no_grad(), ActivityRecorder(model, {"enc0": model.encoders[0]}) as rec:
        model(x)
    assert set(rec.passes[0]) == {"0:input", "1:enc0"} and rec.passes[0]["0:input"] == 1.0
    model(x)
    assert len(rec.passes) == 1  # hooks removed
