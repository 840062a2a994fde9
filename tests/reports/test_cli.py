"""``snnprof report``: model and comparison reports, measured energy, errors (exit 2, nothing written)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from markupsafe import escape
from typer.testing import CliRunner

from snnprof.cli import app
from tests.reports.conftest import measured

runner = CliRunner()

SMALL = """\
[model]
name = "sj_spiking_cnn"
kwargs = {{ in_channels = 2, num_classes = 10, image_size = 16 }}
[input]
source = "synthetic"
batch_size = 2
time_steps = {t}
seed = 0
kwargs = {{ image_size = 16 }}
[energy]
profiles = ["cmos45nm_fp32", "loihi"]
"""


def config(tmp_path: Path, name: str = "t2.toml", t: int = 2) -> Path:
    path = tmp_path / name
    path.write_text(SMALL.format(t=t), encoding="utf-8")
    return path


def invoke(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def assert_one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def two_reports(tmp_path_factory):
    """One model report and one comparison (T = 2 vs T = 4), each written once for the module."""
    tmp = tmp_path_factory.mktemp("cli")
    a, b = config(tmp, "t2.toml", 2), config(tmp, "t4.toml", 4)
    meas = tmp / "m.json"
    meas.write_text(json.dumps(measured(0.003, config=str(b))))
    single = invoke("report", a, "--out", tmp / "single.html", "-q")
    compare = invoke("report", a, b, "--out", tmp / "cmp.html", "-p", "cmos45nm_fp32", "--measured", meas)
    return tmp, single, compare


def test_model_report(two_reports):
    tmp, single, _ = two_reports
    assert single.exit_code == 0, single.output
    assert single.stdout == ""  # --quiet
    page = (tmp / "single.html").read_text(encoding="utf-8")
    assert "t2: operations, spikes and energy" in page
    assert str(escape(SMALL.format(t=2))) in page  # the config verbatim
    assert "snnprof report " in page and "single.html" in page  # the command line
    assert 'id="comparison"' not in page and "<code>loihi</code>" in page


def test_comparison_report(two_reports):
    tmp, _, compare = two_reports
    assert compare.exit_code == 0, compare.output
    assert re.search(r"wrote .*cmp\.html \(\d+ kB\)", compare.stdout)
    page = (tmp / "cmp.html").read_text(encoding="utf-8")
    assert 'id="comparison"' in page and "Ratios against t2" in page
    row = re.search(r"<th scope=\"row\">neuron updates</th>(.*?)</tr>", page, flags=re.S).group(1)
    assert "(2×)" in row  # twice the time steps: exactly twice the neuron updates per sample
    assert "<code>loihi</code>" not in page  # --profile replaced the configs' profiles
    measured_row = re.search(r"<tr class=\"measured\">\s*<th scope=\"row\">energy · GPU", page)
    assert measured_row and "3.00 mJ" in page  # matched to t4.toml by the config it records


def test_default_out_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = config(tmp_path)
    result = invoke("report", cfg)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reports" / "t2.html").is_file()


def test_help_has_an_example():
    result = invoke("report", "--help")
    assert result.exit_code == 0 and "Example" in result.stdout and "snnprof report" in result.stdout


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        ("{bad json", ("m.json", "cannot read measured-energy JSON")),
        (json.dumps({"joules_per_sample": 1.0, "method": "x"}), ("m.json", "gpu_name")),
        (json.dumps(measured(config="elsewhere.toml")), ("m.json", "elsewhere.toml", "none of the configs")),
    ],
)
def test_bad_measured_file(tmp_path, content, needles):
    cfg = config(tmp_path)
    (tmp_path / "m.json").write_text(content)
    out = tmp_path / "r.html"
    result = invoke("report", cfg, "--out", out, "--measured", tmp_path / "m.json")
    assert_one_line_error(result, *needles)
    assert not out.exists()


def test_measurement_without_a_match_needs_one_per_config(tmp_path):
    a, b = config(tmp_path, "a.toml"), config(tmp_path, "b.toml", 4)
    (tmp_path / "m.json").write_text(json.dumps(measured(model="sj_spiking_cnn")))  # both configs use it
    result = invoke("report", a, b, "--out", tmp_path / "r.html", "--measured", tmp_path / "m.json")
    assert_one_line_error(result, "m.json", "cannot tell which config")


def test_bad_config_writes_nothing_and_keeps_the_old_report(tmp_path):
    good = config(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\nname = "no_such_model"\n')
    out = tmp_path / "r.html"
    out.write_text("old report")
    result = invoke("report", good, bad, "--out", out)
    assert_one_line_error(result, "bad.toml", "model.name", "no_such_model")
    assert out.read_text() == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml", "r.html", "t2.toml"]


def test_label_count_and_folder_out(tmp_path):
    cfg = config(tmp_path)
    assert_one_line_error(invoke("report", cfg, "--label", "a", "--label", "b"), "--label", "one per config")
    assert_one_line_error(invoke("report", cfg, "--out", tmp_path), "is a folder")
