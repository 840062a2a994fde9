"""Benchmarks of the neuron kernels and event-driven synapses: correctness gate first, then timing.

Everything here is pure computation returning dataclasses; ``snnprof bench`` renders them.

Neuron cases (kernel x T x N x mode): every available implementation runs once on the case's own
inputs and is compared with the eager reference (spikes identical, final membrane and gradients within
tolerance). A mismatch is reported as ``FAILED`` and not timed; an implementation that raises is
``unavailable`` with the error. Then the passing implementations are timed round-robin (one call each
per round, so machine drift hits all alike): median and interquartile range of the wall time per call,
throughput in neuron updates per second (``T * N / time``), speed-ups against the eager loop and the
fastest SpikingJelly backend, and an effective memory bandwidth: the bytes the operation must move
(:func:`bytes_moved`, the same count for every implementation) divided by the time. That bandwidth
is also given as a fraction of the machine's streaming bandwidth (STREAM copy/triad over arrays beyond
the last-level cache, same threads; :mod:`snnprof.kernels.membw`), measured in the same round-robin
as the case's implementations, so both see the same conditions; on a GPU also of the device's peak.

Modes: ``fwd`` is inference (``torch.no_grad``); ``fwd+bwd`` is a training step: forward, then the
gradient w.r.t. the input (and PLIF's ``w``) of the spikes under a fixed random upstream gradient.

Synapse cases: dense vs event-driven layers (:mod:`snnprof.kernels.synapse`) on Bernoulli spikes at
each firing rate, outputs checked against dense, then timed; :func:`crossovers` finds the rate below
which event-driven is faster.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

import torch

from snnprof.errors import SnnprofError, first_line
from snnprof.kernels import NeuronImpl, get_impl, impls_for
from snnprof.kernels.membw import StreamArrays, StreamResult
from snnprof.kernels.reference import NeuronSpec, init_w
from snnprof.kernels.synapse import (
    FULL_LAYERS,
    QUICK_LAYERS,
    Crossover,
    SynapseLayer,
    SynapseRow,
    bench_synapse_layer,
    crossovers,
)
from snnprof.kernels.timing import Timing, error_text, rel_error, time_interleaved

__all__ = [
    "DEFAULT_RATES",
    "KERNEL_SPECS",
    "MODES",
    "QUICK_LAYERS",
    "SCHEMA",
    "STREAM_CALLS",
    "BenchConfig",
    "BenchReport",
    "Crossover",
    "GateResult",
    "NeuronInputs",
    "NeuronRow",
    "SynapseLayer",
    "SynapseRow",
    "Timing",
    "bench_neuron_case",
    "bench_synapse_layer",
    "bytes_moved",
    "crossovers",
    "device_peak_gbs",
    "gate_impl",
    "make_neuron_inputs",
    "neuron_call",
    "run_bench",
    "time_interleaved",
]

SCHEMA = "snnprof.bench/1"
#: Names of the STREAM runs timed in each neuron case's round-robin (not implementations).
STREAM_CALLS: tuple[str, ...] = ("stream_copy", "stream_triad")
MODES: tuple[str, ...] = ("fwd", "fwd+bwd")

#: The neuron configuration benchmarked per kernel name (SpikingJelly's defaults: hard reset to 0,
#: threshold 1, tau 2, sigmoid surrogate with alpha 4).
KERNEL_SPECS: dict[str, NeuronSpec] = {
    "lif": NeuronSpec("lif"),
    "if": NeuronSpec("if"),
    "plif": NeuronSpec("plif"),
}
DEFAULT_RATES: tuple[float, ...] = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
V_RTOL = 1e-5  # final membrane: max |diff| / max(1, max |ref|)
GRAD_RTOL = 1e-4  # grad x: max |diff| / max |ref|
W_RTOL = 1e-3  # PLIF grad w (a sum over T*N terms): |diff| / |ref|

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BenchConfig:
    """What to benchmark.

    Attributes:
        kernels: any of ``lif``, ``if``, ``plif``, ``synapse``.
        steps: time steps T per neuron case.
        neurons: neurons N per neuron case.
        device: ``"cpu"`` or ``"cuda"``.
        impls: implementation names to run (``None``: all that target the device).
        modes: ``fwd`` and/or ``fwd+bwd``.
        rounds: timed calls per implementation and case.
        warmup: untimed calls before timing (after the gate call).
        rates: synapse firing rates (fractions).
        layers: synapse layers.
        seed: input seed.
        threads: CPU threads for the run (``torch.set_num_threads``; our kernel follows it); ``None``: as is.
        stream: measure the machine's streaming bandwidth (before and after the run, and in every neuron
            case's rounds) and report each kernel's bandwidth as a fraction of it.
        stream_bytes: bytes per STREAM array (``None``: 4x the last-level cache, at least 64 MiB).
    """

    kernels: tuple[str, ...] = ("lif", "if", "plif", "synapse")
    steps: tuple[int, ...] = (16,)
    neurons: tuple[int, ...] = (1 << 20,)
    device: str = "cpu"
    impls: tuple[str, ...] | None = None
    modes: tuple[str, ...] = MODES
    rounds: int = 10
    warmup: int = 1
    rates: tuple[float, ...] = DEFAULT_RATES
    layers: tuple[SynapseLayer, ...] = FULL_LAYERS
    seed: int = 0
    threads: int | None = None
    stream: bool = True
    stream_bytes: int | None = None


@dataclass(frozen=True)
class GateResult:
    """Outcome of checking one implementation against the reference.

    Attributes:
        ok: spikes identical and every error within tolerance.
        spike_mismatches: elements whose spike differs.
        v_error: final membrane max |diff| / max(1, max |ref|).
        grad_error: grad x max |diff| / max |ref| (``None`` in ``fwd`` mode).
        w_error: PLIF grad w relative error (``None`` unless PLIF ``fwd+bwd``).
        reason: why it failed ("" when ok).
    """

    ok: bool
    spike_mismatches: int
    v_error: float
    grad_error: float | None = None
    w_error: float | None = None
    reason: str = ""


@dataclass(frozen=True)
class NeuronRow:
    """One implementation on one neuron case.

    Attributes:
        kernel: ``lif``, ``if`` or ``plif``.
        spec: the neuron configuration (label).
        impl: implementation name.
        steps: T.
        neurons: N.
        mode: ``fwd`` or ``fwd+bwd``.
        device: ``cpu`` or ``cuda``.
        status: ``ok``, ``FAILED`` (gate mismatch, not timed) or ``unavailable``.
        reason: why not ``ok``.
        verified: False for implementations never run by their author on this device type.
        gate: the correctness check (``None`` when unavailable).
        timing: wall time per call (``None`` unless ok).
        throughput: neuron updates per second (``T * N / median``).
        speedup_vs_eager: eager median / this median.
        speedup_vs_sj: fastest SpikingJelly median / this median.
        bytes_moved: bytes per call the operation must move (:func:`bytes_moved`).
        bandwidth_gbs: ``bytes_moved / median`` in GB/s (1e9 bytes).
        peak_fraction: ``bandwidth_gbs`` / device peak (GPU only).
        stream_gbs: the machine's streaming bandwidth in GB/s measured in this case's rounds (the better
            of STREAM copy and triad medians; ``None`` when not measured).
        stream_fraction: ``bandwidth_gbs / stream_gbs``.
    """

    kernel: str
    spec: str
    impl: str
    steps: int
    neurons: int
    mode: str
    device: str
    status: str
    reason: str = ""
    verified: bool = True
    gate: GateResult | None = None
    timing: Timing | None = None
    throughput: float | None = None
    speedup_vs_eager: float | None = None
    speedup_vs_sj: float | None = None
    bytes_moved: int = 0
    bandwidth_gbs: float | None = None
    peak_fraction: float | None = None
    stream_gbs: float | None = None
    stream_fraction: float | None = None


@dataclass(frozen=True)
class BenchReport:
    """Everything one ``snnprof bench`` run measured.

    Attributes:
        environment: device, CPU/GPU name, threads, versions, load average.
        config: the :class:`BenchConfig` as a dict.
        neuron_rows: neuron-kernel rows.
        synapse_rows: synapse rows.
        crossovers: synapse crossover rates.
        stream: the machine's streaming bandwidth before the cases (``None`` if not measured).
        stream_after: the same after the cases.
    """

    environment: dict[str, Any]
    config: dict[str, Any]
    neuron_rows: list[NeuronRow] = field(default_factory=list)
    synapse_rows: list[SynapseRow] = field(default_factory=list)
    crossovers: list[Crossover] = field(default_factory=list)
    stream: StreamResult | None = None
    stream_after: StreamResult | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, schema ``snnprof.bench/1`` (times in seconds)."""
        return {"schema": SCHEMA, **asdict(self)}


