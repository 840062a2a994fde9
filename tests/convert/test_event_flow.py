"""event_flow converter: tudelft and fork layouts, outputs against the seeds' equations.

Checkpoints written here:

* tudelft ``LIFFireNet`` (``models/model.py`` + ``models/spiking_submodules.py ConvLIF(Recurrent)``): a bare
  ``model.state_dict()`` (what ``load_model`` reads back as ``model_loaded.state_dict()``) with
  ``<cell>.ff.weight``, ``<cell>.rec.weight``, ``<cell>.leak``, ``<cell>.thresh``, ``<cell>.act_width``,
  ``pred.conv2d.*``;
* the fork's ``LIFFireNet`` (``models/SNNtorch_spiking_submodules.py SNNtorch_ConvLIF(Recurrent)``) in its
  ``train_flow.py`` container ``{"model_state_dict", "optimizer_state_dict", "epoch", "loss", "config"}`` with
  ``<cell>.lif.beta``, ``<cell>.lif.threshold``, ``<cell>.lif.graded_spikes_factor``,
  ``<cell>.lif.reset_mechanism_val``;
* tudelft's U-Nets (``models/unet.py``) under ``multires_unetrec.`` / ``multires_unet.``.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from snnprof.convert import CONVERTERS, UpstreamCheckpointError, convert_checkpoint, load_upstream
from snnprof.models import create_model

from .conftest import randn, save

CELLS = ("head", "G1", "R1a", "R1b", "G2", "R2a", "R2b")
C = 8


def upstream_firenet(gen: torch.Generator, fork: bool) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for name in CELLS:
        cin = 2 if name == "head" else C
        state[f"{name}.ff.weight"] = randn(gen, C, cin, 3, 3, scale=0.6)
        if name in ("G1", "G2"):
            state[f"{name}.rec.weight"] = randn(gen, C, C, 3, 3, scale=0.3)
        if fork:
            state[f"{name}.lif.threshold"] = torch.rand(C, 1, 1, generator=gen) * 0.8
            state[f"{name}.lif.beta"] = torch.rand(C, 1, 1, generator=gen)
            state[f"{name}.lif.graded_spikes_factor"] = torch.tensor(1.0)
            state[f"{name}.lif.reset_mechanism_val"] = torch.tensor(1)
        else:
            state[f"{name}.leak"] = randn(gen, C, 1, 1, scale=0.5) - 1.0
            state[f"{name}.thresh"] = 0.3 + randn(gen, C, 1, 1, scale=0.1)
            state[f"{name}.act_width"] = torch.tensor(10.0)
    state["pred.conv2d.weight"] = randn(gen, 2, C, 1, 1, scale=0.3)
    state["pred.conv2d.bias"] = randn(gen, 2, scale=0.1)
    return state


def reference_firenet(s: dict[str, torch.Tensor], xs: list[torch.Tensor], fork: bool) -> list[torch.Tensor]:
    """``FireNet.forward`` over passes from zero states: tudelft ``v' = l v (1 - z) + (1 - l) I``, fire at
    ``v' > thresh``; fork (snnTorch ``Leaky``, zero reset, from rest) ``m = beta v + I``, fire at ``m > thr``,
    ``v' = m (1 - z)``."""
    states: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    flows = []
    for x in xs:
        h = x
        for name in CELLS:
            current = F.conv2d(h, s[f"{name}.ff.weight"], padding=1)
            v, z = states.get(name, (torch.zeros_like(current), torch.zeros_like(current)))
            if f"{name}.rec.weight" in s:
                current = current + F.conv2d(z, s[f"{name}.rec.weight"], padding=1)
            if fork:
                thr = s[f"{name}.lif.threshold"].clamp_min(0.01)
                mem = s[f"{name}.lif.beta"].clamp(0, 1) * v + current
                z_out = (mem - thr > 0).float()
                v_out = mem * (1 - z_out)
            else:
                leak, thr = torch.sigmoid(s[f"{name}.leak"]), s[f"{name}.thresh"].clamp_min(0.01)
                v_out = v * leak * (1 - z) + (1 - leak) * current
                z_out = (v_out - thr > 0).float()
            states[name] = (v_out, z_out)
            h = z_out
        flows.append(torch.tanh(F.conv2d(h, s["pred.conv2d.weight"], s["pred.conv2d.bias"])))
    return flows


