"""The rule registry: one small pure function per module type, functional op or op name.

Three kinds of target, one decorator (:func:`register_rule`):

* **module rules** (``nn.Module`` subclasses) are looked up along the class hierarchy, so
  SpikingJelly's ``layer.Conv2d`` matches the ``nn.Conv2d`` rule;
* **op rules** are keyed by the callable (``torch.matmul``, ``F.linear`` ...) and count a
  functional call inside a module without a rule as a layer of its own (``"<module>/<op>.<k>"``);
* **name rules** are keyed by a normalised op name (``"add"`` matches ``torch.add``,
  ``Tensor.add``, ``Tensor.add_`` and ``Tensor.__iadd__``) and add their ``flops`` to the layer
  ``"<module>/<name>"``. They are built by handler factories (fvcore's style: one factory per
  family, e.g. ``elementwise(4)``) and are the engine's elementwise table.

Every rule may carry a :class:`Convention` (what it counts, in words), from which the README's and
the reports' convention tables are generated (:mod:`snnprof.counting.conventions`). A module rule
registered ``transparent`` only observes its module (e.g. the spikes of a neuron): the ops inside
the module are still counted one by one. Registering the same target twice raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from snnprof.counting.costs import Cost

__all__ = [
    "SECTIONS",
    "Convention",
    "ModuleRule",
    "OpRule",
    "RuleInfo",
    "RunRules",
    "find_module_rule",
    "find_name_rule",
    "find_op_rule",
    "is_transparent",
    "iter_rules",
    "list_rules",
    "module_rule_types",
    "name_rule_names",
    "register_rule",
    "rule_convention",
]

#: ``(module, args, kwargs, output) -> Cost``
ModuleRule = Callable[[nn.Module, tuple[Any, ...], dict[str, Any], Any], Cost]
#: ``(args, kwargs, output) -> Cost``
OpRule = Callable[[tuple[Any, ...], dict[str, Any], Any], Cost]

#: Sections of the conventions table, in the order they are listed.
SECTIONS: tuple[str, ...] = (
    "synaptic", "attention", "recurrent", "neurons", "normalisation", "pooling", "resampling", "activations",
    "losses", "elementwise", "zero",
)

_MODULE_RULES: dict[type, ModuleRule] = {}
_RESOLVED: dict[type, ModuleRule | None] = {}  # MRO lookups, cleared whenever a rule is registered
_OP_RULES: dict[Any, OpRule] = {}
_OP_NAMES: dict[Any, str] = {}
_NAME_RULES: dict[str, OpRule] = {}
_CONVENTIONS: dict[Callable[..., Cost], Convention] = {}
_TRANSPARENT: set[Callable[..., Cost]] = set()


@dataclass(frozen=True)
class Convention:
    """What a rule counts, in words (one row of the generated conventions table).

    Attributes:
        section: one of :data:`SECTIONS` (the table lists rows section by section).
        ops: what the rule counts beyond ``2 x dense_macs``, e.g. ``"4 per output element"``
            (inline Markdown: `` `code` `` and ``**bold**``).
    """

    section: str
    ops: str

    def __post_init__(self) -> None:
        if self.section not in SECTIONS:
            raise ValueError(f"unknown convention section {self.section!r}; expected one of {SECTIONS}")


@dataclass(frozen=True)
class RuleInfo:
    """One registered rule, as :func:`list_rules` reports it.

    Attributes:
        target: the module class, callable (qualified name) or op name the rule is registered for.
        kind: ``"module"``, ``"op"`` or ``"name"``.
        rule: the rule function's name.
        doc: the first line of the rule's docstring.
        convention: what the rule counts (:class:`Convention`), or ``None``.
    """

    target: str
    kind: str
    rule: str
    doc: str
    convention: Convention | None = None


def _target_name(target: Any) -> str:
    if isinstance(target, str):
        return target
    if isinstance(target, type):
        return f"{target.__module__}.{target.__qualname__}"
    mod = getattr(target, "__module__", None) or "torch"
    return f"{mod}.{getattr(target, '__name__', repr(target))}"


def _table(target: Any) -> tuple[dict[Any, Any], bool]:
    """The table a target belongs to, and whether it is a module class."""
    if isinstance(target, str):
        return _NAME_RULES, False
    is_module = isinstance(target, type) and issubclass(target, nn.Module)
    return (_MODULE_RULES if is_module else _OP_RULES), is_module


def register_rule(
    *targets: Any, name: str | None = None, convention: Convention | None = None, transparent: bool = False
) -> Callable[[Callable[..., Cost]], Callable[..., Cost]]:
    """Register a counting rule for module classes, functional ops or op names.

    Args:
        *targets: ``nn.Module`` subclasses (module rules), callables such as ``torch.matmul`` (op
            rules) or normalised op names such as ``"add"`` (name rules).
        name: short op name used in layer names for op rules (default: ``__name__``).
        convention: what the rule counts, for the generated conventions tables.
        transparent: module rules only: the rule observes its module (its cost is added) and the
            ops inside the module are still counted one by one.

    Raises:
        ValueError: a target is already registered, no target was given, or ``transparent`` was
            asked for a target that is not a module class.
    """
    if not targets:
        raise ValueError("register_rule needs at least one target")

    def deco(fn: Callable[..., Cost]) -> Callable[..., Cost]:
        for target in targets:
            table, is_module = _table(target)
            if transparent and not is_module:
                raise ValueError(f"only module rules can be transparent, not {_target_name(target)}")
            if target in table:
                raise ValueError(f"a rule for {_target_name(target)} is already registered")
            table[target] = fn
            _RESOLVED.clear()
            if table is _OP_RULES:
                _OP_NAMES[target] = name or getattr(target, "__name__", "op").strip("_")
        if convention is not None:
            _CONVENTIONS[fn] = convention
        if transparent:
            _TRANSPARENT.add(fn)
        return fn

    return deco


def find_module_rule(module_type: type) -> ModuleRule | None:
    """The rule of the nearest class in ``module_type``'s MRO, or ``None`` (memoised per class)."""
    try:
        return _RESOLVED[module_type]
    except KeyError:
        pass
    found = next((_MODULE_RULES[k] for k in module_type.__mro__ if k in _MODULE_RULES), None)
    _RESOLVED[module_type] = found
    return found


