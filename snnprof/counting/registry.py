"""The rule registry: one small pure function per module type or functional op.

Module rules are looked up along the class hierarchy (so SpikingJelly's ``layer.Conv2d`` matches
the ``nn.Conv2d`` rule); functional rules are keyed by the callable (``torch.matmul``,
``F.linear`` ...). Registering the same target twice raises.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from snnprof.counting.costs import Cost

__all__ = [
    "ModuleRule",
    "OpRule",
    "RuleInfo",
    "find_module_rule",
    "find_op_rule",
    "list_rules",
    "register_rule",
]

#: ``(module, args, kwargs, output) -> Cost``
ModuleRule = Callable[[nn.Module, tuple[Any, ...], dict[str, Any], Any], Cost]
#: ``(args, kwargs, output) -> Cost``
OpRule = Callable[[tuple[Any, ...], dict[str, Any], Any], Cost]

_MODULE_RULES: dict[type, ModuleRule] = {}
_RESOLVED: dict[type, ModuleRule | None] = {}  # MRO lookups, cleared whenever a rule is registered
_OP_RULES: dict[Any, OpRule] = {}
_OP_NAMES: dict[Any, str] = {}


@dataclass(frozen=True)
class RuleInfo:
    """One registered rule, as :func:`list_rules` reports it."""

    target: str
    kind: str
    rule: str
    doc: str


def _target_name(target: Any) -> str:
    if isinstance(target, type):
        return f"{target.__module__}.{target.__qualname__}"
    mod = getattr(target, "__module__", None) or "torch"
    return f"{mod}.{getattr(target, '__name__', repr(target))}"


def register_rule(*targets: Any, name: str | None = None) -> Callable[[Callable[..., Cost]], Callable[..., Cost]]:
    """Register a counting rule for module classes or functional ops.

    Args:
        *targets: ``nn.Module`` subclasses (module rules) or callables such as ``torch.matmul``
            (functional rules). Mixing both kinds in one call is an error.
        name: short op name used in layer names for functional rules (default: ``__name__``).

    Raises:
        ValueError: a target is already registered, or no target was given.
    """
    if not targets:
        raise ValueError("register_rule needs at least one target")

    def deco(fn: Callable[..., Cost]) -> Callable[..., Cost]:
        for target in targets:
            is_module = isinstance(target, type) and issubclass(target, nn.Module)
            table: dict[Any, Any] = _MODULE_RULES if is_module else _OP_RULES
            if target in table:
                raise ValueError(f"a rule for {_target_name(target)} is already registered")
            table[target] = fn
            _RESOLVED.clear()
            if not is_module:
                _OP_NAMES[target] = name or getattr(target, "__name__", "op").strip("_")
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


def list_rules() -> list[RuleInfo]:
    """Every registered rule (module rules first), sorted by target name.

    The built-in rules are registered when :mod:`snnprof.counting` is imported (which importing
    this module does first).
    """

    def info(target: Any, fn: Callable[..., Cost], kind: str) -> RuleInfo:
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        return RuleInfo(_target_name(target), kind, fn.__name__, doc)

    mods = sorted((info(t, f, "module") for t, f in _MODULE_RULES.items()), key=lambda r: r.target)
    ops = sorted((info(t, f, "op") for t, f in _OP_RULES.items()), key=lambda r: r.target)
    return mods + ops


def module_rule_types() -> list[type]:
    """Module classes that have a rule of their own (for tests that parametrize over the registry)."""
    return list(_MODULE_RULES)

