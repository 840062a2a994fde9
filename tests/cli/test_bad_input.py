"""The promise "one error line, exit 2, nothing written" under adversarial inputs and outputs."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from snnprof.cli_common import errors, handle_sigterm
from snnprof.io import remove_stale_temps, write_all
from snnprof.models import create_model
from tests.cli.test_cli import SMALL_SJ, assert_one_line_error, invoke, write

runner = CliRunner()


def strict(path: Path) -> object:
    """Parse JSON refusing NaN/Infinity (what strict parsers do)."""

    def reject(value: str) -> None:
        raise ValueError(value)

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=reject)


# --------------------------------------------------------------------------- outputs


def test_json_and_csv_to_the_same_file_is_an_error(tmp_path: Path) -> None:
    same = tmp_path / "x.out"
    result = invoke("count", write(tmp_path, SMALL_SJ), "--json", same, "--csv", same)
    assert result.exit_code == 2
    assert_one_line_error(result, "given twice")
    assert not same.exists()


def test_a_bad_second_output_writes_neither(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    ok = tmp_path / "ok.json"
    result = invoke("count", write(tmp_path, SMALL_SJ), "--json", ok, "--csv", tmp_path / "dir")
    assert result.exit_code == 2
    assert_one_line_error(result, "is a folder")
    assert not ok.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["dir", "run.toml"]


def test_write_all_is_all_or_nothing(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(OSError):
        write_all({tmp_path / "a.json": b"1", tmp_path / "blocker" / "b.csv": b"2"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]
    write_all({tmp_path / "a.json": b"1", tmp_path / "sub" / "b.csv": b"2"})
    assert (tmp_path / "a.json").read_bytes() == b"1" and (tmp_path / "sub" / "b.csv").read_bytes() == b"2"
    assert not [p for p in tmp_path.rglob(".*.tmp")]


def test_stale_temporary_files_of_dead_processes_are_removed(tmp_path: Path) -> None:
    stale = tmp_path / ".out.json.snnprof-999999999.tmp"  # no such process
    mine = tmp_path / f".out.json.snnprof-{os.getpid()}.tmp"
    other = tmp_path / ".notes.tmp"
    for path in (stale, mine, other):
        path.write_text("partial")
    assert remove_stale_temps(tmp_path) == [stale]
    assert mine.exists() and other.exists() and not stale.exists()


def test_sigterm_stops_a_command_like_ctrl_c(capsys: pytest.CaptureFixture[str]) -> None:
    previous = signal.getsignal(signal.SIGTERM)
    handle_sigterm()
    try:
        with pytest.raises(BaseException) as info, errors():
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0) if hasattr(signal, "sigtimedwait") else None
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert getattr(info.value, "exit_code", None) == 130
    assert capsys.readouterr().err.strip() == "error: interrupted; no output was written"


def test_every_written_json_is_strict(tmp_path: Path) -> None:
    profile = tmp_path / "pricey.toml"
    shipped = (Path(__file__).resolve().parents[2] / "snnprof/hardware_profiles/cmos45nm_fp32_mem.toml").read_text()
    profile.write_text(shipped.replace('name = "cmos45nm_fp32_mem"', 'name = "pricey"')
                       .replace("mac = 4.6", "mac = 1e12"), encoding="utf-8")
    cfg = write(tmp_path, SMALL_SJ.replace('"loihi"]', '"loihi", "pricey.toml"]'))
    out = tmp_path / "out"
    for args in (["count", cfg, "--json", out / "count.json"], ["profiles", "--json", out / "profiles.json"],
                 ["zoo", "--json", out / "zoo.json"], ["compare", cfg, cfg, "--json", out / "cmp.json", "-q"]):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
    for path in out.iterdir():
        strict(path)


# --------------------------------------------------------------------------- model code and checkpoints


def test_an_assertion_inside_the_model_is_one_line(tmp_path: Path) -> None:
    text = SMALL_SJ.replace("num_classes = 10", "num_classes = 10, v_threshold = 1")  # SpikingJelly asserts float
    result = invoke("count", write(tmp_path, text), "--json", tmp_path / "o.json")
    assert result.exit_code == 2
    assert_one_line_error(result, "model.kwargs")
    assert not (tmp_path / "o.json").exists()


def test_a_non_tensor_under_a_real_checkpoint_key_is_one_line(tmp_path: Path) -> None:
    model = create_model("sj_spiking_cnn", in_channels=2, num_classes=10, image_size=16)
    state = model.state_dict()
    key = next(iter(state))
    state[key] = [1, 2, 3]
    torch.save(state, tmp_path / "ckpt.pt")
    cfg = write(tmp_path, SMALL_SJ.replace("[input]", 'checkpoint = "ckpt.pt"\n[input]'))
    result = invoke("count", cfg, "--json", tmp_path / "o.json")
    assert result.exit_code == 2
    assert_one_line_error(result, "model.checkpoint", "expected tensors", key)


@pytest.mark.parametrize(("text", "needle"), [
    (SMALL_SJ.replace("batch_size = 2", "batch_size = 1000000000"), "fits in memory"),
    (SMALL_SJ.replace("time_steps = 2", "time_steps = 100000000"), "fits in memory"),
    (SMALL_SJ.replace("in_channels = 2, ", "in_channels = 2000000000, "), "fits in memory"),
])
def test_runs_that_cannot_fit_are_refused_before_allocating(tmp_path: Path, text: str, needle: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNNPROF_MAX_MEMORY", "4G")
    result = invoke("count", write(tmp_path, text), "--json", tmp_path / "o.json")
    assert result.exit_code == 2, result.output
    assert_one_line_error(result, needle, "GiB", "SNNPROF_MAX_MEMORY")


def test_work_limit_refuses_unbounded_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNNPROF_MAX_MACS", "1e6")
    text = SMALL_SJ.replace("batch_size = 2", "batch_size = 16")  # B*T = 32: the forward probe runs
    result = invoke("count", write(tmp_path, text), "--json", tmp_path / "o.json")
    assert result.exit_code == 2
    assert_one_line_error(result, "SNNPROF_MAX_MACS")


@pytest.mark.parametrize(("text", "key"), [
    (SMALL_SJ.replace("seed = 0", "seed = -1"), "input.seed"),
    (SMALL_SJ.replace("seed = 0", "seed = 18446744073709551616"), "input.seed"),
    (SMALL_SJ.replace("image_size = 16 }\n[count]", "image_size = inf }\n[count]"), "input.kwargs"),
    (SMALL_SJ.replace("[count]", "[count]\n" + "x = " + "[" * 5000 + "]" * 5000), ""),
])
def test_ranges_are_validated_up_front(tmp_path: Path, text: str, key: str) -> None:
    result = invoke("count", write(tmp_path, text), "--json", tmp_path / "o.json")
    assert result.exit_code == 2
    assert_one_line_error(result, f": {key}: " if key else "nested")


def test_a_profile_copied_from_a_shipped_one_must_be_renamed(tmp_path: Path) -> None:
    shipped = (Path(__file__).resolve().parents[2] / "snnprof/hardware_profiles/loihi.toml").read_text()
    (tmp_path / "copy.toml").write_text(shipped, encoding="utf-8")
    result = invoke("count", write(tmp_path, SMALL_SJ.replace('"loihi"]', '"loihi", "copy.toml"]')))
    assert result.exit_code == 2
    assert_one_line_error(result, "energy.profiles", "distinct profile names", "copy.toml")


def test_escape_codes_in_names_are_printed_escaped(tmp_path: Path) -> None:
    evil = tmp_path / "evil\x1b[31m.toml"
    evil.write_text(SMALL_SJ.replace('name = "sj_spiking_cnn"', 'name = "\\u001b[2Jgone"'), encoding="utf-8")
    result = invoke("count", evil)
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr and "\\x1b[2Jgone" in result.stderr
