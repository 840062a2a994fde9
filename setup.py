"""Install-time build of snnprof's native code: ``snnprof/csrc/*.cpp`` -> ``snnprof/_native/*.so``.

Everything else about the package is in ``pyproject.toml``. This file only adds a ``build_native``
step to ``build``, so ``pip install .`` and ``pip install -e .`` (what ``make`` runs) compile the
C++ sources once, with the compiler and CPU flags of the machine (see ``snnprof/native_build.py``).
A missing compiler or a failed compile does not fail the install: it is reported in one line and the
library is built on first use instead (or its user falls back to its Torch path).
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import types
from pathlib import Path

from setuptools import Command, setup
from setuptools.command.build import build

ROOT = Path(__file__).resolve().parent


def _native_build() -> types.ModuleType:
    """``snnprof.native_build`` without importing the package (Torch is not in the build environment)."""
    if "snnprof" not in sys.modules:
        stub = types.ModuleType("snnprof")
        stub.__path__ = [str(ROOT / "snnprof")]  # submodules load from the source tree; __init__ does not run
        sys.modules["snnprof"] = stub
    spec = importlib.util.spec_from_file_location("snnprof.native_build", ROOT / "snnprof" / "native_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class BuildNative(Command):
    """Compile the C++ sources into shared libraries (``ctypes``; no Python or Torch headers)."""

    description = "compile snnprof/csrc/*.cpp into snnprof/_native (install-time build of the native code)"
    user_options: list[tuple[str, str | None, str]] = []  # noqa: RUF012 - setuptools' interface

    def initialize_options(self) -> None:
        """No options; the build directory comes from ``build``."""
        self.build_lib: str | None = None
        self.editable_mode = False

    def finalize_options(self) -> None:
        """Take ``build_lib`` from the ``build`` command."""
        self.set_undefined_options("build", ("build_lib", "build_lib"))

    def _directory(self) -> Path:
        """In place for editable installs (PEP 660), else inside the wheel's build tree."""
        if self.editable_mode or self.build_lib is None:
            return ROOT / "snnprof" / "_native"
        return Path(self.build_lib) / "snnprof" / "_native"

    def run(self) -> None:
        """Build every source; a failure is reported in one line and left to the run-time build."""
        log = logging.getLogger("snnprof.setup")
        if not log.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(message)s"))
            log.addHandler(handler)
            log.setLevel(logging.INFO)
        _native_build().prebuild(self._directory(), log)

    def get_outputs(self) -> list[str]:
        """The libraries and manifests built."""
        directory = self._directory()
        return [str(p) for p in sorted(directory.glob("*.so")) + sorted(directory.glob("*.json"))]

    def get_output_mapping(self) -> dict[str, str]:
        """Nothing is copied from the source tree (PEP 660 protocol of setuptools)."""
        return {}


class BuildWithNative(build):
    """``build`` followed by :class:`BuildNative`."""

    sub_commands = [*build.sub_commands, ("build_native", None)]  # noqa: RUF012 - setuptools' interface


setup(cmdclass={"build": BuildWithNative, "build_native": BuildNative})