# --------------------------------------------------------------------------- neuron cases


def bytes_moved(mode: str, device: str, steps: int, neurons: int, element_size: int = 4) -> int:
    """Bytes one call must move at the least (each input read once, each output written once).

    ``fwd`` (inference): read x, write the spikes ``[T, N]`` and the final membrane ``[N]``.
    ``fwd+bwd`` adds the backward; on the CPU it recomputes H from x: read x and grad_spike, write
    grad_x (``5 T N + N`` elements in all). On a GPU the forward stores H ``[T, N]`` and the backward
    reads it instead of x (``6 T N + N``). docs/kernels.md lists what each implementation really moves.
    """
    per_update = 2 if mode == "fwd" else 5 if device == "cpu" else 6
    return (per_update * steps + 1) * neurons * element_size


def device_peak_gbs(device: str) -> float | None:
    """Peak DRAM bandwidth of the current GPU in GB/s (``None`` on the CPU or if unknown)."""
    if device != "cuda" or not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    clock_khz, bus_bits = getattr(props, "memory_clock_rate", 0), getattr(props, "memory_bus_width", 0)
    if not clock_khz or not bus_bits:
        return None
    return 2 * clock_khz * 1e3 * bus_bits / 8 / 1e9  # double data rate


@dataclass
class NeuronInputs:
    """Inputs of one neuron case: ``x`` [T, N], PLIF ``w``, upstream gradients of spikes and final membrane."""

    x: torch.Tensor
    w: torch.Tensor | None
    g_spikes: torch.Tensor
    g_v: torch.Tensor


