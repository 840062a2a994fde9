"""Our fused CPU kernel: multi-step IF/LIF/PLIF forward and backward in one C++/OpenMP pass each.

The C++ source (``csrc/neuron_cpu.cpp``) has no Torch headers; it is compiled on first use with the
system C++ compiler into a cache directory and called through :mod:`ctypes` on the tensors' data
pointers. It is vectorised over neurons and sequential over time; the forward writes only the spikes
(and the membrane if asked), the backward recomputes the block's charge ``H`` in cache and fuses the
surrogate, so a forward+backward moves ``x`` twice, the spikes, ``grad_spike`` and ``grad_x`` once:
20 bytes per neuron update in float32.

:func:`fused_multistep` is wrapped in a :class:`torch.autograd.Function`, so training uses it::

    out = fused_multistep(x_seq, NeuronSpec("lif", tau=2.0))     # x_seq: [T, ...] float32 on CPU
    out.spikes.sum().backward()

Build: ``$CXX`` (else ``c++``/``g++``/``clang++`` on ``PATH``) with ``-O3 -fopenmp -ffp-contract=off
-march=native`` (each flag dropped if the compiler rejects it). Cache: ``$TORCH_EXTENSIONS_DIR/snnprof``
if set, else ``$XDG_CACHE_HOME/snnprof`` or ``~/.cache/snnprof``; the file name hashes the source, the
flags, the compiler and the CPU's feature flags, and the library is written atomically, so concurrent
processes and machines sharing a home directory are safe.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from snnprof.errors import SnnprofError
from snnprof.kernels.reference import NeuronOutput, NeuronSpec, run_flat

__all__ = [
    "KernelBuildError",
    "build_library",
    "cache_dir",
    "fused_multistep",
    "is_available",
    "load_library",
    "unavailable_reason",
]

logger = logging.getLogger(__name__)

_SOURCE = "neuron_cpu.cpp"
_ABI_VERSION = 1
_BASE_FLAGS = ("-O3", "-shared", "-fPIC", "-std=c++17", "-ffp-contract=off")
_OPTIONAL_FLAGS = ("-fopenmp", "-march=native")
_DTYPES = {torch.float32: 0, torch.float64: 1}
#: (kind, decay_input) -> the kernel's charge-equation code.
_CHARGE = {
    ("if", True): 0, ("if", False): 0, ("lif", True): 1, ("lif", False): 2, ("plif", True): 3, ("plif", False): 4,
}  # fmt: skip
_SURROGATE = {"sigmoid": 0, "atan": 1}
_MIN_PARALLEL_UPDATES = 1 << 18


class KernelBuildError(SnnprofError):
    """The fused CPU kernel cannot be built or loaded (no compiler, compile error, bad library)."""


def cache_dir() -> Path:
    """Where compiled kernels are kept (``$TORCH_EXTENSIONS_DIR/snnprof`` or ``~/.cache/snnprof``)."""
    if os.environ.get("TORCH_EXTENSIONS_DIR"):
        return Path(os.environ["TORCH_EXTENSIONS_DIR"]) / "snnprof"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "snnprof"


def _find_compiler() -> str:
    """The C++ compiler to use; raises :class:`KernelBuildError` when there is none."""
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and (path := shutil.which(name)):
            return path
    raise KernelBuildError(
        "no C++ compiler found for the fused CPU kernel (set CXX or install g++, e.g. `apt-get install g++`)"
    )


def _cpu_fingerprint() -> str:
    """CPU feature flags (``-march=native`` code must not run on another CPU sharing the cache)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _compiler_version(compiler: str) -> str:
    """First line of ``compiler --version`` (part of the cache key)."""
    out = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else compiler


def _compile(compiler: str, source: Path, dest: Path, flags: list[str]) -> subprocess.CompletedProcess[str]:
    """Run one compile of ``source`` into ``dest``."""
    return subprocess.run([compiler, *flags, str(source), "-o", str(dest)], capture_output=True, text=True, check=False)


_PROBE = """extern "C" void probe(float* x, int n) {
#pragma omp parallel for
    for (int i = 0; i < n; ++i) x[i] *= 2.0f;
}
"""


def _supported_flags(compiler: str, workdir: Path, extra_flags: tuple[str, ...] = ()) -> list[str]:
    """The base flags plus each optional flag the compiler accepts (probed on a tiny source)."""
    source = workdir / "probe.cpp"
    source.write_text(_PROBE, encoding="utf-8")
    flags = list(_BASE_FLAGS)
    for extra in (*_OPTIONAL_FLAGS, *extra_flags):
        probe = _compile(compiler, source, workdir / "probe.so", [*flags, extra])
        if probe.returncode == 0:
            flags.append(extra)
        else:
            logger.warning("fused CPU kernel: compiler rejected %s; building without it", extra)
    return flags


