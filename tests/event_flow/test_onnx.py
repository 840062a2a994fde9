"""ONNX export of the LIF-FireNet family: ONNX Runtime over several steps matches PyTorch."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from snnprof.models import create_model, get_entry

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from snnprof.cli import app  # noqa: E402
from snnprof.export.onnx_lif import ExportError, export_onnx, initial_states, run_onnx, verify_onnx  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
STANDARD = {"Conv", "Add", "Sub", "Mul", "Greater", "Cast", "Tanh", "Gather", "Unsqueeze", "Concat", "Sigmoid", "Clip",
            "Abs", "ReduceMean", "AveragePool", "Identity", "Constant", "Where"}


@pytest.mark.parametrize(("name", "kwargs"), [
    ("lif_firenet", {}),
    ("lif_firenet", {"neuron": "tudelft"}),
    pytest.param("lif_firenet_short", {}, marks=pytest.mark.slow),
    pytest.param("lif_fireflownet", {}, marks=pytest.mark.slow),
])
def test_onnx_runtime_matches_pytorch_step_by_step(tmp_path, name, kwargs):
    torch.manual_seed(0)
    entry = get_entry(name)
    model = entry.factory(base_channels=8, **kwargs).eval()
    x = entry.make_inputs(model, 2, 4, 0, height=24, width=32)
    info = export_onnx(model, tmp_path / "m.onnx", batch_size=2, height=24, width=32)
    proto = onnx.load(str(info.path))
    assert {op.domain for op in proto.opset_import} <= {"", "ai.onnx"}  # no custom operator domain
    assert set(info.op_types) <= STANDARD
    inputs = [i.name for i in proto.graph.input]
    outputs = [o.name for o in proto.graph.output]
    assert inputs == ["events", *(f"state_{n}" for n in model.layer_names)]
    assert outputs == ["flow", *(f"next_state_{n}" for n in model.layer_names)]

    # ONNX Runtime, feeding the states back, vs the PyTorch model carrying its own state
    onnx_steps = run_onnx(info.path, x, initial_states(model, 2, 24, 32))
    model.reset_states()
    spikes = 0
    with torch.no_grad():
        for t in range(4):
            flow = model(x[t])["flow"][0]
            assert torch.allclose(flow, torch.from_numpy(onnx_steps[t][0]), atol=1e-5)
            for state, array in zip(model._states, onnx_steps[t][1:], strict=True):
                other = torch.from_numpy(array)
                assert torch.equal(state[1], other[1])  # spikes: exactly
                assert torch.allclose(state[0], other[0], atol=1e-5, rtol=0)  # membranes: 1e-5
                spikes += int(state[1].sum())
    assert spikes > 0
    report = verify_onnx(model, info.path, x)
    assert report.spike_mismatches == 0 and report.max_membrane_diff <= 1e-5 and report.spikes == spikes


def test_adaptive_variants_export_too(tmp_path):
    torch.manual_seed(0)
    model = create_model("xlif_firenet", base_channels=4).eval()
    x = get_entry("xlif_firenet").make_inputs(model, 1, 3, 1, height=16, width=16)
    info = export_onnx(model, tmp_path / "x.onnx", batch_size=1, height=16, width=16)
    assert info.input_shapes["state_head"] == [3, 1, 4, 16, 16]  # [v, z, trace]
    report = verify_onnx(model, info.path, x)
    assert report.spike_mismatches == 0 and report.max_membrane_diff <= 1e-5


def test_other_models_are_refused(tmp_path):
    for name in ("firenet", "evflownet", "spiking_rec_evflownet"):
        with pytest.raises(ExportError, match="spiking FireNet family"):
            export_onnx(create_model(name, base_channels=2), tmp_path / "n.onnx", batch_size=1, height=16, width=16)
    assert not (tmp_path / "n.onnx").exists()


def _config(tmp_path: Path, name: str = "lif_firenet_short") -> Path:
    text = f"""[model]
name = "{name}"
kwargs = {{ base_channels = 4 }}
[input]
source = "synthetic"
batch_size = 1
time_steps = 3
kwargs = {{ height = 16, width = 24 }}
"""
    path = tmp_path / "cfg.toml"
    path.write_text(text)
    return path


def test_cli_export_and_verify(tmp_path):
    out = tmp_path / "out" / "m.onnx"
    result = CliRunner().invoke(app, ["export", str(_config(tmp_path)), "--onnx", str(out), "--verify"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and "state_head" in result.output
    assert re.search(r"0 of \d+ spikes differ", " ".join(result.output.split()))
    onnx.checker.check_model(onnx.load(str(out)))


def test_cli_export_bad_model_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(app, ["export", str(_config(tmp_path, "firenet")), "--onnx", str(out)])
    assert result.exit_code == 2 and "error:" in result.output and "spiking FireNet family" in result.output
    assert not out.exists()
    missing = CliRunner().invoke(app, ["export", str(tmp_path / "nope.toml"), "--onnx", str(out)])
    assert missing.exit_code == 2 and "config file not found" in missing.output


def test_cli_help_has_an_example():
    result = CliRunner().invoke(app, ["export", "--help"])
    assert result.exit_code == 0 and "snnprof export configs/lif_firenet.toml" in result.output