def find_op_rule(func: Any) -> tuple[OpRule, str] | None:
    """The functional rule of ``func`` and its short name, or ``None``."""
    try:
        rule = _OP_RULES.get(func)
    except TypeError:  # unhashable callables
        return None
    return (rule, _OP_NAMES[func]) if rule is not None else None


def find_name_rule(op_name: str) -> OpRule | None:
    """The name rule of a normalised op name (``"add"``, ``"avg_pool2d"`` ...), or ``None``."""
    return _NAME_RULES.get(op_name)


def is_transparent(rule: Callable[..., Cost]) -> bool:
    """Whether a module rule only observes its module (the ops inside are counted too)."""
    return rule in _TRANSPARENT


def rule_convention(rule: Callable[..., Cost]) -> Convention | None:
    """The :class:`Convention` a rule was registered with, or ``None``."""
    return _CONVENTIONS.get(rule)


def _info(target: Any, fn: Callable[..., Cost], kind: str) -> RuleInfo:
    doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
    return RuleInfo(_target_name(target), kind, fn.__name__, doc, _CONVENTIONS.get(fn))


def list_rules() -> list[RuleInfo]:
    """Every registered rule: module rules, op rules, then name rules, each sorted by target name.

    The built-in rules are registered when :mod:`snnprof.counting` is imported (which importing
    this module does first).
    """
    out: list[RuleInfo] = []
    for kind, table in (("module", _MODULE_RULES), ("op", _OP_RULES), ("name", _NAME_RULES)):
        out += sorted((_info(t, f, kind) for t, f in table.items()), key=lambda r: r.target)
    return out


