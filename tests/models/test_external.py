"""Models outside the zoo: `[model] name = "pkg.module:callable"` / `"file.py:callable"` with synthetic inputs.

Counts are closed-form (a Linear of known size fed known shapes); every bad reference gives one
`error:` line naming `model.name` and the reference, exit 2, nothing written.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from snnprof.cli import app
from snnprof.config import load_config
from snnprof.data.synthetic_tensors import TensorSpec, make_tensors
from snnprof.errors import ConfigError
from snnprof.pipeline import run_config

runner = CliRunner()

USER_CODE = '''\
import torch
from torch import nn
from spikingjelly.activation_based import functional, layer, neuron

class TinyNet(nn.Module):
    def __init__(self, features: int = 6, classes: int = 3):
        super().__init__()
        self.fc1 = layer.Linear(features, 5)
        self.lif = neuron.LIFNode()
        self.fc2 = layer.Linear(5, classes)
        functional.set_step_mode(self, "m")

    def forward(self, x):
        return self.fc2(self.lif(self.fc1(x)))

def mlp(features: int = 4, hidden: int = 3):
    return nn.Sequential(nn.Linear(features, hidden), nn.ReLU())

class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 2), nn.Linear(3, 2)

    def forward(self, x, y):
        return self.a(x) + self.b(y)

class SingleStep(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = layer.Linear(6, 5)
        self.lif = neuron.LIFNode()

    def forward(self, x):
        return self.lif(self.fc(x))

instance = nn.Linear(4, 2)
NOT_CALLABLE = 3

def not_a_module():
    return 42

def boom():
    raise RuntimeError("constructor failed on purpose")

class Holder:
    net = staticmethod(mlp)
'''


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "usernet.py").write_text(USER_CODE, encoding="utf-8")
    return tmp_path


def config(folder: Path, model: str, body: str = 'shape = [6]\nkind = "dense"', name: str = "run.toml",
           extra: str = "") -> Path:
    path = folder / name
    path.write_text(f'[model]\nname = "{model}"\n{extra}[input]\n{body}\n', encoding="utf-8")
    return path


def test_file_reference_counts_the_closed_form(project: Path) -> None:
    cfg = load_config(config(project, "usernet.py:TinyNet", "shape = [6]\nbatch_size = 2\ntime_steps = 4"))
    result = run_config(cfg).result
    t, b = 4, 2
    assert result.totals.dense_macs == t * b * (6 * 5 + 5 * 3)
    assert result.totals.neuron_updates == t * b * 5
    assert (result.batch_size, result.time_steps, result.model) == (b, t, "usernet.py:TinyNet")
    assert result.layer("fc1").input_kind == "spike"


def test_module_reference_with_kwargs(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    monkeypatch.delitem(sys.modules, "usernet", raising=False)
    cfg = load_config(config(project, "usernet:mlp", 'shape = [5]\nkind = "dense"\nbatch_size = 3',
                             extra="kwargs = { features = 5, hidden = 7 }\n"))
    assert run_config(cfg).result.totals.dense_macs == 3 * 5 * 7


@pytest.mark.parametrize("ref", ["usernet.py:instance", "usernet.py:Holder.net"])
def test_instances_and_dotted_attributes(project: Path, ref: str) -> None:
    cfg = load_config(config(project, ref, 'shape = [4]\nkind = "dense"'))
    assert run_config(cfg).result.totals.dense_macs == (4 * 2 if ref.endswith("instance") else 4 * 3)


def test_several_positional_inputs(project: Path) -> None:
    body = 'batch_size = 2\n[[input.tensors]]\nshape = [4]\nkind = "dense"\n[[input.tensors]]\nshape = [3]\nrate = 0.5'
    result = run_config(load_config(config(project, "usernet.py:TwoInputs", body))).result
    assert result.layer("a").dense_macs == 2 * 4 * 2 and result.layer("b").dense_macs == 2 * 3 * 2
    assert result.layer("a").input_kind == "dense" and result.layer("b").input_kind == "spike"


def test_single_step_loop_counts_like_multi_step(project: Path) -> None:
    single = run_config(load_config(config(project, "usernet.py:SingleStep",
                                           'shape = [6]\nbatch_size = 2\ntime_steps = 3\nstep_mode = "single"'))).result
    multi = run_config(load_config(config(project, "usernet.py:TinyNet",
                                          "shape = [6]\nbatch_size = 2\ntime_steps = 3", name="m.toml"))).result
    assert single.layer("fc").dense_macs == multi.layer("fc1").dense_macs == 3 * 2 * 6 * 5
    assert single.layer("lif").neuron_updates == 3 * 2 * 5 and single.time_steps == 3


def test_repeated_runs_count_the_same(project: Path) -> None:
    cfg = load_config(config(project, "usernet.py:TinyNet", "shape = [6]\nbatch_size = 2\ntime_steps = 4"))
    assert run_config(cfg).result.totals == run_config(cfg).result.totals


def test_synthetic_tensors_are_seeded_and_shaped() -> None:
    spec = TensorSpec((2, 3), "spike", 0.25, seed=7)
    a, b = make_tensors([spec], 4, 5, "multi"), make_tensors([spec], 4, 5, "multi")
    assert a.shape == (5, 4, 2, 3) and torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}
    counts = make_tensors([TensorSpec((1000,), "count", 2.0)], 2, 1, "ann")
    assert counts.shape == (2, 1000) and torch.equal(counts, counts.round()) and 1.8 < counts.mean() < 2.2
    assert make_tensors([TensorSpec((3,), "dense")], 2, 1, "ann").shape == (2, 3)
    with pytest.raises(ValueError, match="time_steps = 1"):
        make_tensors([spec], 1, 2, "ann")


BAD_REFERENCES = {
    "no_file": ("missing.py:Net", "expected an existing Python file"),
    "no_attribute": ("usernet.py:Nope", "has no attribute 'Nope'"),
    "not_callable": ("usernet.py:NOT_CALLABLE", "to be a callable returning a torch.nn.Module, got int"),
    "not_a_module": ("usernet.py:not_a_module", "to build a torch.nn.Module, got int"),
    "raises": ("usernet.py:boom", "RuntimeError: constructor failed on purpose"),
    "no_module": ("no_such_pkg.models:Net", "ModuleNotFoundError"),
    "bad_syntax": ("usernet.py:1Net", "expected a callable name after ':'"),
}


@pytest.mark.parametrize("case", sorted(BAD_REFERENCES))
def test_bad_references_are_one_error_line(project: Path, case: str) -> None:
    ref, needle = BAD_REFERENCES[case]
    out = project / "out.json"
    result = runner.invoke(app, ["count", str(config(project, ref)), "--json", str(out)])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "model.name" in lines[0]
    assert needle in lines[0] and (ref in lines[0] or ref.split(":")[0] in lines[0])
    assert not out.exists()


@pytest.mark.parametrize(("body", "extra", "key"), [
    ("batch_size = 2", "", "input.shape"),                                         # a user model needs a shape
    ('shape = [4]\nkind = "spike"\nrate = 1.5', "", "input.rate"),
    ('shape = [4]\nstep_mode = "ann"\ntime_steps = 3', "", "input.step_mode"),
    ("shape = [0]", "", "input.shape[0]"),
])
def test_bad_synthetic_inputs(project: Path, body: str, extra: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(config(project, "usernet.py:TinyNet", body, extra=extra))
    assert info.value.key == key


def test_zoo_models_take_no_shape(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="makes its own inputs") as info:
        load_config(config(tmp_path, "sj_spiking_cnn", "shape = [2, 16, 16]"))
    assert info.value.key == "input.shape"


def test_report_and_compare_take_user_models(project: Path) -> None:
    a = config(project, "usernet.py:TinyNet", "shape = [6]\ntime_steps = 2", name="a.toml")
    b = config(project, "usernet.py:TinyNet", "shape = [6]\ntime_steps = 2", name="b.toml",
               extra="kwargs = { classes = 6 }\n")
    html = project / "r.html"
    assert runner.invoke(app, ["report", str(a), str(b), "--out", str(html)]).exit_code == 0
    assert "usernet.py:TinyNet" in html.read_text(encoding="utf-8")
    out = project / "c.json"
    result = runner.invoke(app, ["compare", str(a), str(b), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())


def test_checkpoint_of_a_user_model(project: Path) -> None:
    torch.manual_seed(0)
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location("usernet_copy", project / "usernet.py")
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.save(module.TinyNet().state_dict(), project / "w.pt")
    cfg = load_config(config(project, "usernet.py:TinyNet", "shape = [6]\ntime_steps = 2",
                             extra='checkpoint = "w.pt"\n'))
    assert run_config(cfg).result.totals.dense_macs == 2 * (6 * 5 + 5 * 3)
    (project / "bad.pt").write_bytes(b"not a checkpoint")
    result = runner.invoke(app, ["count", str(config(project, "usernet.py:TinyNet", "shape = [6]", name="c.toml",
                                                     extra='checkpoint = "bad.pt"\n'))])
    assert result.exit_code == 2 and "model.checkpoint" in result.stderr


def test_readme_example_files_count(monkeypatch: pytest.MonkeyPatch) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "your_model" / "tinynet.toml"
    if not example.exists():
        pytest.skip("no examples/your_model")
    result = runner.invoke(app, ["count", str(example), "-q"])
    assert result.exit_code == 0, result.output


def test_user_code_keeps_its_error_text(project: Path) -> None:
    path = project / "syntax.py"
    path.write_text(textwrap.dedent("def broken(:\n"), encoding="utf-8")
    result = runner.invoke(app, ["count", str(config(project, "syntax.py:Net"))])
    assert result.exit_code == 2 and "SyntaxError" in result.stderr and "model.name" in result.stderr