def build_library(force: bool = False, source: str = _SOURCE, extra_flags: tuple[str, ...] = ()) -> Path:
    """Compile a kernel source of ``csrc/`` into the cache (once) and return the shared library's path.

    Args:
        force: rebuild even if a cached library exists.
        source: the file name in ``snnprof/kernels/csrc`` (default: the fused neuron kernel).
        extra_flags: more optional compiler flags for this source (each dropped if rejected).

    Raises:
        KernelBuildError: no compiler, or the source does not compile.
    """
    compiler = _find_compiler()
    source_text = resources.files("snnprof.kernels").joinpath("csrc", source).read_text(encoding="utf-8")
    flags = " ".join(_BASE_FLAGS + _OPTIONAL_FLAGS + tuple(extra_flags))
    key = "\n".join([source_text, flags, _compiler_version(compiler), _cpu_fingerprint()])
    target = cache_dir() / f"{Path(source).stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.so"
    if target.exists() and not force:
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        used = _build_into(compiler, source_text, target, source, tuple(extra_flags))
    except OSError as err:
        raise KernelBuildError(
            f"cannot write the C++ kernel {source} to {target.parent} ({err.strerror or err}); set TORCH_EXTENSIONS_DIR"
        ) from err
    logger.info("built C++ kernel %s with %s", target, " ".join(used))
    return target


def _build_into(compiler: str, source_text: str, target: Path, name: str = _SOURCE,
                extra_flags: tuple[str, ...] = ()) -> list[str]:
    """Compile in a private temporary directory next to ``target``, then move the library in atomically."""
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        workdir = Path(tmp)
        source = workdir / name
        source.write_text(source_text, encoding="utf-8")
        flags = _supported_flags(compiler, workdir, extra_flags)
        out = _compile(compiler, source, workdir / "lib.so", flags)
        if out.returncode != 0:
            raise KernelBuildError(f"building the C++ kernel {name} with {compiler} failed:\n{out.stderr.strip()}")
        os.replace(workdir / "lib.so", target)
    return flags


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Declare the C signatures (argument types catch mistakes that would otherwise crash)."""
    ptr, i64, f64, c_int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double, ctypes.c_int
    lib.snn_abi_version.restype = c_int
    lib.snn_forward.restype = c_int
    lib.snn_forward.argtypes = [c_int, ptr, ptr, ptr, ptr, ptr, i64, i64, c_int, c_int, f64, f64, f64, c_int]
    lib.snn_backward.restype = c_int
    lib.snn_backward.argtypes = [
        c_int, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ctypes.POINTER(f64),
        i64, i64, c_int, c_int, c_int, c_int, f64, f64, f64, f64, c_int,
    ]  # fmt: skip
    return lib


@functools.cache
def load_library() -> ctypes.CDLL:
    """Build (if needed) and load the kernel library, once per process.

    Raises:
        KernelBuildError: the library cannot be built or has another ABI version.
    """
    path = build_library()
    try:
        lib = _bind(ctypes.CDLL(str(path)))
    except OSError as err:
        raise KernelBuildError(f"cannot load the fused CPU kernel {path}: {err}") from err
    if lib.snn_abi_version() != _ABI_VERSION:
        raise KernelBuildError(f"{path} has ABI {lib.snn_abi_version()}, expected {_ABI_VERSION}; delete it")
    return lib


def unavailable_reason(device_type: str = "cpu") -> str | None:
    """``None`` if the kernel builds and loads here (CPU only), else why not (one sentence)."""
    if device_type != "cpu":
        return f"the fused CPU kernel does not run on {device_type}"
    try:
        load_library()
    except KernelBuildError as err:
        return str(err).splitlines()[0]
    return None


def is_available() -> bool:
    """Whether the fused CPU kernel can be used on this machine."""
    return unavailable_reason() is None


_HUGE_PAGE = 2 << 20
_MADV_HUGEPAGE = 14


@functools.cache
def _libc_madvise() -> Any:
    """The C library's ``madvise`` on Linux, else ``None``."""
    if platform.system() != "Linux":
        return None
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    return madvise