def iter_rules() -> Iterator[tuple[Any, Callable[..., Cost], str]]:
    """``(target, rule, kind)`` of every registered rule in registration order: module, op, then name rules."""
    for kind, table in (("module", _MODULE_RULES), ("op", _OP_RULES), ("name", _NAME_RULES)):
        for target, rule in table.items():
            yield target, rule, kind


def module_rule_types() -> list[type]:
    """Module classes that have a rule of their own (for tests that parametrize over the registry)."""
    return list(_MODULE_RULES)


def name_rule_names() -> list[str]:
    """Op names that have a name rule (for tests that parametrize over the registry)."""
    return list(_NAME_RULES)


def _zero_rule(*_call: Any) -> Cost:
    """A rule that counts nothing (a per-run override given as ``None``)."""
    return Cost()


class RunRules:
    """The registry as one profiler run sees it: the global rules with per-run overrides on top.

    Like torch's ``FlopCounterMode(custom_mapping=...)``, the overrides apply to one run only and
    leave the global registry untouched. Keys are ``nn.Module`` subclasses (module rules, looked up
    along the class hierarchy: an override for ``nn.Conv2d`` also applies to SpikingJelly's
    ``layer.Conv2d`` unless a subclass has a rule of its own), callables such as ``torch.matmul``
    (op rules) or op names such as ``"add"`` (name rules). A value is a rule of the same signature
    as a registered one, or ``None``: counted as zero (and nothing inside a module counted).

    Args:
        overrides: ``{target: rule or None}``.

    Raises:
        TypeError: a key that is not a module class, callable or string, or a value that is
            neither callable nor ``None``.
    """

    def __init__(self, overrides: Mapping[Any, Callable[..., Cost] | None] | None = None) -> None:
        self._modules: dict[type, ModuleRule] = {}
        self._ops: dict[Any, OpRule] = {}
        self._names: dict[str, OpRule] = {}
        for target, rule in (overrides or {}).items():
            if rule is not None and not callable(rule):
                raise TypeError(f"rules[{_target_name(target)}]: expected a rule function or None, "
                                f"got {type(rule).__name__}")
            fn = rule if rule is not None else _zero_rule
            if isinstance(target, str):
                self._names[target] = fn
            elif isinstance(target, type) and issubclass(target, nn.Module):
                self._modules[target] = fn
            elif callable(target):
                self._ops[target] = fn
            else:
                raise TypeError(f"rules: expected nn.Module subclasses, callables or op names as keys, "
                                f"got {target!r}")
        self._resolved: dict[type, ModuleRule | None] = {}

    def __bool__(self) -> bool:
        return bool(self._modules or self._ops or self._names)

    def module(self, module_type: type) -> ModuleRule | None:
        """The rule of the nearest class in the MRO, overrides first at each class (memoised)."""
        if not self._modules:
            return find_module_rule(module_type)
        try:
            return self._resolved[module_type]
        except KeyError:
            pass
        found = None
        for klass in module_type.__mro__:
            found = self._modules.get(klass) or _MODULE_RULES.get(klass)
            if found is not None:
                break
        self._resolved[module_type] = found
        return found

    def op(self, func: Any) -> tuple[OpRule, str] | None:
        """The op rule of ``func`` and its short name (an override first), or ``None``."""
        try:
            rule = self._ops.get(func)
        except TypeError:  # unhashable callables
            return None
        if rule is None:
            return find_op_rule(func)
        return rule, _OP_NAMES.get(func) or getattr(func, "__name__", "op").strip("_")

    def name(self, op_name: str) -> OpRule | None:
        """The name rule of a normalised op name (an override first), or ``None``."""
        return self._names.get(op_name) or find_name_rule(op_name)
