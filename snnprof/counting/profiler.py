"""The profiler: forward hooks on every module plus interception of functional ops.

Example:
    >>> import torch, snnprof
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    >>> with snnprof.Profiler(net) as prof:
    ...     for _ in range(2):
    ...         _ = net(torch.rand(5, 4))
    >>> prof.result().totals.dense_macs
    120

Modules with a rule are counted from their hook; everything that runs *inside* them is ignored
(no double counting). Inside modules without a rule, functional ops (``F.linear``, ``matmul``,
``einsum``, SDPA, elementwise arithmetic ...) are intercepted with a ``TorchFunctionMode`` and
counted under ``"<module>/<op>"``. Nothing is written to the model: hooks are removed in
``finally`` and all counters live in the profiler.
"""

from __future__ import annotations

import logging
import warnings as pywarnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.hooks import RemovableHandle

from snnprof.counting import rules as _rules  # noqa: F401  (registers the built-in rules)
from snnprof.counting import slots
from snnprof.counting.accumulate import LayerAccumulator, Views, finalize
from snnprof.counting.costs import Cost
from snnprof.counting.folding import PoolMap
from snnprof.counting.kinds import KIND_CODES
from snnprof.counting.registry import ModuleRule, OpRule, RunRules, is_transparent
from snnprof.counting.results import ProfileResult, Totals, derived_warnings
from snnprof.counting.rules._util import first_tensor
from snnprof.counting.rules.elementwise import op_name
from snnprof.counting.samples import SampleCollector
from snnprof.counting.state import RunState
from snnprof.counting.vmap import is_batched, physical
from snnprof.errors import UncountedOpsError, UncountedOpsWarning
from snnprof.quiet import quiet_libraries

__all__ = ["Profiler", "profile"]

logger = logging.getLogger(__name__)

Inputs = torch.Tensor | tuple[Any, ...] | Mapping[str, Any]

#: Modules whose output holds their input's elements in the same order (pooled tensors pass through).
_ORDER_PRESERVING = (nn.Flatten, nn.Unflatten, nn.Identity, nn.modules.dropout._DropoutNd)


def _tensor_bytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if not value:
        return 0
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return sum(_tensor_bytes(v) for v in value)
    return 0


