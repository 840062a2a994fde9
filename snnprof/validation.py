"""One validation style for every structured input file: pydantic models, one error shape.

Configs (``[model]``, ``[input]``, ``[count]``, ``[energy]``), hardware profiles and the training
loops' ``[train]`` tables are each described by a :class:`StrictModel` subclass. :func:`validate`
runs pydantic and turns its first error into one snnprof error naming the file, the dotted key and
what was expected, e.g.::

    configs/x.toml: input.batch_size: expected a positive integer, got 0

Strict by default: no string-to-number coercion, ``bool`` never passes as a number, integers are
accepted where a float is expected, unknown keys are errors, floats must be finite.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from snnprof.errors import ConfigError, SnnprofError

__all__ = [
    "KeyProblem",
    "NonNegativeFloat",
    "PositiveFloat",
    "PositiveInt",
    "StrictModel",
    "describe",
    "first_error",
    "validate",
]

M = TypeVar("M", bound=BaseModel)

#: An integer > 0 (``bool`` rejected).
PositiveInt = Annotated[int, Field(gt=0)]
#: A finite number > 0.
PositiveFloat = Annotated[float, Field(gt=0)]
#: A finite number >= 0.
NonNegativeFloat = Annotated[float, Field(ge=0)]

_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean (true/false)",
    dict: "a table",
    list: "an array",
    tuple: "an array",
}
_MAX_SHOWN = 60


class KeyProblem(Exception):  # noqa: N818  (a signal to validate(), not an error users see)
    """Raised by a model validator to report a problem at a key other than its own.

    :func:`validate` turns it into the caller's error class with the file path and the table prefix.

    Attributes:
        key: dotted key relative to the validated table (``"crossbar"``, ``"input.path"``).
        expected: the message, starting with ``expected``.
    """

    def __init__(self, key: str, expected: str) -> None:
        super().__init__(f"{key}: {expected}")
        self.key, self.expected = key, expected


class StrictModel(BaseModel):
    """Base of every validated table: unknown keys forbidden, no coercion, finite floats, frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


def describe(value: Any) -> str:
    """TOML-ish name of a value for messages: ``an integer (3)``, ``a table``."""
    name = _TYPE_NAMES.get(type(value), type(value).__name__)
    if isinstance(value, dict | list | tuple):
        return name
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    shown = repr(value)
    if len(shown) > _MAX_SHOWN:
        shown = shown[: _MAX_SHOWN - 3] + "..."
    return f"{name} ({shown})"


def _fmt(ctx: Mapping[str, Any], key: str) -> str:
    value = ctx.get(key)
    return f"{value:g}" if isinstance(value, float) else str(value)


#: pydantic error type -> what was expected (``{name}`` filled from the error's context).
_EXPECTED: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "int_type": lambda c: "an integer",
    "int_parsing": lambda c: "an integer",
    "int_from_float": lambda c: "an integer",
    "float_type": lambda c: "a number",
    "float_parsing": lambda c: "a number",
    "finite_number": lambda c: "a finite number",
    "string_type": lambda c: "a string",
    "bool_type": lambda c: "a boolean (true/false)",
    "dict_type": lambda c: "a table",
    "model_type": lambda c: "a table",
    "model_attributes_type": lambda c: "a table",
    "list_type": lambda c: "an array",
    "tuple_type": lambda c: "an array",
    "greater_than": lambda c: f"a number > {_fmt(c, 'gt')}",
    "greater_than_equal": lambda c: f"a number >= {_fmt(c, 'ge')}",
    "less_than": lambda c: f"a number < {_fmt(c, 'lt')}",
    "less_than_equal": lambda c: f"a number <= {_fmt(c, 'le')}",
    "string_too_short": lambda c: "a non-empty string",
    "string_too_long": lambda c: f"a string of at most {c.get('max_length')} characters",
    "string_pattern_mismatch": lambda c: f"a string matching {c.get('pattern')}",
    "too_short": lambda c: f"an array of at least {c.get('min_length')} item(s)",
    "too_long": lambda c: f"an array of at most {c.get('max_length')} item(s)",
    "literal_error": lambda c: f"one of {c.get('expected')}",
    "enum": lambda c: f"one of {c.get('expected')}",
}


