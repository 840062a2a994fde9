"""Build snnprof's C++ sources (``snnprof/csrc/*.cpp``) into shared libraries loaded with :mod:`ctypes`.

The bottom layer under both users of native code: the fused neuron kernels (:mod:`snnprof.kernels`)
and the counting engine's one-pass statistics (:mod:`snnprof.counting.native`). It imports only the
standard library and :mod:`snnprof.errors`, so the install-time build hook (``setup.py``) can load it
without Torch.

Where a library comes from, in order:

1. **Install time.** ``pip install`` (also ``pip install -e .``, which ``make`` runs) compiles every
   source into ``snnprof/_native/<stem>.so`` with a manifest ``<stem>.json`` (source hash, CPU, flags,
   compiler). :func:`library_path` uses it when the source is unchanged and the CPU is the one it was
   built for (``-march=native`` code must not run elsewhere).
2. **Run time, as a fallback.** Otherwise the source is compiled on first use into the cache
   (:func:`cache_dir`), under a name that hashes the source, the flags, the compiler version and the
   CPU's feature flags; the library is written atomically, so concurrent processes are safe.
3. Neither: :class:`NativeBuildError` with one sentence (no compiler; compile error; unwritable cache).

Flags: ``$CXX`` (else ``c++``/``g++``/``clang++``) with ``-O3 -shared -fPIC -std=c++17
-ffp-contract=off``, plus ``-fopenmp -march=native`` and a source's own extra flags (a line
``// snnprof-build-flags: ...`` in the source), each dropped with a warning if the compiler rejects it.
No Torch or Python headers are involved, so a build takes seconds.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from snnprof.errors import SnnprofError, first_line

__all__ = [
    "PREBUILT_DIR",
    "SOURCE_DIR",
    "NativeBuildError",
    "build_library",
    "cache_dir",
    "find_compiler",
    "library_path",
    "load",
    "prebuild",
    "prebuilt_library",
    "sources",
]

logger = logging.getLogger(__name__)

#: The C++ sources (package data).
SOURCE_DIR = Path(__file__).resolve().parent / "csrc"
#: Libraries built at install time (``<stem>.so`` + ``<stem>.json``); absent when the install had no compiler.
PREBUILT_DIR = Path(__file__).resolve().parent / "_native"

BASE_FLAGS: tuple[str, ...] = ("-O3", "-shared", "-fPIC", "-std=c++17", "-ffp-contract=off")
OPTIONAL_FLAGS: tuple[str, ...] = ("-fopenmp", "-march=native")
_FLAGS_MARKER = "// snnprof-build-flags:"
_PROBE = """extern "C" void probe(float* x, int n) {
#pragma omp parallel for
    for (int i = 0; i < n; ++i) x[i] *= 2.0f;
}
"""


class NativeBuildError(SnnprofError):
    """A native library cannot be built or loaded (no compiler, compile error, unwritable cache)."""


def cache_dir() -> Path:
    """The run-time build cache: ``snnprof/`` in ``$TORCH_EXTENSIONS_DIR``, ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    if os.environ.get("TORCH_EXTENSIONS_DIR"):
        return Path(os.environ["TORCH_EXTENSIONS_DIR"]) / "snnprof"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "snnprof"


def sources() -> list[str]:
    """File names of the C++ sources in :data:`SOURCE_DIR`, sorted."""
    return sorted(p.name for p in SOURCE_DIR.glob("*.cpp"))


def find_compiler() -> str:
    """Path of the C++ compiler (``$CXX``, else ``c++``/``g++``/``clang++``); raises :class:`NativeBuildError`."""
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and (path := shutil.which(name)):
            return path
    raise NativeBuildError(
        "no C++ compiler found to build snnprof's native code (install g++, e.g. `apt-get install g++`, or set CXX)"
    )


def _source_text(source: str) -> str:
    """The text of ``csrc/<source>``; raises :class:`NativeBuildError` if it is missing."""
    path = SOURCE_DIR / source
    try:
        return path.read_text(encoding="utf-8")
    except OSError as err:
        raise NativeBuildError(f"C++ source {path} is missing ({err.strerror or err})") from err


def _extra_flags(source_text: str) -> tuple[str, ...]:
    """The source's own optional flags (``// snnprof-build-flags: -fno-trapping-math``)."""
    for line in source_text.splitlines():
        if line.startswith(_FLAGS_MARKER):
            return tuple(line[len(_FLAGS_MARKER) :].split())
    return ()


