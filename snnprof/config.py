"""Run configs: the validated TOML files that ``snnprof count`` (and every other command) take.

A config names a model, the inputs to feed it, counting options and the hardware profiles to
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
    fold_pooling = false
    overrides = { "features.0" = "dense" }
    strict = false
    [energy]
    profiles = ["cmos45nm_fp32", "loihi"]
    host_profile = "cmos45nm_fp32"   # optional: prices what a neuromorphic profile cannot run

The tables are pydantic models (:mod:`snnprof.validation`): every problem raises one
:class:`~snnprof.errors.ConfigError` naming the file, the dotted key and what was expected.
Unknown sections and keys are errors. Relative files resolve from the working directory, then
from the config's folder.
"""

from __future__ import annotations

import logging
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from snnprof.energy.profiles import DEFAULT_PROFILES
from snnprof.errors import ConfigError
from snnprof.validation import KeyProblem, PositiveInt, StrictModel, validate

__all__ = [
    "DEFAULT_PROFILES",
    "INPUT_KINDS",
    "CountConfig",
    "EnergyConfig",
    "InputConfig",
    "ModelConfig",
    "RunConfig",
    "check_host_profile",
    "check_profiles",
    "load_config",
    "parse_config",
]

logger = logging.getLogger(__name__)

InputKind = Literal["spike", "count", "ternary", "dense"]
#: Input kinds a layer override can force.
INPUT_KINDS: tuple[str, ...] = ("spike", "count", "ternary", "dense")
_SECTIONS: tuple[str, ...] = ("model", "input", "count", "energy", "train")
#: ``torch.manual_seed`` takes seeds in ``[0, 2**64)``.
MAX_SEED = 2**64 - 1
#: Deepest nesting of tables/arrays accepted in a config (TOML itself allows any depth).
MAX_DEPTH = 32


def _folder(info: ValidationInfo) -> Path | None:
    """The config's folder from the validation context (``None`` when re-validating in code)."""
    context = info.context if isinstance(info.context, Mapping) else {}
    folder = context.get("folder")
    return Path(folder) if folder is not None else None


def _candidates(value: str, folder: Path | None) -> list[Path]:
    """Where a relative file is looked for: the working directory, then the config's folder."""
    given = Path(value).expanduser()
    if given.is_absolute() or folder is None:
        return [given]
    return [given, folder / given]


def _free_form_problem(value: Any, where: str, depth: int) -> str | None:
    """The first problem in a free-form value, naming its key path (``None`` when fine)."""
    if depth > MAX_DEPTH:
        return f"expected tables nested at most {MAX_DEPTH} levels deep (deeper at {where})"
    if isinstance(value, float) and not math.isfinite(value):
        return f"expected finite numbers, got {value} at {where}"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        problem = _free_form_problem(item, f"{where}.{key}" if where else str(key), depth + 1)
        if problem:
            return problem
    return None


def check_free_form(value: Any) -> Any:
    """A free-form table (``kwargs``, ``[train]``): finite numbers only, nested at most :data:`MAX_DEPTH` deep.

    Raises:
        ValueError: naming the first offending key path.
    """
    problem = _free_form_problem(value, "", 0)
    if problem:
        raise ValueError(problem)
    return value


def resolve_file(value: str, folder: Path | None, what: str) -> Path:
    """Resolve a file named in a config (cwd first, then the config's folder).

    Raises:
        ValueError: ``expected an existing <what>, not found: <paths tried>``.
    """
    candidates = _candidates(value, folder)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    present = next((c for c in candidates if c.exists()), None)
    if present is not None:
        kind = "a folder" if present.is_dir() else "not a regular file"
        raise ValueError(f"expected an existing {what}, got {present}: {kind}")
    raise ValueError(f"expected an existing {what}, not found: {' or '.join(map(str, candidates))}")