def _expected(error: Mapping[str, Any], integer_field: bool = True) -> str:
    """The ``expected ...`` phrase of one pydantic error (without the word ``expected``).

    Args:
        error: one pydantic error.
        integer_field: the field holds integers (``> 0`` reads "a positive integer"; else "a positive number").
    """
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "greater_than" and ctx.get("gt") == 0:
        return "a positive integer" if isinstance(error.get("input"), int) and integer_field else "a positive number"
    if kind == "greater_than_equal" and ctx.get("ge") == 0:
        return "a non-negative number"
    if kind in ("value_error", "assertion_error"):
        raw = ctx.get("error")
        return str(raw) if raw is not None else str(error["msg"])
    phrase = _EXPECTED.get(kind)
    return phrase(ctx) if phrase is not None else str(error["msg"]).lower()


def _sub_model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (``Model``, ``Model | None``, ``dict[str, Model]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _sub_model(arg)
        if found is not None:
            return found
    return None


def _holder(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The (nested) model that holds ``loc``'s last key."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            return None
        current = _sub_model(current.model_fields[part].annotation)
    return current


def _allowed_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """Field names of the (nested) model that holds ``loc``'s last key (aliases as written)."""
    current = _holder(model, loc)
    if current is None:
        return []
    return [info.alias or name for name, info in current.model_fields.items()]


def _is_float_field(model: type[BaseModel], loc: Sequence[str | int]) -> bool:
    """Whether the field at ``loc`` is annotated ``float`` (so ``0`` given there is a number, not an integer)."""
    current = _holder(model, loc)
    last = loc[-1] if loc else None
    if current is None or not isinstance(last, str) or last not in current.model_fields:
        return False
    annotation = current.model_fields[last].annotation
    return annotation is float or float in get_args(annotation) or any(
        float in get_args(arg) for arg in get_args(annotation))


def _is_table(model: type[BaseModel], loc: Sequence[str | int]) -> bool:
    """Whether the field at ``loc`` is itself a table (a nested model)."""
    current = _holder(model, loc)
    if current is None or not loc or not isinstance(loc[-1], str) or loc[-1] not in current.model_fields:
        return False
    return _sub_model(current.model_fields[loc[-1]].annotation) is not None


def _dotted(prefix: str, loc: Sequence[str | int]) -> str:
    """``prefix.a.b[2]`` from a pydantic location."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else str(part)
    return out


def first_error(model: type[BaseModel], err: ValidationError, prefix: str = "") -> tuple[str, str]:
    """``(dotted key, expected ...)`` of the first error pydantic reports.

    Args:
        model: the validated model class (to list the allowed keys of an unknown one).
        err: pydantic's error.
        prefix: dotted key of the table the model describes (``"input"``; ``""`` for a whole file).
    """
    error = err.errors(include_url=False)[0]
    loc = [part for part in error["loc"] if not (isinstance(part, str) and "[" in part)]
    key = _dotted(prefix, loc)
    if error["type"] == "extra_forbidden":
        allowed = _allowed_at(model, loc)
        what = "table" if not prefix and len(loc) == 1 and isinstance(error.get("input"), dict) else "key"
        return key, f"unknown {what}; allowed: {', '.join(allowed)}" if allowed else f"unknown {what}"
    if error["type"] == "missing":
        return key, "required key missing: expected a table" if _is_table(model, loc) else "required key missing"
    expected = _expected(error, integer_field=not _is_float_field(model, loc))
    if error["type"] in ("value_error", "assertion_error"):
        return key, expected if expected.startswith("expected") else f"expected {expected}"
    return key, f"expected {expected}, got {describe(error.get('input'))}"


def validate(
    model: type[M],
    data: Any,
    *,
    path: str | Any,
    prefix: str = "",
    error: Callable[[str, str, str], SnnprofError] = ConfigError,
    context: Mapping[str, Any] | None = None,
) -> M:
    """Validate ``data`` against ``model``; raise one snnprof error on the first problem.

    Args:
        model: a :class:`StrictModel` subclass.
        data: the parsed table (dict) to validate.
        path: the file it came from (named in the message).
        prefix: dotted key of the table within the file (``"train"``; ``""`` for the whole file).
        error: the error class, called as ``error(path, key, expected)``.
        context: pydantic validation context (e.g. the config's folder for relative paths).

    Returns:
        The validated model instance.

    Raises:
        SnnprofError: ``error(path, "prefix.key", "expected ...")``.
    """
    try:
        return model.model_validate(data, context=dict(context or {}))
    except KeyProblem as err:
        raise error(str(path), _dotted(prefix, err.key.split(".")), err.expected) from None
    except ValidationError as err:
        key, expected = first_error(model, err, prefix)
        raise error(str(path), key, expected) from None
    except RecursionError:
        raise error(str(path), prefix, "expected a table nested at most a few levels deep") from None
