"""NIR graphs in and out: node semantics in closed form, recurrent edges, the CLI, the export round trip."""

from __future__ import annotations

import json
from pathlib import Path

import nir
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from snnprof import profile
from snnprof.cli import app
from snnprof.interop import NIRImportError, load_nir
from snnprof.interop.nir_export import NIRExportError, to_nir, write_nir
from tests.interop import _nets

runner = CliRunner()
FIELDS = ("dense_macs", "macs", "sops", "neuron_updates", "spikes")


def ones(*shape: int) -> np.ndarray:
    return np.ones(shape, dtype=np.float32)


def chain(*nodes: nir.NIRNode) -> nir.NIRGraph:
    return nir.NIRGraph.from_list(*nodes, type_check=False)


def run(graph: nir.NIRGraph, x: torch.Tensor, dt: float = 1.0) -> torch.Tensor:
    with torch.no_grad():
        return load_nir(graph, dt=dt)(x)


def test_lif_follows_euler_with_tau_in_steps() -> None:
    n = 3
    graph = chain(nir.Input(input_type=np.array([n])), nir.LIF(tau=4 * ones(n), r=2 * ones(n), v_leak=0.5 * ones(n),
                  v_threshold=1.1 * ones(n), v_reset=-0.25 * ones(n)), nir.Output(output_type=np.array([n])))
    x = torch.tensor([[[0.3, 0.0, 1.0]], [[0.3, 0.5, 1.0]], [[0.3, 0.5, 0.0]], [[0.3, 0.5, 1.0]]])
    v, expected = torch.full((1, n), -0.25), []
    for t in range(4):
        v = v + ((0.5 - v) + 2 * x[t]) / 4
        z = (v > 1.1).float()
        v = torch.where(z.bool(), torch.tensor(-0.25), v)
        expected.append(z)
    assert torch.equal(run(graph, x), torch.stack(expected))


def test_dt_scales_the_time_constants() -> None:
    graph = chain(nir.Input(input_type=np.array([1])), nir.LI(tau=ones(1) * 2e-3, r=ones(1), v_leak=0 * ones(1)),
                  nir.Output(output_type=np.array([1])))
    out = run(graph, torch.ones(3, 1, 1), dt=1e-3)  # dt/tau = 1/2
    assert torch.allclose(out.flatten(), torch.tensor([0.5, 0.75, 0.875]))


def test_state_nodes_and_threshold() -> None:
    n = 2
    x = torch.tensor([[[1.0, 2.0]], [[1.0, 0.0]], [[0.0, 4.0]]])
    integ = chain(nir.Input(input_type=np.array([n])), nir.I(r=np.array([1.0, 0.5], dtype=np.float32)),
                  nir.Output(output_type=np.array([n])))
    assert torch.equal(run(integ, x), torch.cumsum(x * torch.tensor([1.0, 0.5]), 0))
    fire = chain(nir.Input(input_type=np.array([n])), nir.IF(r=ones(n), v_threshold=1.5 * ones(n)),
                 nir.Output(output_type=np.array([n])))
    assert run(fire, x).squeeze(1).tolist() == [[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]
    thr = chain(nir.Input(input_type=np.array([n])), nir.Threshold(threshold=ones(n)),
                nir.Output(output_type=np.array([n])))
    assert torch.equal(run(thr, x), (x > 1).float())
    scale = chain(nir.Input(input_type=np.array([n])), nir.Scale(scale=np.array([2.0, -1.0], dtype=np.float32)),
                  nir.Output(output_type=np.array([n])))
    assert torch.equal(run(scale, x), x * torch.tensor([2.0, -1.0]))


def test_cuba_lif_current_then_membrane() -> None:
    graph = chain(nir.Input(input_type=np.array([1])),
                  nir.CubaLIF(tau_syn=2 * ones(1), tau_mem=2 * ones(1), r=ones(1), v_leak=0 * ones(1),
                              v_threshold=0.3 * ones(1), w_in=2 * ones(1)),
                  nir.Output(output_type=np.array([1])))
    x = torch.tensor([1.0, 0.0, 0.0]).reshape(3, 1, 1)
    # i: 1, 0.5, 0.25; v: 0.5 -> spike (reset 0), 0.25, 0.25 -> no spike
    assert run(graph, x).flatten().tolist() == [1.0, 0.0, 0.0]


def test_affine_bias_sum_pool_padding_and_flatten() -> None:
    graph = chain(
        nir.Input(input_type=np.array([1, 4, 4])),
        nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([1, 1])),
        nir.Flatten(input_type={"input": np.array([1, 3, 3])}, start_dim=0),
        nir.Affine(weight=ones(2, 9), bias=np.array([10.0, 20.0], dtype=np.float32)),
        nir.Output(output_type=np.array([2])))
    x = torch.ones(1, 2, 1, 4, 4)
    out = run(graph, x)
    assert out.shape == (1, 2, 2) and out[0, 0].tolist() == [16 + 10.0, 16 + 20.0]  # the sum pool keeps all 16 ones