def _cpu_fingerprint() -> str:
    """CPU feature flags (``-march=native`` code must not run on another CPU)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _compiler_version(compiler: str) -> str:
    """First line of ``compiler --version`` (part of the cache key)."""
    out = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=False)
    text = out.stdout or out.stderr
    return text.splitlines()[0] if text else compiler


def _compile(compiler: str, source: Path, dest: Path, flags: list[str]) -> subprocess.CompletedProcess[str]:
    """One compiler run of ``source`` into ``dest``."""
    return subprocess.run([compiler, *flags, str(source), "-o", str(dest)], capture_output=True, text=True, check=False)


def _supported_flags(compiler: str, workdir: Path, optional: tuple[str, ...]) -> list[str]:
    """:data:`BASE_FLAGS` plus each optional flag the compiler accepts (probed on a tiny source)."""
    probe = workdir / "probe.cpp"
    probe.write_text(_PROBE, encoding="utf-8")
    flags = list(BASE_FLAGS)
    for extra in optional:
        if _compile(compiler, probe, workdir / "probe.so", [*flags, extra]).returncode == 0:
            flags.append(extra)
        else:
            logger.warning("native build: the compiler rejected %s; building without it", extra)
    return flags


def _build_into(compiler: str, source: str, text: str, target: Path) -> list[str]:
    """Compile in a private temporary directory next to ``target``, then move the library in atomically."""
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        workdir = Path(tmp)
        (workdir / source).write_text(text, encoding="utf-8")
        flags = _supported_flags(compiler, workdir, OPTIONAL_FLAGS + _extra_flags(text))
        out = _compile(compiler, workdir / source, workdir / "lib.so", flags)
        if out.returncode != 0:
            raise NativeBuildError(f"building the C++ source {source} with {compiler} failed:\n{out.stderr.strip()}")
        os.replace(workdir / "lib.so", target)
    return flags


def _write_library(compiler: str, source: str, text: str, target: Path) -> list[str]:
    """:func:`_build_into` with the directory created; unwritable places become :class:`NativeBuildError`."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return _build_into(compiler, source, text, target)
    except OSError as err:
        raise NativeBuildError(
            f"cannot write the native library {target.name} to {target.parent} ({err.strerror or err}); "
            "set TORCH_EXTENSIONS_DIR to a writable directory"
        ) from err


def build_library(source: str, *, force: bool = False) -> Path:
    """Compile ``csrc/<source>`` into the run-time cache (once) and return the library's path.

    Args:
        source: file name in :data:`SOURCE_DIR`, e.g. ``"neuron_cpu.cpp"``.
        force: rebuild even if the cache has it.

    Raises:
        NativeBuildError: no compiler, the source does not compile, or the cache is not writable.
    """
    text = _source_text(source)
    compiler = find_compiler()
    flags = " ".join(BASE_FLAGS + OPTIONAL_FLAGS + _extra_flags(text))
    key = _sha("\n".join([text, flags, _compiler_version(compiler), _cpu_fingerprint()]))[:16]
    target = cache_dir() / f"{Path(source).stem}-{key}.so"
    if target.exists() and not force:
        return target
    used = _write_library(compiler, source, text, target)
    logger.info("built %s with %s", target, " ".join(used))
    return target


def _manifest(source_text: str) -> dict[str, str]:
    """What an install-time library must match to be used: the source and the CPU."""
    return {"source_sha256": _sha(source_text), "cpu_sha256": _sha(_cpu_fingerprint())}


def prebuilt_library(source: str, directory: Path | None = None) -> Path | None:
    """The install-time library of ``source`` if it matches the current source and CPU, else ``None``."""
    directory = PREBUILT_DIR if directory is None else directory
    stem = Path(source).stem
    library, manifest = directory / f"{stem}.so", directory / f"{stem}.json"
    try:
        recorded = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    wanted = _manifest(_source_text(source))
    if not library.exists() or any(recorded.get(k) != v for k, v in wanted.items()):
        return None
    return library


def library_path(source: str) -> Path:
    """The shared library of ``csrc/<source>``: the install-time build if it matches, else a run-time build.

    Raises:
        NativeBuildError: there is no matching install-time library and the run-time build failed.
    """
    return prebuilt_library(source) or build_library(source)


def load(source: str, abi_symbol: str | None = None, abi_version: int | None = None) -> ctypes.CDLL:
    """Load the library of ``csrc/<source>`` (see :func:`library_path`), checking its ABI version.

    Args:
        source: file name in :data:`SOURCE_DIR`.
        abi_symbol: a function of the library returning its ABI version (an ``int``), if it has one.
        abi_version: the version the caller was written for.

    Raises:
        NativeBuildError: it cannot be built, loaded, or has another ABI version.
    """
    path = library_path(source)
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as err:
        raise NativeBuildError(f"cannot load the native library {path}: {err}") from err
    if abi_symbol is not None:
        getattr(lib, abi_symbol).restype = ctypes.c_int
        found = getattr(lib, abi_symbol)()
        if found != abi_version:
            raise NativeBuildError(f"{path} has ABI {found}, expected {abi_version}; delete it to rebuild")
    return lib


def _prebuild_one(compiler: str, source: str, directory: Path) -> Path:
    """Build one source into ``directory`` with its manifest."""
    text = _source_text(source)
    target = directory / f"{Path(source).stem}.so"
    flags = _write_library(compiler, source, text, target)
    record = {**_manifest(text), "flags": flags, "compiler": _compiler_version(compiler)}
    target.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return target


def prebuild(directory: Path, log: logging.Logger | None = None) -> list[Path]:
    """Build every source into ``directory`` (the install-time build); failures are logged, not raised.

    Args:
        directory: where the libraries and manifests go (``snnprof/_native`` of the install).
        log: where to report each result (default: this module's logger).

    Returns:
        The libraries built. A source that fails is built at run time instead (or its user falls back).
    """
    log = log or logger
    try:
        compiler = find_compiler()
    except NativeBuildError as err:
        log.warning("snnprof: %s; the native libraries will be built at first use if one appears", err)
        return []
    names = sources()
    with ThreadPoolExecutor(max_workers=max(1, min(len(names), os.cpu_count() or 1))) as pool:
        futures = {name: pool.submit(_prebuild_one, compiler, name, directory) for name in names}
    built = []
    for name, future in futures.items():
        try:
            built.append(future.result())
            log.info("snnprof: built %s", built[-1])
        except NativeBuildError as err:
            first = first_line(err)
            log.warning("snnprof: could not build %s at install time (%s); it will be built at first use", name, first)
    return built