class ModelConfig(StrictModel):
    """The ``[model]`` section.

    Attributes:
        name: registered zoo name.
        kwargs: constructor keyword arguments.
        checkpoint: resolved path of a ``state_dict`` file, or ``None``.
        checkpoint_format: ``snnprof`` (a state dict of this model) or ``upstream`` (the seed
            repository's own checkpoint, converted on load; see ``snnprof convert``).
    """

    name: str
    kwargs: dict[str, Any] = Field(default_factory=dict)
    checkpoint: Path | None = None
    checkpoint_format: Literal["snnprof", "upstream"] = "snnprof"

    _kwargs = field_validator("kwargs")(classmethod(lambda cls, v: check_free_form(v)))

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str) -> str:
        from snnprof.models import list_models

        known = list_models()
        if name not in known:
            raise ValueError(f"expected a registered zoo model; unknown model {name!r}; registered models: "
                             + ", ".join(known))
        return name

    @model_validator(mode="after")
    def _upstream_needs_a_converter(self) -> ModelConfig:
        if self.checkpoint_format == "upstream":
            from snnprof.convert import MODEL_SEEDS

            if self.checkpoint is None:
                raise KeyProblem("model.checkpoint_format", "expected a [model] checkpoint to convert")
            if self.name not in MODEL_SEEDS:
                raise KeyProblem("model.checkpoint_format", "expected a zoo model with an upstream converter ("
                                 + ", ".join(sorted(MODEL_SEEDS)) + f"), got {self.name!r}")
        return self

    @field_validator("checkpoint", mode="before")
    @classmethod
    def _checkpoint(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            return resolve_file(value, _folder(info), "checkpoint file")
        return value


class InputConfig(StrictModel):
    """The ``[input]`` section.

    Attributes:
        source: ``synthetic`` (the zoo entry's deterministic generator) or ``dataset``.
        batch_size: samples per run (positive; default from the zoo entry).
        time_steps: time steps per sample (positive; 1 for ANNs; default from the zoo entry).
        seed: seed of ``torch.manual_seed`` and of the generator.
        kwargs: extra keyword arguments of the zoo entry's ``make_inputs`` (synthetic) or of the
            dataset reader (dataset).
        reader: registered dataset reader name (``source = "dataset"``).
        path: dataset file or folder (``source = "dataset"``), resolved; must exist.
    """

    source: Literal["synthetic", "dataset"] = "synthetic"
    batch_size: PositiveInt = 1
    time_steps: PositiveInt = 1
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 0
    kwargs: dict[str, Any] = Field(default_factory=dict)
    reader: str | None = None
    path: Path | None = None

    _kwargs = field_validator("kwargs")(classmethod(lambda cls, v: check_free_form(v)))

    @field_validator("reader")
    @classmethod
    def _known_reader(cls, reader: str | None) -> str | None:
        from snnprof.data import list_readers

        readers = list_readers()
        if reader is not None and reader not in readers:
            raise ValueError(f"expected a registered reader; unknown reader {reader!r}; expected one of: "
                             + ", ".join(readers))
        return reader

    @field_validator("path", mode="before")
    @classmethod
    def _dataset_path(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        for candidate in _candidates(value, _folder(info)):
            if candidate.exists():
                return candidate
        raise ValueError(f"expected an existing dataset file or folder; dataset path not found: {value}")

    @model_validator(mode="after")
    def _dataset_keys(self) -> InputConfig:
        if self.source != "dataset":
            for key in ("path", "reader"):
                if getattr(self, key) is not None:
                    raise KeyProblem(f"input.{key}", "expected no dataset key: only applies to source = 'dataset'")
        elif self.path is None or self.reader is None:
            raise KeyProblem("input.path" if self.path is None else "input.reader",
                             "expected both `path` (file or folder) and `reader`: source = 'dataset' needs both")
        return self


class CountConfig(StrictModel):
    """The ``[count]`` section.

    Attributes:
        sop_convention: ``exact`` (border-aware events).
        count_weighting: ``value`` (a graded input of n counts n) or ``nonzero``.
        fold_pooling: a synaptic layer fed by average/sum pooling of spikes counts exact SOPs on the
            pre-pool spikes instead of dense MACs (both views are reported either way).
        overrides: layer name -> forced input kind (``spike``/``count``/``ternary``/``dense``).
        strict: raise on modules/ops without a counting rule.
    """

    sop_convention: Literal["exact"] = "exact"
    count_weighting: Literal["value", "nonzero"] = "value"
    fold_pooling: bool = False
    overrides: dict[str, InputKind] = Field(default_factory=dict)
    strict: bool = False


class EnergyConfig(StrictModel):
    """The ``[energy]`` section.

    Attributes:
        profiles: shipped hardware-profile names, or resolved paths of profile TOML files.
        host_profile: a per-event profile pricing what a neuromorphic profile cannot run (dense
            MACs of an encoding layer, an ANN), reported as separate ``host_*`` terms; ``None``: off.
    """

    profiles: tuple[str, ...] = DEFAULT_PROFILES
    host_profile: str | None = None

    @field_validator("host_profile")
    @classmethod
    def _host(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else resolve_host_profile(value, _folder(info))

    @field_validator("profiles", mode="before")
    @classmethod
    def _as_tuple(cls, value: Any) -> Any:
        return tuple(value) if isinstance(value, list) else value

    @field_validator("profiles")
    @classmethod
    def _known(cls, profiles: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        return resolve_profiles(profiles, _folder(info))


class RunConfig(StrictModel):
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
    input: InputConfig = Field(default_factory=InputConfig)
    count: CountConfig = Field(default_factory=CountConfig)
    energy: EnergyConfig = Field(default_factory=EnergyConfig)
    train: dict[str, Any] = Field(default_factory=dict)

    _train = field_validator("train")(classmethod(lambda cls, v: check_free_form(v)))

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some fields replaced (no re-validation; callers pass validated values)."""
        return self.model_copy(update=changes)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as a JSON-ready dict (what ``ProfileResult.config`` holds)."""
        model: dict[str, Any] = {"name": self.model.name, "kwargs": dict(self.model.kwargs)}
        if self.model.checkpoint is not None:
            model["checkpoint"] = str(self.model.checkpoint)
            model["checkpoint_format"] = self.model.checkpoint_format
        inp = self.input
        dataset = {"path": str(inp.path), "reader": inp.reader} if inp.path is not None else {}
        return {
            "path": str(self.path),
            "model": model,
            "input": {"source": inp.source, "batch_size": inp.batch_size, "time_steps": inp.time_steps,
                      "seed": inp.seed, "kwargs": dict(inp.kwargs), **dataset},
            "count": self.count.model_dump(),
            "energy": {"profiles": list(self.energy.profiles),
                       **({"host_profile": self.energy.host_profile} if self.energy.host_profile else {})},
            **({"train": dict(self.train)} if self.train else {}),
        }


# --------------------------------------------------------------------------- profiles


def _is_profile_path(value: str) -> bool:
    """A profile given as a file path rather than a shipped name."""
    return value.endswith(".toml") or "/" in value or "\\" in value


def resolve_profiles(profiles: tuple[str, ...] | list[str], folder: Path | None) -> tuple[str, ...]:
    """Validate hardware-profile names (shipped names, or paths of ``.toml`` files).

    Raises:
        ValueError: an unknown name or a missing file.
        ProfileFileError: a profile file that is not a valid hardware profile.
    """
    from snnprof.energy import list_profiles

    known = list_profiles()
    out: list[str] = []
    for name in profiles:
        if _is_profile_path(name):
            out.append(str(resolve_file(name, folder, "hardware profile file")))
        elif name in known:
            out.append(name)
        else:
            raise ValueError(f"expected a shipped hardware profile or a .toml path; unknown hardware profile "
                             f"{name!r}; shipped profiles: {', '.join(known)}")
    distinct_profile_names(out)  # loads each: a bad profile file is a ProfileFileError naming that file
    return tuple(out)


def distinct_profile_names(profiles: list[str]) -> None:
    """Every profile of one run has its own name (a user file copied from a shipped one keeps its name).

    Raises:
        ValueError: naming both files of a repeated name.
        ProfileFileError: an invalid profile file.
    """
    from snnprof.energy import load_profile

    seen: dict[str, str] = {}
    for given in profiles:
        profile = load_profile(given)
        where = profile.path or given
        if profile.name in seen:
            raise ValueError(f"expected distinct profile names: {profile.name!r} is both {seen[profile.name]} and "
                             f"{where}" if seen[profile.name] != where else
                             f"expected each profile once: {profile.name!r} is given twice")
        seen[profile.name] = where


def resolve_host_profile(value: str, folder: Path | None) -> str:
    """Validate a host profile: a shipped name or a ``.toml`` path of a per-event profile.

    Raises:
        ValueError: unknown, missing, or not a per-event profile.
    """
    from snnprof.energy import load_profile

    (resolved,) = resolve_profiles([value], folder)
    model = load_profile(resolved).model
    if model != "per_event":
        raise ValueError(f"expected a per_event host profile (one that prices mac/ac), got {value!r} ({model})")
    return resolved


def check_host_profile(value: str | None, path: Path, key: str) -> str | None:
    """Validate ``--host-profile`` (``None`` passes through).

    Raises:
        ConfigError: unknown, missing, or not a per-event profile.
    """
    if value is None:
        return None
    try:
        return resolve_host_profile(value, Path(path).parent)
    except ValueError as err:
        raise ConfigError(path, key, str(err)) from None


def check_profiles(profiles: list[str] | tuple[str, ...], path: Path, key: str) -> tuple[str, ...]:
    """Validate profiles given outside a config's ``[energy]`` table (CLI ``--profile``).

    Args:
        profiles: names or paths.
        path: the config file (for messages; relative files also resolve against its folder).
        key: the key being checked (``--profile``).

    Raises:
        ConfigError: on an unknown name or a missing file.
        ProfileFileError: a profile file that is not a valid hardware profile.
    """
    try:
        return resolve_profiles(profiles, Path(path).parent)
    except ValueError as err:
        raise ConfigError(path, key, str(err)) from None


# --------------------------------------------------------------------------- entry points


def _with_zoo_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the zoo entry's default input settings filled in (when the model is known)."""
    model = data.get("model")
    name = model.get("name") if isinstance(model, dict) else None
    inp = data.get("input", {})
    if not isinstance(name, str) or not isinstance(inp, dict):
        return data
    from snnprof.models import get_entry, list_models

    if name not in list_models():
        return data
    defaults = get_entry(name).defaults
    filled = {key: defaults[key] for key in ("batch_size", "time_steps") if key in defaults and key not in inp}
    return {**data, "input": {**inp, **filled}}


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
    except RecursionError:
        raise ConfigError(path, "", f"expected tables nested at most {MAX_DEPTH} levels deep") from None
    for key in data:
        if key not in _SECTIONS:
            raise ConfigError(path, key, f"unknown section; allowed: {', '.join(_SECTIONS)}")
    if "model" not in data:
        raise ConfigError(path, "model", "required section missing: expected a [model] table with `name`")
    document = {**_with_zoo_defaults(data), "path": path, "text": text}
    return validate(RunConfig, document, path=path, context={"folder": path.parent})


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
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise ConfigError(path, "", f"cannot read config file: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(path, "", f"expected a UTF-8 text file: {err.reason} at byte {err.start}") from None
    logger.debug("loaded config %s", path)
    return parse_config(text, path)