def _empty_like(x: torch.Tensor) -> torch.Tensor:
    """An uninitialised output buffer, backed by transparent huge pages where the OS allows it.

    A fresh multi-megabyte tensor is paid for in page faults at first touch (about 0.3 ms per MiB here,
    as much as the kernel itself); asking for 2 MiB pages (``madvise(MADV_HUGEPAGE)``, Linux with THP in
    ``madvise`` or ``always`` mode) before the kernel writes it cuts that cost by more than half.
    """
    out = torch.empty_like(x)
    madvise = _libc_madvise()
    nbytes = out.numel() * out.element_size()
    if madvise is not None and nbytes >= 2 * _HUGE_PAGE:
        start = -(-out.data_ptr() // _HUGE_PAGE) * _HUGE_PAGE
        end = (out.data_ptr() + nbytes) // _HUGE_PAGE * _HUGE_PAGE
        if end > start:
            madvise(start, end - start, _MADV_HUGEPAGE)  # advisory: a failure only costs speed
    return out


def _ptr(t: torch.Tensor | None) -> int | None:
    """Data pointer of a tensor (``None`` stays ``None``: a NULL pointer for the kernel)."""
    return None if t is None else t.data_ptr()


def _k_value(spec: NeuronSpec, q: torch.Tensor | None) -> float:
    """The kernel's ``k``: tau for LIF (divides), q = sigmoid(w) for PLIF (multiplies), unused for IF."""
    if spec.kind == "plif":
        assert q is not None
        return float(q.item())
    return float(spec.tau)


def _threads(updates: int) -> int:
    """OpenMP threads for a call: one below ``_MIN_PARALLEL_UPDATES`` (waking threads costs more)."""
    return torch.get_num_threads() if updates >= _MIN_PARALLEL_UPDATES else 1


def _check(rc: int, what: str) -> None:
    if rc != 0:
        raise RuntimeError(f"fused CPU kernel {what} rejected its arguments (code {rc})")


class _FusedNeuron(torch.autograd.Function):
    """Autograd wrapper: forward and backward are one kernel call each."""

    @staticmethod
    def forward(  # noqa: PLR0917 - autograd passes apply()'s arguments positionally
        ctx: Any, x: torch.Tensor, v0: torch.Tensor | None, q: torch.Tensor | None, spec: NeuronSpec, store: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        lib = load_library()
        steps, n = x.shape
        spikes = _empty_like(x)
        v_out = _empty_like(x) if store else x.new_empty(n)
        rc = lib.snn_forward(
            _DTYPES[x.dtype], _ptr(x), _ptr(v0), _ptr(spikes), _ptr(v_out) if store else None,
            None if store else _ptr(v_out), steps, n, _CHARGE[(spec.kind, spec.decay_input)], int(spec.hard_reset),
            _k_value(spec, q), spec.v_threshold, spec.reset_value, _threads(steps * n),
        )  # fmt: skip
        _check(rc, "forward")
        ctx.save_for_backward(x, v0, q)
        ctx.spec, ctx.store = spec, store
        return spikes, v_out

    @staticmethod
    def backward(ctx: Any, g_spikes: torch.Tensor | None, g_v: torch.Tensor | None) -> tuple[Any, ...]:
        x, v0, q = ctx.saved_tensors
        spec: NeuronSpec = ctx.spec
        steps, n = x.shape
        gs = torch.zeros_like(x) if g_spikes is None else g_spikes.contiguous()
        g_v = None if g_v is None else g_v.contiguous()
        gx = _empty_like(x)
        gv0 = x.new_empty(n) if v0 is not None and ctx.needs_input_grad[1] else None
        gk = ctypes.c_double(0.0)
        rc = load_library().snn_backward(
            _DTYPES[x.dtype], _ptr(x), _ptr(v0), _ptr(gs), _ptr(g_v) if ctx.store else None,
            None if ctx.store else _ptr(g_v), _ptr(gx), _ptr(gv0), ctypes.byref(gk), steps, n,
            _CHARGE[(spec.kind, spec.decay_input)], int(spec.hard_reset), int(spec.detach_reset),
            _SURROGATE[spec.surrogate], _k_value(spec, q), spec.v_threshold, spec.reset_value,
            spec.surrogate_alpha, _threads(steps * n),
        )  # fmt: skip
        _check(rc, "backward")
        gq = torch.tensor(gk.value, dtype=q.dtype).reshape(q.shape) if q is not None else None
        return gx, gv0, gq, None, None


def _validate(x_seq: torch.Tensor, v_init: torch.Tensor | None) -> None:
    """Clear errors for inputs the kernel does not take."""
    if x_seq.device.type != "cpu":
        raise ValueError(f"the fused CPU kernel needs CPU tensors, got {x_seq.device}")
    if x_seq.dtype not in _DTYPES:
        raise TypeError(f"the fused CPU kernel supports float32 and float64, got {x_seq.dtype}")
    if x_seq.dim() < 1:
        raise ValueError("x_seq must have a leading time dimension [T, ...]")
    if v_init is not None and (v_init.shape != x_seq.shape[1:] or v_init.dtype != x_seq.dtype):
        expected = f"{tuple(x_seq.shape[1:])} {x_seq.dtype}"
        raise ValueError(f"v_init must be {expected}, got {tuple(v_init.shape)} {v_init.dtype}")


def fused_multistep(
    x_seq: torch.Tensor,
    spec: NeuronSpec,
    w: torch.Tensor | None = None,
    v_init: torch.Tensor | None = None,
    store_v_seq: bool = False,
) -> NeuronOutput:
    """Multi-step neuron with the fused CPU kernel; same contract as :func:`~snnprof.kernels.reference.eager_multistep`.

    Args:
        x_seq: input current ``[T, *]``, float32 or float64, on the CPU.
        spec: the neuron configuration.
        w: PLIF's learnable scalar (0-dim tensor); gradients flow to it.
        v_init: initial membrane ``x_seq.shape[1:]``; default ``v_reset`` (0 for soft reset).
        store_v_seq: return the membrane of every step instead of only the last.

    Returns:
        Spikes ``[T, *]`` and the membrane, differentiable w.r.t. ``x_seq``, ``v_init`` and ``w``.

    Raises:
        KernelBuildError: the kernel cannot be built here (no compiler).
    """
    _validate(x_seq, v_init)
    return run_flat(_FusedNeuron.apply, x_seq, v_init, w, spec=spec, store_v_seq=store_v_seq, q_dtype=x_seq.dtype)