@dataclass
class _Outputs:
    """What one gate call produced."""

    spikes: torch.Tensor
    v: torch.Tensor
    gx: torch.Tensor | None = None
    gw: torch.Tensor | None = None


def make_neuron_inputs(spec: NeuronSpec, steps: int, neurons: int, device: str = "cpu", seed: int = 0) -> NeuronInputs:
    """Deterministic case inputs: current N(0.6, 0.8^2) (LIF fires ~30 %), upstream gradients N(0, 1)."""
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(steps, neurons, generator=gen) * 0.8 + 0.6).to(device)
    g_spikes = torch.randn(steps, neurons, generator=gen).to(device)
    g_v = torch.randn(neurons, generator=gen).to(device)
    w = torch.tensor(init_w(spec.tau), device=device) if spec.kind == "plif" else None
    return NeuronInputs(x, w, g_spikes, g_v)


def _leaves(inp: NeuronInputs) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Fresh leaf copies of x and w that require grad."""
    x = inp.x.detach().requires_grad_(True)
    w = None if inp.w is None else inp.w.detach().clone().requires_grad_(True)
    return x, w


def _gate_call(impl: NeuronImpl, spec: NeuronSpec, inp: NeuronInputs, mode: str) -> _Outputs:
    """One call for the gate: outputs, and in ``fwd+bwd`` the gradients under (g_spikes, g_v)."""
    if mode == "fwd":
        with torch.no_grad():
            out = impl(inp.x, spec, inp.w)
        return _Outputs(out.spikes, out.v)
    x, w = _leaves(inp)
    out = impl(x, spec, w)
    wrt = [x] if w is None else [x, w]
    grads = torch.autograd.grad([out.spikes, out.v], wrt, [inp.g_spikes, inp.g_v])
    return _Outputs(out.spikes.detach(), out.v.detach(), grads[0], grads[1] if w is not None else None)


def _gate(ref: _Outputs, got: _Outputs) -> GateResult:
    """Compare an implementation's outputs with the reference's."""
    mismatches = int((ref.spikes != got.spikes).sum())
    v_err = rel_error(ref.v, got.v, 1.0)
    g_err = None if ref.gx is None or got.gx is None else rel_error(ref.gx, got.gx, 1e-30)
    w_err = None if ref.gw is None or got.gw is None else rel_error(ref.gw, got.gw, 1e-30)
    problems = []
    if mismatches:
        problems.append(f"{mismatches} spikes differ")
    if v_err > V_RTOL:
        problems.append(f"membrane error {v_err:.2e} > {V_RTOL:g}")
    if g_err is not None and g_err > GRAD_RTOL:
        problems.append(f"grad x error {g_err:.2e} > {GRAD_RTOL:g}")
    if w_err is not None and w_err > W_RTOL:
        problems.append(f"grad w error {w_err:.2e} > {W_RTOL:g}")
    return GateResult(not problems, mismatches, v_err, g_err, w_err, "; ".join(problems))


def neuron_call(impl: NeuronImpl, spec: NeuronSpec, inp: NeuronInputs, mode: str) -> Callable[[], None]:
    """The zero-argument call that is timed for ``mode`` (inference forward, or forward + input gradients)."""
    if mode == "fwd":

        def forward() -> None:
            with torch.no_grad():
                impl(inp.x, spec, inp.w)

        return forward
    x, w = _leaves(inp)
    wrt = [x] if w is None else [x, w]

    def training_step() -> None:
        out = impl(x, spec, w)
        torch.autograd.grad([out.spikes], wrt, [inp.g_spikes])

    return training_step


def gate_impl(impl: NeuronImpl, spec: NeuronSpec, inp: NeuronInputs, mode: str) -> GateResult:
    """Check one implementation against the eager reference on ``inp`` (raises what the implementation raises)."""
    return _gate(_gate_call(get_impl("eager"), spec, inp, mode), _gate_call(impl, spec, inp, mode))


_Verdicts = dict[str, tuple[str, str, GateResult | None]]


def _check_impls(
    impls: Sequence[NeuronImpl], spec: NeuronSpec, inp: NeuronInputs, mode: str, device: str
) -> tuple[dict[str, NeuronImpl], _Verdicts]:
    """Gate every implementation: (passing ones, name -> (status, reason, gate) for all but the reference)."""
    reference = _gate_call(impls[0], spec, inp, mode)
    passing: dict[str, NeuronImpl] = {impls[0].name: impls[0]}
    failed: _Verdicts = {}
    for impl in impls[1:]:
        reason = impl.unavailable_reason(device)
        if reason is not None:
            failed[impl.name] = ("unavailable", reason, None)
            continue
        try:
            got = _gate_call(impl, spec, inp, mode)
        except Exception as err:  # noqa: BLE001 - any failure of a candidate is reported, not raised
            failed[impl.name] = ("unavailable", error_text(err), None)
            continue
        result = _gate(reference, got)
        failed[impl.name] = ("ok", "", result) if result.ok else ("FAILED", result.reason, result)
        if result.ok:
            passing[impl.name] = impl
    return passing, failed


def bench_neuron_case(
    kernel: str,
    steps: int,
    neurons: int,
    mode: str,
    *,
    device: str = "cpu",
    impls: Sequence[NeuronImpl] | None = None,
    rounds: int = 10,
    warmup: int = 1,
    seed: int = 0,
    stream: StreamArrays | None = None,
) -> list[NeuronRow]:
    """Gate and time every implementation on one neuron case.

    Args:
        kernel: ``lif``, ``if`` or ``plif`` (configuration from :data:`KERNEL_SPECS`).
        steps: T.
        neurons: N.
        mode: ``fwd`` or ``fwd+bwd``.
        device: ``cpu`` or ``cuda``.
        impls: implementations; the eager reference is always included first.
        rounds: timed calls per implementation.
        warmup: untimed calls per implementation before timing.
        seed: input seed.
        stream: STREAM arrays whose copy and triad join the round-robin (the case's bandwidth reference).

    Returns:
        One row per implementation, in the order given.
    """
    spec = KERNEL_SPECS[kernel]
    chosen = [i for i in (impls or impls_for(device)) if i.name != "eager"]
    all_impls = [next(i for i in impls_for(device) if i.name == "eager"), *chosen]
    inp = make_neuron_inputs(spec, steps, neurons, device, seed)
    passing, verdicts = _check_impls(all_impls, spec, inp, mode, device)
    calls = {name: neuron_call(impl, spec, inp, mode) for name, impl in passing.items()}
    if stream is not None:
        calls.update(zip(STREAM_CALLS, (stream.copy, stream.triad), strict=True))
    timings = time_interleaved(calls, rounds, warmup, device, before=None if stream is None else stream.evict)
    base = {"kernel": kernel, "spec": spec.label(), "steps": steps, "neurons": neurons, "mode": mode, "device": device}
    return _neuron_rows(base, all_impls, timings, verdicts, _stream_gbs(stream, timings))


def _stream_gbs(stream: StreamArrays | None, timings: dict[str, Timing]) -> float | None:
    """The better of the STREAM copy and triad medians of a case's rounds, in GB/s."""
    if stream is None:
        return None
    copy = stream.bytes_moved("copy") / timings.pop("stream_copy").median_s
    triad = stream.bytes_moved("triad") / timings.pop("stream_triad").median_s
    return max(copy, triad) / 1e9


def _neuron_rows(
    base: dict[str, Any],
    impls: Sequence[NeuronImpl],
    timings: dict[str, Timing],
    verdicts: _Verdicts,
    stream_gbs: float | None = None,
) -> list[NeuronRow]:
    """Rows with throughput, speed-ups and bandwidths from the timings (``base``: the case's fields)."""
    steps, neurons, mode, device = base["steps"], base["neurons"], base["mode"], base["device"]
    eager = timings["eager"].median_s
    sj = [t.median_s for name, t in timings.items() if name.startswith("sj_")]
    sj_best = min(sj) if sj else None
    moved = bytes_moved(mode, device, steps, neurons)
    peak = device_peak_gbs(device)
    rows = []
    for impl in impls:
        status, reason, gate = verdicts.get(impl.name, ("ok", "", None))
        if status != "ok":
            rows.append(
                NeuronRow(**base, impl=impl.name, status=status, reason=reason, verified=impl.verified, gate=gate)
            )
            continue
        t = timings[impl.name].median_s
        gbs = moved / t / 1e9
        rows.append(
            NeuronRow(
                **base, impl=impl.name, status="ok", verified=impl.verified, gate=gate, timing=timings[impl.name],
                throughput=steps * neurons / t, speedup_vs_eager=eager / t,
                speedup_vs_sj=None if sj_best is None else sj_best / t, bytes_moved=moved, bandwidth_gbs=gbs,
                peak_fraction=None if peak is None else gbs / peak, stream_gbs=stream_gbs,
                stream_fraction=None if stream_gbs is None else gbs / stream_gbs,
            )  # fmt: skip
        )
    return rows


# --------------------------------------------------------------------------- whole run


def environment(device: str) -> dict[str, Any]:
    """Where the numbers come from: hardware, threads, versions, load."""
    env: dict[str, Any] = {
        "device": device,
        "cpu": _cpu_name(),
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "spikingjelly": _version("spikingjelly"),
        "python": platform.python_version(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    if device == "cuda" and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name()
        env["gpu_peak_gbs"] = device_peak_gbs(device)
    return env


def _cpu_name() -> str:
    """CPU model name (``/proc/cpuinfo`` on Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _selected_impls(config: BenchConfig) -> list[NeuronImpl]:
    """Implementations for the config's device, filtered by ``config.impls``."""
    impls = list(impls_for(config.device))
    if config.impls is not None:
        impls = [i for i in impls if i.name in config.impls or i.name == "eager"]
    return impls


def run_bench(config: BenchConfig, progress: Progress | None = None) -> BenchReport:
    """Run every neuron case and synapse layer of ``config`` (with ``config.threads`` CPU threads, if set).

    Args:
        config: what to run.
        progress: called with a short description before each case.

    Returns:
        The report (rows in case order).
    """
    previous = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        return _run(config, progress)
    finally:
        torch.set_num_threads(previous)


def _open_stream(config: BenchConfig, env: dict[str, Any]) -> StreamArrays | None:
    """The STREAM arrays for the run (``None`` if not asked for, or unavailable: the reason goes to ``env``)."""
    if not config.stream:
        return None
    try:
        return StreamArrays(config.device, array_bytes=config.stream_bytes)
    except (SnnprofError, MemoryError) as err:
        env["stream_unavailable"] = first_line(err) or type(err).__name__
        return None


def _run(config: BenchConfig, progress: Progress | None) -> BenchReport:
    """:func:`run_bench` with the threads already set."""
    env = environment(config.device)
    stream = _open_stream(config, env)
    try:
        before = None if stream is None else stream.measure(config.rounds)
        neuron_rows = _run_neuron_cases(config, progress, stream)
        after = None if stream is None else stream.measure(config.rounds)
    finally:
        if stream is not None:
            stream.close()
    report = BenchReport(env, asdict(config), neuron_rows, stream=before, stream_after=after)
    if "synapse" in config.kernels:
        for layer in config.layers:
            report.synapse_rows.extend(
                bench_synapse_layer(
                    layer, config.rates, device=config.device, rounds=config.rounds, warmup=config.warmup,
                    seed=config.seed, progress=progress,
                )  # fmt: skip
            )
        report.crossovers.extend(crossovers(report.synapse_rows))
    report.environment["load_average_1min_after"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return report


def _run_neuron_cases(config: BenchConfig, progress: Progress | None, stream: StreamArrays | None) -> list[NeuronRow]:
    """Every (kernel, T, N, mode) case of ``config``, in order."""
    rows: list[NeuronRow] = []
    impls = _selected_impls(config)
    for kernel in (k for k in config.kernels if k in KERNEL_SPECS):
        for steps in config.steps:
            for neurons in config.neurons:
                for mode in config.modes:
                    if progress is not None:
                        progress(f"{kernel} T={steps} N={neurons} {mode}")
                    rows.extend(
                        bench_neuron_case(
                            kernel, steps, neurons, mode, device=config.device, impls=impls, rounds=config.rounds,
                            warmup=config.warmup, seed=config.seed, stream=stream,
                        )  # fmt: skip
                    )
    return rows