def _param_bytes(module: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


@dataclass
class _Frame:
    """One active module call on the profiler's stack."""

    module: nn.Module
    name: str
    rule: ModuleRule | None
    suppressed: bool
    opaque: bool = False  # a rule counts the whole module: nothing inside it is counted
    op_index: dict[str, int] = field(default_factory=dict)
    ops_seen: int = 0
    popped: bool = False

    def next_key(self, op: str) -> str:
        k = self.op_index.get(op, 0)
        self.op_index[op] = k + 1
        return f"{self.name or '(root)'}/{op}.{k}"


class _OpInterceptor(TorchFunctionMode):
    """Forwards every torch function call to the profiler after running it."""

    def __init__(self, owner: Profiler) -> None:
        super().__init__()
        self.owner = owner

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not self.owner._busy and self.owner._stack:
            self.owner._on_op(func, args, kwargs, out)
        return out


class Profiler:
    """Counts MACs, FLOPs, SOPs, spikes and memory traffic per layer over any number of calls.

    Args:
        model: the network (never modified).
        sop_convention: ``"exact"`` (border-aware event counting; the ``sops_rate`` estimate is
            always reported alongside).
        strict: raise :class:`~snnprof.errors.UncountedOpsError` from :meth:`result` when a module
            or op ran without a rule, or a module with parameters never ran.
        time_steps: time steps per sample. Inferred when omitted (multi-step ``[T, B, ...]`` neuron
            inputs, or the number of calls of an online single-step loop over one batch).
        batch_size: samples profiled (``per_sample`` divides by it). Inferred when omitted.
        overrides: ``{layer name: kind}`` forcing the input kind (spike/count/ternary/dense).
        count_weighting: ``"value"`` (a graded input n counts n SOPs) or ``"nonzero"`` (1 each).
        fold_pooling: count a synaptic layer fed by average or sum pooling of spikes (directly or
            through reshapes) on the pre-pool spikes: exact border-aware SOPs, no MACs
            (:mod:`snnprof.counting.folding`). Off by default; both views are reported either way.
        model_name: name stored in the result (default: the model's class name).
        sample_stats: also reduce MACs, SOPs and spikes per sample (on the device) and keep their
            mean and spread across samples (``result().sample_stats``). Call :meth:`end_batch` after
            each batch; how operand rows map to samples is documented in
            :mod:`snnprof.counting.samples`. Off by default (no per-sample work).
        sample_projections: ``{name: (w_macs, w_sops, w_spikes)}`` linear functionals of the
            per-sample counts whose min/max are tracked too (needs ``sample_stats``).
        rules: per-run rule overrides ``{nn.Module subclass | callable | op name: rule or None}``
            on top of the global registry, for this profiler only (see
            :class:`~snnprof.counting.registry.RunRules`); ``None`` counts the target as zero.
        warn: emit one :class:`~snnprof.errors.UncountedOpsWarning` per run from :meth:`result`
            when something ran without a rule or a module with parameters never ran.

    Library log noise (e.g. PyTorch's "Triton not available") is silenced while the profiler is
    entered (:func:`snnprof.quiet.quiet_libraries`).

    Example (BatchNorm folded into the preceding conv for this run only)::

        result = snnprof.profile(net, x, rules={nn.BatchNorm2d: None})

    Example (a data set, with the spread across samples)::

        with Profiler(net, time_steps=T, sample_stats=True) as prof:
            for x, _ in loader:
                functional.reset_net(net)
                net(x.transpose(0, 1))
                prof.end_batch(x.shape[0])
        stats = prof.result().sample_stats  # stats.spread("sops").mean, .std, .min, .max
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        sop_convention: str = "exact",
        strict: bool = False,
        time_steps: int | None = None,
        batch_size: int | None = None,
        overrides: Mapping[str, str] | None = None,
        count_weighting: str = "value",
        fold_pooling: bool = False,
        model_name: str | None = None,
        sample_stats: bool = False,
        sample_projections: Mapping[str, Any] | None = None,
        rules: Mapping[Any, Callable[..., Cost] | None] | None = None,
        warn: bool = True,
    ) -> None:
        if sop_convention != "exact":
            raise ValueError(f"sop_convention must be 'exact' (got {sop_convention!r}); sops_rate is always reported")
        if count_weighting not in ("value", "nonzero"):
            raise ValueError(f"count_weighting must be 'value' or 'nonzero', got {count_weighting!r}")
        bad = {k: v for k, v in (overrides or {}).items() if v not in KIND_CODES}
        if bad:
            raise ValueError(f"unknown input kinds in overrides: {bad}; expected one of {sorted(KIND_CODES)}")
        self.model = model
        self.strict = strict
        self.sop_convention = sop_convention
        self.count_weighting = count_weighting
        self.fold_pooling = bool(fold_pooling)
        self.time_steps = time_steps
        self.batch_size = batch_size
        self.overrides = {k: KIND_CODES[v] for k, v in (overrides or {}).items()}
        self.model_name = model_name or type(model).__name__
        if sample_projections and not sample_stats:
            raise ValueError("sample_projections needs sample_stats=True")
        self.sample_stats = sample_stats
        self.sample_projections = dict(sample_projections or {})
        self.rules = RunRules(rules)
        self.warn = warn
        self._quiet: AbstractContextManager[None] | None = None
        self._reset()

    def _reset(self) -> None:
        self._run = RunState(samples=SampleCollector(self.sample_projections) if self.sample_stats else None)
        self._stack: list[_Frame] = []
        self._busy = False
        self._handles: list[RemovableHandle] = []
        self._names: dict[int, str] = {}
        self._mode: _OpInterceptor | None = None
        self._fastpath: bool | None = None
        self._weight_bytes: dict[int, int] = {}
        self._pops = 0
        self._pools = PoolMap()
        self._entered = False
        self._warned = False

    # ----------------------------------------------------------------- context management
    def __enter__(self) -> Profiler:
        self._reset()
        try:
            self._attach()
        except BaseException:
            self._detach()
            raise
        slots.profiling(+1)
        self._entered = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._entered:
            slots.profiling(-1)
            self._entered = False
        self._detach()

    def _attach(self) -> None:
        self._quiet = quiet_libraries()
        self._quiet.__enter__()
        self._names = {}
        for name, module in self.model.named_modules(remove_duplicate=True):
            self._names[id(module)] = name
            self._handles.append(module.register_forward_pre_hook(self._pre_hook, with_kwargs=True))
            self._handles.append(
                module.register_forward_hook(self._post_hook, with_kwargs=True, always_call=True)
            )
        self._fastpath = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        self._mode = _OpInterceptor(self)
        self._mode.__enter__()

    def _detach(self) -> None:
        try:
            if self._mode is not None:
                self._resume(self._pops > 0)
                self._mode.__exit__(None, None, None)
        finally:
            self._mode = None
            for handle in self._handles:
                handle.remove()
            self._handles = []
            if self._fastpath is not None:
                torch.backends.mha.set_fastpath_enabled(self._fastpath)
                self._fastpath = None
            self._stack = []
            self._pools.clear()
            if self._quiet is not None:
                self._quiet.__exit__(None, None, None)
                self._quiet = None

    def _suspend(self) -> bool:
        """Take the op interceptor off the torch-function stack if it is on top (ops then skip Python dispatch).

        Done while a rule runs (its tensor ops are the profiler's, not the model's) and while a module
        with its own rule runs (ops inside it are never counted).
        """
        mode = self._mode
        if mode is None or not torch._C._len_torch_function_stack():
            return False
        if torch.overrides._get_current_function_mode() is not mode:
            return False
        torch._C._pop_torch_function_stack()
        self._pops += 1
        return True

    def _resume(self, popped: bool) -> None:
        """Put the interceptor back after :meth:`_suspend` returned ``popped``."""
        if popped and self._mode is not None:
            torch._C._push_on_torch_function_stack(self._mode)
            self._pops -= 1

    # ----------------------------------------------------------------- hooks
    def _pre_hook(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        parent = self._stack[-1] if self._stack else None
        suppressed = parent is not None and (parent.suppressed or parent.opaque)
        name = self._names.get(id(module), type(module).__name__)
        rule = None if suppressed else self.rules.module(type(module))
        if module is self.model:  # before the push: its tensor queries must not count as ops of the root
            self._on_root(args, kwargs)
        self._run.called.add(id(module))
        frame = _Frame(module, name, rule, suppressed, opaque=rule is not None and not is_transparent(rule))
        self._stack.append(frame)
        if frame.opaque:
            frame.popped = self._suspend()

    def _on_root(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._run.root_calls += 1
        first = first_tensor(args) if args else first_tensor(kwargs)
        if first is not None and first.dim() > 0:
            self._run.root_rows += first.shape[0]
            if self._run.samples is not None:
                self._run.samples.hint_batch(first.shape[0], exact=False)
        if not self._run.input_shapes:
            values = list(args) + list(kwargs.values())
            self._run.input_shapes = [list(v.shape) for v in values if isinstance(v, torch.Tensor)]

    def _post_hook(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        if not self._stack or self._stack[-1].module is not module:
            return
        frame = self._stack.pop()
        try:
            if frame.suppressed:
                return
            if frame.rule is None:
                self._check_leaf(frame, output)
                return
            if self._pools and isinstance(module, _ORDER_PRESERVING) and not (
                    module.training and isinstance(module, nn.modules.dropout._DropoutNd)):
                self._pools.follow("view", (first_tensor(args) if args else first_tensor(kwargs),), output)
            self._run.ruled_called.add(frame.name)
            if is_batched(first_tensor(output)):  # inside torch.vmap: count the physical tensors
                args, kwargs, output = physical(args), physical(kwargs), physical(output)
            owner = module if frame.opaque else None  # the ops inside a transparent rule's module carry its weights
            cost = self._run_rule(frame.rule, (module, args, kwargs, output), frame.name, type(module).__name__,
                                  owner)
            if cost is not None and cost.pooling is not None:
                self._pools.record(first_tensor(output), cost.pooling)
            if cost is not None and frame.opaque:
                acc = self._acc(frame.name, type(module).__name__, module)
                weights = self._weight_bytes.get(id(module))
                if weights is None:
                    weights = self._weight_bytes[id(module)] = _param_bytes(module)
                acc.add_traffic(weights, _tensor_bytes(args) + _tensor_bytes(kwargs), _tensor_bytes(output))
        finally:
            self._resume(frame.popped)
            if module is self.model:  # the model's call is over: no pooled tensor is consumed after it
                self._pools.clear()

    def _check_leaf(self, frame: _Frame, output: Any) -> None:
        """A leaf module without a rule in which no op was seen did work we cannot count."""
        leaf = next(iter(frame.module.children()), None) is None
        if leaf and frame.ops_seen == 0 and first_tensor(output) is not None:
            self._run.unsupported[f"{frame.name} ({type(frame.module).__name__})"] = None

    def _run_rule(self, rule: ModuleRule | OpRule, call: tuple[Any, ...], name: str, type_name: str,
                  module: nn.Module | None) -> Cost | None:
        """Run ``rule(*call)`` (never raising) and account its cost under layer ``name``; ``None`` if it failed."""
        self._busy = True
        popped = self._suspend()
        grad = torch.is_grad_enabled()
        try:
            if grad:  # rules only read tensors (cheaper than entering no_grad when it is already off)
                torch.set_grad_enabled(False)
            cost = rule(*call)
            acc = self._acc(name, type_name, module)
            acc.add_cost(cost, self._override(name), self.count_weighting == "value", self.time_steps,
                         self._views(cost, name))
            for warning in cost.warnings:
                self._run.warnings[warning] = None
            return cost
        except Exception as err:  # noqa: BLE001  (a rule must never break the user's forward)
            self._run.unsupported[f"{name} ({type_name})"] = None
            self._run.warnings[f"rule for {type_name} failed on {name}: {err}"] = None
            logger.debug("rule failure", exc_info=True)
            return None
        finally:
            if grad:
                torch.set_grad_enabled(True)
            self._resume(popped)
            self._busy = False

    def _views(self, cost: Cost, name: str) -> Views | None:
        """The sample collector, pooled tensors and validity mask that apply to a call (``None``: none does)."""
        mask = slots.current_mask() if cost.neuron is not None else None
        if mask is not None:
            act = cost.neuron
            assert act is not None
            if not slots.mask_fits(mask, act.spikes, act.time_dim == 0 and act.spikes.dim() >= 2):
                self._run.warnings[f"valid_slots mask of shape {list(mask.shape)} does not cover the leading dims "
                                   f"of {name}'s output {list(act.spikes.shape)}: its updates count as valid"] = None
                mask = None
        pools = self._pools if self._pools and cost.synapses else None
        if mask is None and pools is None and self._run.samples is None:
            return None
        return Views(self._run.samples, pools, self.fold_pooling, mask)

    def _override(self, name: str) -> int | None:
        if name in self.overrides:
            return self.overrides[name]
        base = name.split("/", 1)[0]
        return self.overrides.get(base) if "/" in name else None

    def _acc(self, name: str, type_name: str, module: nn.Module | None) -> LayerAccumulator:
        acc = self._run.accs.get(name)
        if acc is None:
            params = sum(p.numel() for p in module.parameters()) if module is not None else 0
            acc = self._run.accs[name] = LayerAccumulator(name=name, type=type_name, params=params)
        return acc

    # ----------------------------------------------------------------- functional ops
    def _on_op(self, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        frame = self._stack[-1]
        if frame.suppressed or frame.opaque:
            return
        frame.ops_seen += 1
        if is_batched(first_tensor(out)):  # inside torch.vmap: count the physical tensors
            args, kwargs, out = physical(args), physical(kwargs), physical(out)
        found = self.rules.op(func)
        if found is not None:
            rule, short = found
            key = frame.next_key(short)
            if self._run_rule(rule, (args, kwargs, out), key, short, None) is not None:
                self._op_traffic(key, args, kwargs, out)
            return
        name = op_name(func)
        named = self.rules.name(name)
        if named is None:
            if isinstance(out, torch.Tensor):
                self._run.unsupported[f"{frame.name or '(root)'}/{name} (op)"] = None
            return
        if self._pools:
            self._pools.follow(name, args, out)
        self._on_named_op(named, name, frame.name or "(root)", (args, kwargs, out))

    def _on_named_op(self, rule: OpRule, name: str, where: str, call: tuple[tuple[Any, ...], dict[str, Any], Any]
                     ) -> None:
        """Add a name rule's ``flops`` for ``call`` to the layer ``"<where>/<name>"`` (never raising)."""
        try:
            cost = rule(*call)
        except Exception as err:  # noqa: BLE001  (a rule must never break the user's forward)
            self._run.unsupported[f"{where}/{name} (op)"] = None
            self._run.warnings[f"rule for {name} failed on {where}: {err}"] = None
            return
        for warning in cost.warnings:
            self._run.warnings[warning] = None
        if cost.pooling is not None:
            self._pools.record(call[2], cost.pooling)
        if cost.flops:
            acc = self._acc(f"{where}/{name}", name, None)
            acc.calls += 1
            acc.flops += cost.flops

    def _op_traffic(self, key: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        acc = self._run.accs[key]
        seen = self._run.func_params.setdefault(key, set())
        params = [a for a in (*args, *kwargs.values()) if isinstance(a, nn.Parameter)]
        acc.params += sum(p.numel() for p in params if id(p) not in seen)
        seen.update(id(p) for p in params)
        weight = sum(p.numel() * p.element_size() for p in params)
        acts = _tensor_bytes(args) + _tensor_bytes(kwargs) - weight
        acc.add_traffic(weight, acts, _tensor_bytes(out))

    # ----------------------------------------------------------------- batches and state
    def end_batch(self, batch_size: int | None = None) -> None:
        """Close a batch: fold its per-sample counts into the running moments (device ops, no sync).

        A no-op without ``sample_stats``. :meth:`result` closes a pending batch itself.

        Args:
            batch_size: samples in the batch (inferred from the neurons' batch dim, else from dim 0
                of the model's input, when omitted).
        """
        if self._run.samples is not None:
            with self.paused():  # bookkeeping, not the model's ops: no interception
                self._run.samples.end_batch(batch_size)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Run code between model calls without the op interceptor (e.g. reading the next batch).

        Torch functions called inside run at native speed. Module hooks stay attached: do not call
        the model inside (functional ops of modules without a rule would go uncounted).
        """
        popped = self._suspend()
        try:
            yield
        finally:
            self._resume(popped)

    def state_dict(self) -> dict[str, Any]:
        """The aggregate so far as plain data (CPU tensors, ints, strings, lists, dicts).

        Loadable with ``torch.load(..., weights_only=True)``; restore it with :meth:`load_state_dict`
        inside a new ``with Profiler(...)`` block to continue counting (e.g. resuming a data set).
        Modules and parameters are referred to by name.

        Raises:
            RuntimeError: a batch of per-sample counts is unfinished (call :meth:`end_batch`).
        """
        return self._run.state_dict(self.model)

    def load_state_dict(self, state: Mapping[str, Any], device: torch.device | str | None = None) -> None:
        """Continue from :meth:`state_dict` output; call inside the ``with`` block (entering resets).

        Args:
            state: a saved state of a profiler of the same model and settings.
            device: where the device-side sums live (default: CPU; use the model's device).

        Raises:
            ValueError: the state is of another format, or its sample projections differ.
        """
        self._run.load_state_dict(state, self.model, device)

    # ----------------------------------------------------------------- result
    def _uncalled(self) -> list[str]:
        out = []
        for name, module in self.model.named_modules():
            if id(module) in self._run.called or next(iter(module.parameters(recurse=False)), None) is None:
                continue
            if any(r == "" or name.startswith(r + ".") for r in self._run.ruled_called):
                continue
            out.append(name)
        return out

    def _infer_steps(self, accs: list[LayerAccumulator]) -> int:
        if self.time_steps is not None:
            return self.time_steps
        neurons = [a for a in accs if a.neuron_updates]
        multi = [a.max_steps for a in neurons if a.multi_step]
        if multi:
            return max(multi)
        if neurons and self._run.root_calls:
            calls = max(a.single_calls for a in neurons)
            ratio = calls // self._run.root_calls
            return self._run.root_calls if ratio <= 1 else ratio
        return 1

    def _infer_batch(self, accs: list[LayerAccumulator], steps: int) -> int:
        if self.batch_size is not None:
            return self.batch_size
        for acc in accs:
            if acc.neuron_updates:
                rows = acc.batch_rows if acc.multi_step else acc.batch_rows // max(steps, 1)
                return max(rows, 1)
        return max(self._run.root_rows, 1)

    def result(self) -> ProfileResult:
        """Finish counting (one host sync) and return the :class:`ProfileResult`.

        Raises:
            UncountedOpsError: ``strict=True`` and something ran without a rule.
        """
        if self._run.samples is not None and self._run.samples.pending:
            self._run.samples.end_batch()
        accs = list(self._run.accs.values())
        steps = self._infer_steps(accs)
        layers = finalize(accs, steps if self.time_steps is not None or not any(a.multi_step for a in accs) else None,
                          self.fold_pooling)
        uncalled = self._uncalled()
        unsupported = list(self._run.unsupported)
        if self.strict and (unsupported or uncalled):
            raise UncountedOpsError(unsupported, uncalled)
        if self.warn and not self._warned and (unsupported or uncalled):
            self._warned = True
            pywarnings.warn(UncountedOpsWarning(unsupported, uncalled), stacklevel=2)
        stats = self._run.samples.result() if self._run.samples is not None else None
        warnings = list(self._run.warnings) + derived_warnings(unsupported, uncalled, stats.shared if stats else [])
        params = sum(p.numel() for p in self.model.parameters())
        return ProfileResult(
            model=self.model_name, layers=layers, totals=Totals.from_layers(layers, params),
            batch_size=self._infer_batch(accs, steps), time_steps=steps, input_shapes=self._run.input_shapes,
            sop_convention=self.sop_convention, count_weighting=self.count_weighting,
            fold_pooling=self.fold_pooling, unsupported=unsupported, uncalled=uncalled, warnings=warnings,
            sample_stats=stats,
        )


def _call(model: nn.Module, inputs: Inputs) -> Any:
    if isinstance(inputs, Mapping):
        return model(**inputs)
    if isinstance(inputs, tuple):
        return model(*inputs)
    return model(inputs)


def profile(model: nn.Module, inputs: Inputs, **kwargs: Any) -> ProfileResult:
    """Profile one call ``model(inputs)``; keyword arguments as for :class:`Profiler`.

    Args:
        model: the network.
        inputs: a tensor, a tuple of positional tensors, or a dict of keyword tensors.
        **kwargs: ``sop_convention``, ``strict``, ``time_steps``, ``batch_size``, ``overrides``,
            ``count_weighting``, ``fold_pooling``, ``model_name``, ``sample_stats``, ``sample_projections``,
            ``rules``, ``warn``.
    """
    with Profiler(model, **kwargs) as prof:
        _call(model, inputs)
    with pywarnings.catch_warnings(record=True) as caught:
        pywarnings.simplefilter("always", UncountedOpsWarning)
        result = prof.result()
    for item in caught:  # re-emitted so that the warning points at the caller of profile()
        pywarnings.warn(item.message, stacklevel=2)
    return result