@pytest.mark.parametrize("fork", [False, True])
def test_lif_firenet_checkpoints_give_the_seed_outputs(tmp_path: Path, fork: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    upstream = upstream_firenet(gen, fork)
    container = ({"model_state_dict": upstream, "optimizer_state_dict": {"state": {}, "param_groups": []},
                  "epoch": 3, "loss": 1.5, "config": {"model": {"name": "LIFFireNet", "encoding": "cnt"}}}
                 if fork else upstream)  # fmt: skip
    path = save(tmp_path / "model.pth", container)
    converted = convert_checkpoint("event_flow", path)
    assert converted.model == "lif_firenet"
    neuron = "snntorch" if fork else "tudelft"
    assert converted.kwargs == {"base_channels": C, "kernel_size": 3, "num_bins": 2, "neuron": neuron}
    model = create_model("lif_firenet", **converted.kwargs).eval()
    model.load_state_dict(load_upstream("lif_firenet", path, converted.kwargs), strict=True)
    xs = [torch.poisson(torch.full((2, 2, 12, 16), 1.5), generator=gen) for _ in range(3)]
    model.clear_states()
    with torch.no_grad():
        ours = [model(x)["flow"][0] for x in xs]
    assert any(bool(s[1].any()) for s in model.states)
    for a, b in zip(ours, reference_firenet(upstream, xs, fork), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_fireflownet_short_plif_and_subtract_reset_kwargs(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(1)
    s = {k: v for k, v in upstream_firenet(gen, True).items() if not k.startswith(("R1b", "R2b"))
         and ".rec." not in k}
    s = {k: (torch.tensor(0) if k.endswith("reset_mechanism_val") else v) for k, v in s.items()}
    converted = convert_checkpoint("event_flow", save(tmp_path / "a.pth", s))
    assert converted.model == "lif_fireflownet"
    assert converted.kwargs["short"] and converted.kwargs["neuron_kwargs"] == {"hard_reset": False}
    create_model("lif_fireflownet", **converted.kwargs).load_state_dict(converted.state, strict=True)
    plif = create_model("plif_firenet", base_channels=4)
    upstream = {k.replace(".neuron.", "."): v for k, v in plif.state_dict().items()}
    upstream |= {f"{n}.act_width": torch.tensor(7.0) for n in CELLS}
    converted = convert_checkpoint("event_flow", save(tmp_path / "p.pth", upstream))
    assert converted.model == "plif_firenet" and converted.kwargs["neuron_kwargs"] == {"act_width": 7.0}
    create_model("plif_firenet", **converted.kwargs).load_state_dict(converted.state, strict=True)


_PREFIX = {"spiking_rec_evflownet": "multires_unetrec.", "evflownet": "multires_unet."}


@pytest.mark.parametrize("name", CONVERTERS["event_flow"].models)
def test_every_event_flow_model_maps_from_the_tudelft_layout(tmp_path: Path, name: str) -> None:
    """tudelft's key names for every model of the registry: neuron parameters on the cell
    (``G1.leak``, ``encoders.0.conv.leak_v``), ANN decoders ``decoders.i.conv2d``, ``act_width`` buffers,
    the U-Net prefixes; the values land on the zoo keys unchanged and the model is recognised."""
    kwargs = {"neuron": "tudelft"} if name.startswith("lif_") else {}
    ours = create_model(name, base_channels=4, **kwargs)
    prefix, upstream = _PREFIX.get(name, ""), {}
    for key, value in ours.state_dict().items():
        theirs = key.replace(".neuron.", ".").replace(".conv.conv2d.", ".conv2d.")
        upstream[prefix + theirs] = torch.randn(value.shape)
        if theirs.endswith((".thresh", ".t0")):
            upstream[prefix + theirs.rsplit(".", 1)[0] + ".act_width"] = torch.tensor(10.0)
    converted = convert_checkpoint("event_flow", save(tmp_path / "u.pth", upstream))
    assert converted.model == name and converted.kwargs["base_channels"] == 4
    model = create_model(name, **converted.kwargs)
    model.load_state_dict(load_upstream(name, tmp_path / "u.pth", converted.kwargs), strict=True)
    for theirs, key in zip([k for k in upstream if not k.endswith("act_width")], ours.state_dict(), strict=True):
        assert torch.equal(model.state_dict()[key], upstream[theirs]), (theirs, key)


def test_mlflow_pickled_model_is_refused_with_instructions(tmp_path: Path) -> None:
    """tudelft's ``mlflow.pytorch.log_model`` stores the whole pickled module: never unpickled here."""
    buffer = io.BytesIO()
    torch.save(torch.nn.Conv2d(2, 2, 1), buffer)
    path = tmp_path / "model.pth"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(UpstreamCheckpointError, match="pickled Python objects.*Conv2d.*state_dict") as err:
        convert_checkpoint("event_flow", path)
    assert err.value.path == str(path)
