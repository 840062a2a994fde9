"""The native build helper: install-time libraries, the run-time fallback, clear errors, layering."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from snnprof import native_build
from snnprof.native_build import NativeBuildError

ROOT = Path(__file__).resolve().parents[1]
HAS_COMPILER = any(shutil.which(name) for name in ("c++", "g++", "clang++"))
needs_compiler = pytest.mark.skipif(not HAS_COMPILER, reason="no C++ compiler here")


@pytest.fixture
def tiny_source(monkeypatch, tmp_path: Path) -> Path:
    """A source directory with one small C++ file (flags marker included), used instead of snnprof/csrc."""
    src = tmp_path / "csrc"
    src.mkdir()
    (src / "tiny.cpp").write_text(
        '// snnprof-build-flags: -fno-trapping-math\nextern "C" int tiny_answer() { return 42; }\n', encoding="utf-8"
    )
    monkeypatch.setattr(native_build, "SOURCE_DIR", src)
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "cache"))
    return src


def test_sources_are_the_csrc_files():
    assert {"neuron_cpu.cpp", "event_stats.cpp", "buffer_pool.cpp", "membw.cpp"} <= set(native_build.sources())


def test_extra_flags_come_from_the_source():
    assert native_build._extra_flags("// snnprof-build-flags: -fa -fb\nint x;\n") == ("-fa", "-fb")
    assert native_build._extra_flags("int x;\n") == ()


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    assert native_build.cache_dir() == tmp_path / "ext" / "snnprof"
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert native_build.cache_dir() == tmp_path / "xdg" / "snnprof"


def test_no_compiler_is_one_clear_sentence(monkeypatch, tiny_source: Path):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(native_build.shutil, "which", lambda name: None)
    with pytest.raises(NativeBuildError, match="no C\\+\\+ compiler found") as info:
        native_build.library_path("tiny.cpp")
    assert "\n" not in str(info.value)


def test_no_compiler_at_install_time_is_logged_not_raised(monkeypatch, tmp_path: Path, caplog):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(native_build.shutil, "which", lambda name: None)
    assert native_build.prebuild(tmp_path / "out") == []
    assert "no C++ compiler" in caplog.text


@needs_compiler
def test_run_time_build_is_cached(tiny_source: Path, tmp_path: Path):
    first = native_build.library_path("tiny.cpp")
    assert first.parent == tmp_path / "cache" / "snnprof" and first.name.startswith("tiny-")
    assert native_build.library_path("tiny.cpp") == first
    assert native_build.load("tiny.cpp", "tiny_answer", 42) is not None
    with pytest.raises(NativeBuildError, match="ABI 42, expected 7"):
        native_build.load("tiny.cpp", "tiny_answer", 7)


@needs_compiler
def test_install_time_library_is_used_while_it_matches(tiny_source: Path, tmp_path: Path, monkeypatch):
    prebuilt = tmp_path / "native"
    (built,) = native_build.prebuild(prebuilt)
    assert built == prebuilt / "tiny.so"
    record = json.loads((prebuilt / "tiny.json").read_text())
    assert "-fno-trapping-math" in record["flags"] and "-O3" in record["flags"]
    monkeypatch.setattr(native_build, "PREBUILT_DIR", prebuilt)
    assert native_build.library_path("tiny.cpp") == built
    assert not (tmp_path / "cache").exists()  # nothing compiled at run time
    (tiny_source / "tiny.cpp").write_text('extern "C" int tiny_answer() { return 43; }\n', encoding="utf-8")
    assert native_build.prebuilt_library("tiny.cpp") is None  # edited source: rebuilt at run time
    assert native_build.library_path("tiny.cpp").parent == tmp_path / "cache" / "snnprof"


@needs_compiler
def test_install_time_library_of_another_cpu_is_ignored(tiny_source: Path, tmp_path: Path, monkeypatch):
    native_build.prebuild(tmp_path / "native")
    monkeypatch.setattr(native_build, "_cpu_fingerprint", lambda: "flags : another cpu")
    assert native_build.prebuilt_library("tiny.cpp", tmp_path / "native") is None


@needs_compiler
def test_compile_error_is_reported_and_nothing_is_half_written(tiny_source: Path, tmp_path: Path):
    (tiny_source / "tiny.cpp").write_text("this is not C++\n", encoding="utf-8")
    with pytest.raises(NativeBuildError, match="tiny.cpp .* failed"):
        native_build.build_library("tiny.cpp")
    assert not list((tmp_path / "cache").rglob("*.so"))


def test_unwritable_cache_is_a_clear_error(monkeypatch, tiny_source: Path, tmp_path: Path):
    if not HAS_COMPILER:
        pytest.skip("no C++ compiler here")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(blocker))
    with pytest.raises(NativeBuildError, match="TORCH_EXTENSIONS_DIR"):
        native_build.build_library("tiny.cpp")


def test_missing_source_is_named(tiny_source: Path):
    with pytest.raises(NativeBuildError, match="nothing.cpp"):
        native_build.library_path("nothing.cpp")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return names | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}


def test_layers_point_down():
    """The build helper imports only the standard library and snnprof.errors; counting never imports kernels."""
    helper = {name for name in _imports(ROOT / "snnprof" / "native_build.py") if name.startswith("snnprof")}
    assert helper == {"snnprof.errors"}
    for path in (ROOT / "snnprof" / "counting").rglob("*.py"):
        assert not any(name.startswith("snnprof.kernels") for name in _imports(path)), path