def test_recurrent_edge_counts() -> None:
    n, steps, batch = 4, 5, 2
    rec = np.full((n, n), 0.25, dtype=np.float32)
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type=np.array([3])),
        "inp": nir.Linear(weight=ones(n, 3) * 0.6),
        "lif": nir.LIF(tau=2 * ones(n), r=ones(n), v_leak=0 * ones(n), v_threshold=0.5 * ones(n)),
        "rec": nir.Linear(weight=rec),
        "output": nir.Output(output_type=np.array([n])),
    }, edges=[("input", "inp"), ("inp", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")], type_check=False)
    x = (torch.rand(steps, batch, 3, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    result = profile(load_nir(graph), x)
    assert result.layer("rec").dense_macs == steps * batch * n * n
    assert result.layer("rec").sops == result.layer("lif").spikes * n > 0
    assert result.layer("lif").neuron_updates == steps * batch * n


def test_nir_equals_spikingjelly() -> None:
    sj = profile(_nets.spikingjelly(_nets.weights()), _nets.spikes())
    graph = profile(_nets.nir_net(_nets.weights()), _nets.spikes())
    assert {f: getattr(graph.totals, f) for f in (*FIELDS, "flops")} == {f: getattr(sj.totals, f)
                                                                        for f in (*FIELDS, "flops")}


def test_refusals() -> None:
    delay = chain(nir.Input(input_type=np.array([1])), nir.Delay(delay=ones(1)), nir.Output(output_type=np.array([1])))
    with pytest.raises(NIRImportError, match="Delay is not supported"):
        load_nir(delay)
    lif = chain(nir.Input(input_type=np.array([1])), nir.LIF(tau=1e-4 * ones(1), r=ones(1), v_leak=0 * ones(1),
                v_threshold=ones(1)), nir.Output(output_type=np.array([1])))
    with pytest.raises(NIRImportError, match="shorter than dt") as info:
        load_nir(lif)
    assert info.value.about_dt
    assert load_nir(lif, dt=1e-4).dt == 1e-4


def test_cli_counts_a_graph_file(tmp_path: Path) -> None:
    path = tmp_path / "net.nir"
    nir.write(str(path), _nets.nir_graph(_nets.weights()))
    out = tmp_path / "out.json"
    args = ["count", str(path), "-T", str(_nets.T), "-B", str(_nets.B), "--rate", "0.3", "--seed", "4",
            "--json", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    gen = torch.Generator().manual_seed(4)
    x = (torch.rand(_nets.T, _nets.B, _nets.C, _nets.H, _nets.H, generator=gen) < 0.3).float()
    expected = profile(_nets.nir_net(_nets.weights()), x)
    assert {f: data["totals"][f] for f in FIELDS} == {f: getattr(expected.totals, f) for f in FIELDS}
    assert data["input_shapes"] == [[_nets.T, _nets.B, _nets.C, _nets.H, _nets.H]]
    assert data["config"]["model"]["nir"] == str(path.resolve())


@pytest.mark.parametrize(("args", "needle"), [
    (["--shape", "3,3"], "--shape"),
    (["--shape", "a,b"], "--shape"),
    (["--dt", "5"], "--dt"),
    (["--rate", "2"], "--rate"),
    (["--dataset"], "--dataset"),
])
def test_cli_graph_errors(tmp_path: Path, args: list[str], needle: str) -> None:
    path = tmp_path / "net.nir"
    nir.write(str(path), _nets.nir_graph(_nets.weights()))
    out = tmp_path / "out.json"
    result = runner.invoke(app, ["count", str(path), *args, "--json", str(out)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: {needle}")
    assert not out.exists()


def test_cli_unreadable_graph(tmp_path: Path) -> None:
    path = tmp_path / "bad.nir"
    path.write_text("not hdf5", encoding="utf-8")
    result = runner.invoke(app, ["count", str(path)])
    assert result.exit_code == 2 and "cannot read" in result.stderr and "Traceback" not in result.output


def test_graph_options_need_a_graph() -> None:
    config = Path(__file__).resolve().parents[2] / "configs" / "sj_nir_cnn.toml"
    result = runner.invoke(app, ["count", str(config), "--shape", "2,32,32"])
    assert result.exit_code == 2 and "--shape" in result.stderr


def test_export_round_trip_of_a_zoo_model(tmp_path: Path) -> None:
    cfg = tmp_path / "small.toml"
    shipped = (Path(__file__).resolve().parents[2] / "configs" / "sj_nir_cnn.toml").read_text(encoding="utf-8")
    cfg.write_text(shipped.replace("image_size = 32", "image_size = 16").replace("batch_size = 4", "batch_size = 2"),
                   encoding="utf-8")
    graph = tmp_path / "sj_nir_cnn.nir"
    result = runner.invoke(app, ["export", str(cfg), "--nir", str(graph)])
    assert result.exit_code == 0, result.output
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert runner.invoke(app, ["count", str(cfg), "--json", str(a), "-q"]).exit_code == 0
    assert runner.invoke(app, ["count", str(graph), "-T", "8", "-B", "2", "--json", str(b), "-q"]).exit_code == 0
    zoo, nir_counts = json.loads(a.read_text()), json.loads(b.read_text())
    assert {f: zoo["totals"][f] for f in FIELDS} == {f: nir_counts["totals"][f] for f in FIELDS}
    assert zoo["totals"]["spikes"] > 0
    assert [layer["name"] for layer in nir_counts["layers"]] == [layer["name"] for layer in zoo["layers"]]


def test_export_refuses_what_nir_cannot_express(tmp_path: Path) -> None:
    config = Path(__file__).resolve().parents[2] / "configs" / "sj_spiking_cnn.toml"
    out = tmp_path / "x.nir"
    result = runner.invoke(app, ["export", str(config), "--nir", str(out)])
    assert result.exit_code == 2 and "bn1 (BatchNorm2d): not expressible in NIR" in result.stderr
    assert not out.exists()
    with pytest.raises(NIRExportError, match="soft reset"):
        from spikingjelly.activation_based import neuron

        to_nir(torch.nn.Sequential(torch.nn.Linear(3, 2), neuron.LIFNode(v_reset=None)), (3,), "ann")


def test_write_nir_is_atomic(tmp_path: Path) -> None:
    graph = to_nir(torch.nn.Sequential(torch.nn.Linear(3, 2)), (3,), "ann")
    path = write_nir(graph, tmp_path / "lin.nir")
    assert path.exists() and not (tmp_path / "lin.nir.partial").exists()
    back = nir.read(str(path))
    assert [type(n).__name__ for n in back.nodes.values()].count("Affine") == 1


def test_config_with_a_nir_model(tmp_path: Path) -> None:
    from snnprof.config import load_config
    from snnprof.errors import ConfigError
    from snnprof.pipeline import run_config

    nir.write(str(tmp_path / "g.nir"), _nets.nir_graph(_nets.weights()))
    body = f'[model]\nnir = "g.nir"\nkwargs = {{ dt = 1.0 }}\n[input]\nbatch_size = {_nets.B}\ntime_steps = {_nets.T}\n'
    path = tmp_path / "g.toml"
    path.write_text(body, encoding="utf-8")
    result = run_config(load_config(path)).result
    assert result.model == "g.nir" and result.input_shapes == [[_nets.T, _nets.B, _nets.C, _nets.H, _nets.H]]
    assert result.totals.neuron_updates == _nets.T * _nets.B * (4 * _nets.H * _nets.H + 5)
    for extra, key in (('name = "x.py:Net"\n', "model.nir"), ('checkpoint = "w.pt"\n', "model.checkpoint")):
        path.write_text(body.replace("[input]", extra + "[input]"), encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert info.value.key == key
    path.write_text(body.replace("[input]", '[input]\nstep_mode = "single"'), encoding="utf-8")
    with pytest.raises(ConfigError, match="NIR graph takes"):
        load_config(path)
