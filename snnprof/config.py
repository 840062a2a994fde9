"""Run configs: the validated TOML files that ``snnprof count`` (and later commands) take.

A config names a zoo model, the inputs to feed it, counting options and the hardware profiles to
estimate energy with::

    [model]
    name = "ottt_vgg11_ws"
    kwargs = { num_classes = 10 }
    checkpoint = "runs/x/model.pt"   # optional
    [input]
    source = "synthetic"
    batch_size = 8
    time_steps = 6
    seed = 0
    kwargs = { image_size = 32 }
    [count]
    sop_convention = "exact"
    count_weighting = "value"
    overrides = { "features.0" = "dense" }
    strict = false
    [energy]
    profiles = ["cmos45nm_fp32", "loihi"]

Every problem raises one :class:`~snnprof.errors.ConfigError` naming the file, the dotted key and
what was expected. Unknown sections and keys are errors.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snnprof.errors import ConfigError

__all__ = [
    "COUNT_WEIGHTINGS",
    "INPUT_KINDS",
    "INPUT_SOURCES",
    "SOP_CONVENTIONS",
    "CountConfig",
    "EnergyConfig",
    "InputConfig",
    "ModelConfig",
    "RunConfig",
    "check_profiles",
    "load_config",
    "parse_config",
]

logger = logging.getLogger(__name__)

SOP_CONVENTIONS: tuple[str, ...] = ("exact",)
COUNT_WEIGHTINGS: tuple[str, ...] = ("value", "nonzero")
INPUT_KINDS: tuple[str, ...] = ("spike", "count", "ternary", "dense")
INPUT_SOURCES: tuple[str, ...] = ("synthetic", "dataset")
DEFAULT_PROFILES: tuple[str, ...] = ("cmos45nm_fp32",)

_SECTION_KEYS: dict[str, tuple[str, ...] | None] = {
    "model": ("name", "kwargs", "checkpoint"),
    "input": ("source", "batch_size", "time_steps", "seed", "kwargs", "path", "reader"),
    "count": ("sop_convention", "count_weighting", "overrides", "strict"),
    "energy": ("profiles",),
    "train": None,  # free-form: each reference training loop validates its own keys
}

_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    bool: "a boolean (true/false)",
    dict: "a table",
    list: "an array",
}


@dataclass(frozen=True)
class ModelConfig:
    """The ``[model]`` section.

    Attributes:
        name: registered zoo name.
        kwargs: constructor keyword arguments.
        checkpoint: resolved path of a ``state_dict`` file, or ``None``.
    """

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    checkpoint: Path | None = None


@dataclass(frozen=True)
class InputConfig:
    """The ``[input]`` section.

    Attributes:
        source: ``synthetic`` (the zoo entry's deterministic generator).
        batch_size: samples per run (positive).
        time_steps: time steps per sample (positive; 1 for ANNs).
        seed: seed of ``torch.manual_seed`` and of the generator.
        kwargs: extra keyword arguments of the zoo entry's ``make_inputs`` (synthetic) or of the
            dataset reader (dataset).
        path: dataset file or folder (``source = "dataset"``), resolved; must exist.
        reader: registered dataset reader name (``source = "dataset"``).
    """

    source: str = "synthetic"
    batch_size: int = 1
    time_steps: int = 1
    seed: int = 0
    kwargs: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    reader: str | None = None


@dataclass(frozen=True)
class CountConfig:
    """The ``[count]`` section.

    Attributes:
        sop_convention: ``exact`` (border-aware events).
        count_weighting: ``value`` (a graded input of n counts n) or ``nonzero``.
        overrides: layer name -> forced input kind (``spike``/``count``/``ternary``/``dense``).
        strict: raise on modules/ops without a counting rule.
    """

    sop_convention: str = "exact"
    count_weighting: str = "value"
    overrides: dict[str, str] = field(default_factory=dict)
    strict: bool = False


@dataclass(frozen=True)
class EnergyConfig:
    """The ``[energy]`` section.

    Attributes:
        profiles: shipped hardware-profile names, or paths of profile TOML files.
    """

    profiles: tuple[str, ...] = DEFAULT_PROFILES


@dataclass(frozen=True)
class RunConfig:
    """A validated run config.

    Attributes:
        path: the config file.
        text: the file's raw TOML text (reports embed it verbatim).
        model: the ``[model]`` section.
        input: the ``[input]`` section (defaults filled from the zoo entry).
        count: the ``[count]`` section.
        energy: the ``[energy]`` section.
        train: the ``[train]`` table as written (validated by the reference training loop).
    """

    path: Path
    text: str
    model: ModelConfig
    input: InputConfig
    count: CountConfig
    energy: EnergyConfig
    train: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as a JSON-ready dict (what ``ProfileResult.config`` holds)."""
        model: dict[str, Any] = {"name": self.model.name, "kwargs": dict(self.model.kwargs)}
        if self.model.checkpoint is not None:
            model["checkpoint"] = str(self.model.checkpoint)
        return {
            "path": str(self.path),
            "model": model,
            "input": {
                "source": self.input.source,
                "batch_size": self.input.batch_size,
                "time_steps": self.input.time_steps,
                "seed": self.input.seed,
                "kwargs": dict(self.input.kwargs),
                **({"path": str(self.input.path), "reader": self.input.reader} if self.input.path else {}),
            },
            "count": {
                "sop_convention": self.count.sop_convention,
                "count_weighting": self.count.count_weighting,
                "overrides": dict(self.count.overrides),
                "strict": self.count.strict,
            },
            "energy": {"profiles": list(self.energy.profiles)},
            **({"train": dict(self.train)} if self.train else {}),
        }


# --------------------------------------------------------------------------- helpers


def _type_name(value: Any) -> str:
    """TOML-ish name of a value's type for messages (``got an integer (3)``)."""
    name = _TYPE_NAMES.get(type(value), type(value).__name__)
    return f"{name} ({value!r})" if not isinstance(value, dict | list) else name


def _get(
    table: Mapping[str, Any],
    key: str,
    kind: type,
    where: tuple[Path, str],
    default: Any = None,
) -> Any:
    """Read ``table[key]`` checking its type (``bool`` never passes as ``int``)."""
    path, section = where
    if key not in table:
        return default
    value = table[key]
    wrong_bool = kind is not bool and isinstance(value, bool)
    if wrong_bool or not isinstance(value, kind):
        raise ConfigError(path, f"{section}.{key}", f"expected {_TYPE_NAMES[kind]}, got {_type_name(value)}")
    return value


def _choice(value: str, allowed: tuple[str, ...], path: Path, key: str) -> str:
    """Check ``value`` is one of ``allowed``."""
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ConfigError(path, key, f"expected one of {options}, got {value!r}")
    return value


def _positive(value: int, path: Path, key: str) -> int:
    """Check an integer is positive."""
    if value < 1:
        raise ConfigError(path, key, f"expected a positive integer, got {value}")
    return value


def _check_keys(data: Mapping[str, Any], allowed: tuple[str, ...], path: Path, section: str) -> None:
    """Reject keys not in ``allowed`` (``section`` is ``""`` for the top level)."""
    for key in data:
        if key not in allowed:
            what = "section" if not section else "key"
            dotted = f"{section}.{key}" if section else key
            raise ConfigError(path, dotted, f"unknown {what}; allowed: {', '.join(allowed)}")


def _section(data: Mapping[str, Any], name: str, path: Path) -> dict[str, Any]:
    """Return the ``[name]`` table (empty if absent), checking its keys."""
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(path, name, f"expected a [{name}] table, got {_type_name(table)}")
    allowed = _SECTION_KEYS[name]
    if allowed is not None:
        _check_keys(table, allowed, path, name)
    return table


def _resolve_file(value: str, path: Path, key: str, what: str) -> Path:
    """Resolve a file named in the config.

    A relative path is tried from the working directory, then from the config's folder.

    Raises:
        ConfigError: naming the path(s) tried when the file is missing.
    """
    given = Path(value).expanduser()
    candidates = [given] if given.is_absolute() else [given, path.parent / given]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = " or ".join(str(c) for c in candidates)
    raise ConfigError(path, key, f"{what} not found: {tried}")


# --------------------------------------------------------------------------- registries


def _known_models() -> list[str]:
    """Registered zoo names."""
    from snnprof.models import list_models

    return list_models()


def _known_profiles() -> list[str]:
    """Names of the shipped hardware profiles."""
    from snnprof.energy import list_profiles

    return list(list_profiles())


def _model_defaults(name: str) -> dict[str, Any]:
    """Default input settings of a zoo entry."""
    from snnprof.models import get_entry

    return dict(get_entry(name).defaults)


def _check_profile_file(profile: Path) -> str:
    """Validate a user hardware-profile file early (raises ProfileFileError) and return its path."""
    from snnprof.energy import load_profile

    load_profile(profile)
    return str(profile)


def _is_profile_path(value: str) -> bool:
    """A profile given as a file path rather than a shipped name."""
    return value.endswith(".toml") or "/" in value or "\\" in value


def check_profiles(profiles: list[str] | tuple[str, ...], path: Path, key: str) -> tuple[str, ...]:
    """Validate hardware-profile names (shipped names, or paths of ``.toml`` files).

    Args:
        profiles: names or paths.
        path: the config file (for messages).
        key: the key being checked (``energy.profiles`` or ``--profile``).

    Returns:
        The profiles, with file paths resolved.

    Raises:
        ConfigError: on an unknown name or a missing file.
        ProfileFileError: a profile file that is not a valid hardware profile.
    """
    known = _known_profiles()
    out: list[str] = []
    for name in profiles:
        if _is_profile_path(name):
            out.append(_check_profile_file(_resolve_file(name, path, key, "hardware profile file")))
        elif name in known:
            out.append(name)
        else:
            raise ConfigError(path, key, f"unknown hardware profile {name!r}; shipped profiles: {', '.join(known)}")
    return tuple(out)


# --------------------------------------------------------------------------- sections


def _parse_model(data: Mapping[str, Any], path: Path) -> ModelConfig:
    """Validate ``[model]``."""
    table = _section(data, "model", path)
    where = (path, "model")
    name = _get(table, "name", str, where)
    if name is None:
        raise ConfigError(path, "model.name", "required key missing: expected a registered zoo model name")
    known = _known_models()
    if name not in known:
        raise ConfigError(path, "model.name", f"unknown model {name!r}; registered models: {', '.join(known)}")
    kwargs = _get(table, "kwargs", dict, where, {})
    ckpt = _get(table, "checkpoint", str, where)
    checkpoint = _resolve_file(ckpt, path, "model.checkpoint", "checkpoint") if ckpt is not None else None
    return ModelConfig(name=name, kwargs=dict(kwargs), checkpoint=checkpoint)


def _parse_input(data: Mapping[str, Any], path: Path, defaults: Mapping[str, Any]) -> InputConfig:
    """Validate ``[input]``; ``defaults`` are the zoo entry's default input settings."""
    table = _section(data, "input", path)
    where = (path, "input")
    source = _choice(_get(table, "source", str, where, "synthetic"), INPUT_SOURCES, path, "input.source")
    data_path, reader = _parse_dataset(table, path, source)
    batch = _get(table, "batch_size", int, where, defaults.get("batch_size", 1))
    steps = _get(table, "time_steps", int, where, defaults.get("time_steps", 1))
    seed = _get(table, "seed", int, where, 0)
    kwargs = _get(table, "kwargs", dict, where, {})
    return InputConfig(
        source=source,
        batch_size=_positive(batch, path, "input.batch_size"),
        time_steps=_positive(steps, path, "input.time_steps"),
        seed=seed,
        kwargs=dict(kwargs),
        path=data_path,
        reader=reader,
    )


def _parse_dataset(table: Mapping[str, Any], path: Path, source: str) -> tuple[Path | None, str | None]:
    """Validate ``input.path``/``input.reader`` (only, and both, for ``source = "dataset"``)."""
    where = (path, "input")
    if source != "dataset":
        for key in ("path", "reader"):
            if key in table:
                raise ConfigError(path, f"input.{key}", "only applies to source = 'dataset'")
        return None, None
    from snnprof.data import list_readers

    raw, reader = _get(table, "path", str, where), _get(table, "reader", str, where)
    if raw is None or reader is None:
        raise ConfigError(path, "input.path" if raw is None else "input.reader",
                          "source = 'dataset' needs both `path` (file or folder) and `reader`")
    readers = list_readers()
    if reader not in readers:
        raise ConfigError(path, "input.reader", f"unknown reader {reader!r}; expected one of: {', '.join(readers)}")
    data_path = Path(raw)
    if not data_path.is_absolute() and not data_path.exists():
        data_path = path.parent / data_path
    if not data_path.exists():
        raise ConfigError(path, "input.path", f"dataset path not found: {raw}")
    return data_path, reader


def _parse_overrides(value: Mapping[str, Any], path: Path) -> dict[str, str]:
    """Validate ``count.overrides`` (layer name -> input kind)."""
    out: dict[str, str] = {}
    for layer, kind in value.items():
        key = f"count.overrides.{layer}"
        if not isinstance(kind, str):
            raise ConfigError(path, key, f"expected an input kind string, got {_type_name(kind)}")
        out[layer] = _choice(kind, INPUT_KINDS, path, key)
    return out


def _parse_count(data: Mapping[str, Any], path: Path) -> CountConfig:
    """Validate ``[count]``."""
    table = _section(data, "count", path)
    where = (path, "count")
    convention = _get(table, "sop_convention", str, where, "exact")
    weighting = _get(table, "count_weighting", str, where, "value")
    return CountConfig(
        sop_convention=_choice(convention, SOP_CONVENTIONS, path, "count.sop_convention"),
        count_weighting=_choice(weighting, COUNT_WEIGHTINGS, path, "count.count_weighting"),
        overrides=_parse_overrides(_get(table, "overrides", dict, where, {}), path),
        strict=_get(table, "strict", bool, where, False),
    )


def _parse_energy(data: Mapping[str, Any], path: Path) -> EnergyConfig:
    """Validate ``[energy]``."""
    table = _section(data, "energy", path)
    profiles = _get(table, "profiles", list, (path, "energy"), list(DEFAULT_PROFILES))
    for item in profiles:
        if not isinstance(item, str):
            raise ConfigError(path, "energy.profiles", f"expected profile name strings, got {_type_name(item)}")
    return EnergyConfig(profiles=check_profiles(profiles, path, "energy.profiles"))


# --------------------------------------------------------------------------- entry points


def parse_config(text: str, path: str | Path = "<string>") -> RunConfig:
    """Parse and validate config ``text``.

    Args:
        text: TOML text.
        path: where the text came from (for messages; relative files resolve against its folder).

    Returns:
        The validated :class:`RunConfig`.

    Raises:
        ConfigError: on the first problem found.
    """
    path = Path(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(path, "", f"invalid TOML: {err}") from None
    _check_keys(data, tuple(_SECTION_KEYS), path, "")
    if "model" not in data:
        raise ConfigError(path, "model", "required section missing: expected a [model] table with `name`")
    model = _parse_model(data, path)
    return RunConfig(
        path=path,
        text=text,
        model=model,
        input=_parse_input(data, path, _model_defaults(model.name)),
        count=_parse_count(data, path),
        energy=_parse_energy(data, path),
        train=dict(_section(data, "train", path)) if "train" in data else {},
    )


def load_config(path: str | Path) -> RunConfig:
    """Read and validate the config file at ``path``.

    Example:
        >>> cfg = load_config("configs/sj_spiking_cnn.toml")  # doctest: +SKIP
        >>> cfg.model.name, cfg.input.batch_size  # doctest: +SKIP
        ('sj_spiking_cnn', 8)

    Raises:
        ConfigError: missing/unreadable file, invalid TOML, or any invalid key.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, "", "config file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(path, "", f"cannot read config file: {err}") from None
    logger.debug("loaded config %s", path)
    return parse_config(text, path)
