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

import json
import logging
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from snnprof.data.synthetic_tensors import TensorSpec
from snnprof.energy.profiles import DEFAULT_PROFILES
from snnprof.errors import ConfigError
from snnprof.validation import KeyProblem, NonNegativeFloat, PositiveInt, StrictModel, validate

__all__ = [
    "DEFAULT_PROFILES",
    "INPUT_KINDS",
    "NIR_OPTION_KEYS",
    "CountConfig",
    "EnergyConfig",
    "InputConfig",
    "ModelConfig",
    "RunConfig",
    "TensorConfig",
    "check_host_profile",
    "check_profiles",
    "load_config",
    "nir_config",
    "nir_config_text",
    "parse_config",
    "toml_inline",
]

logger = logging.getLogger(__name__)

InputKind = Literal["spike", "count", "ternary", "dense"]
SyntheticKind = Literal["spike", "count", "dense"]
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
    """The ``[model]`` section: a zoo model, a model of your own, or a NIR graph.

    Attributes:
        nir: resolved path of a NIR graph (``.nir``) to profile instead of a named model, or ``None``.
        name: a registered zoo name, ``"package.module:callable"`` or ``"path/to/file.py:callable"``
            (relative to the config's folder, then the working directory); for a NIR graph, the
            graph file's name as written (what results call the model).
        kwargs: constructor keyword arguments (NIR graphs: ``dt``, the time step in the graph's
            time unit).
        checkpoint: resolved path of a ``state_dict`` file, or ``None``.
        checkpoint_format: ``snnprof`` (a state dict of this model) or ``upstream`` (the seed
            repository's own checkpoint, converted on load; see ``snnprof convert``).
    """

    nir: Path | None = None
    name: str
    kwargs: dict[str, Any] = Field(default_factory=dict)
    checkpoint: Path | None = None
    checkpoint_format: Literal["snnprof", "upstream"] = "snnprof"

    _kwargs = field_validator("kwargs")(classmethod(lambda cls, v: check_free_form(v)))

    @model_validator(mode="before")
    @classmethod
    def _name_or_nir(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "nir" not in data:
            return data
        if "name" in data:
            raise KeyProblem("model.nir", "expected either `name` or `nir`, not both")
        if "checkpoint" in data:
            raise KeyProblem("model.checkpoint", "expected no checkpoint: a NIR graph carries its own weights")
        nir = data["nir"]
        return {**data, "name": nir if isinstance(nir, str) else ""}

    @field_validator("nir", mode="before")
    @classmethod
    def _nir_file(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str):
            return resolve_file(value, _folder(info), "NIR graph file")
        return value

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str, info: ValidationInfo) -> str:
        if info.data.get("nir") is not None:
            return name
        from snnprof.models import list_models
        from snnprof.models.external import ModelReferenceError, is_reference, reference_file, split_reference

        if is_reference(name):
            try:
                source, _ = split_reference(name)
                reference_file(source, _folder(info))
            except ModelReferenceError as err:
                raise ValueError(f"{err} (reference {name!r})" if name not in str(err) else str(err)) from None
            return name
        known = list_models()
        if name not in known:
            raise ValueError(f"expected a registered zoo model, 'package.module:callable' or "
                             f"'path/file.py:callable'; unknown model {name!r}; registered models: "
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

    @property
    def in_zoo(self) -> bool:
        """Whether the model is a registered zoo model (not a reference, not a NIR graph)."""
        from snnprof.models.external import is_reference

        return self.nir is None and not is_reference(self.name)


class TensorConfig(StrictModel):
    """One synthetic positional input of a model outside the zoo (an item of ``[[input.tensors]]``).

    Attributes:
        shape: shape of one sample at one time step (no batch or time axis).
        kind: ``spike`` (0/1), ``count`` (Poisson counts) or ``dense`` (standard normal); default
            ``[input] kind``, else ``spike``.
        rate: spike probability (``spike``, in [0, 1]) or mean count (``count``); default
            ``[input] rate``, else 0.2.
        seed: seed of this tensor's draw; default ``[input] seed`` plus the tensor's position.
    """

    shape: list[PositiveInt]
    kind: SyntheticKind | None = None
    rate: NonNegativeFloat | None = None
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = None


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
        shape: synthetic input of a model outside the zoo: shape of one sample at one time step.
        kind: its kind: ``spike``, ``count`` or ``dense`` (default ``spike``).
        rate: spike probability or mean count per element (default 0.2).
        step_mode: how a model outside the zoo takes time: ``multi`` (``[T, B, *shape]`` in one
            call), ``single`` (one ``[B, *shape]`` call per step) or ``ann`` (``[B, *shape]``);
            default ``multi`` when ``time_steps > 1``, else ``ann`` (NIR graphs: always ``multi``).
        tensors: several positional inputs, one table each (``shape``, ``kind``, ``rate``, ``seed``).
    """

    source: Literal["synthetic", "dataset"] = "synthetic"
    batch_size: PositiveInt = 1
    time_steps: PositiveInt = 1
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 0
    kwargs: dict[str, Any] = Field(default_factory=dict)
    reader: str | None = None
    path: Path | None = None
    shape: list[PositiveInt] | None = None
    kind: SyntheticKind | None = None
    rate: NonNegativeFloat | None = None
    step_mode: Literal["multi", "single", "ann"] | None = None
    tensors: list[TensorConfig] | None = None

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
    def _synthetic_keys(self) -> InputConfig:
        if self.shape is not None and self.tensors is not None:
            raise KeyProblem("input.tensors", "expected either `shape` or `[[input.tensors]]`, not both")
        if not self.tensors and self.tensors is not None:
            raise KeyProblem("input.tensors", "expected at least one [[input.tensors]] table")
        if self.step_mode == "ann" and self.time_steps != 1:
            raise KeyProblem("input.step_mode", f"expected time_steps = 1 with step_mode 'ann' (no time axis), "
                                                f"got time_steps = {self.time_steps}")
        for where, spec in self._spec_tables():
            kind, rate = spec.get("kind") or "spike", spec.get("rate")
            if kind == "spike" and rate is not None and rate > 1:
                raise KeyProblem(f"{where}rate", f"expected a spike probability in [0, 1], got {rate:g}")
        return self

    def _spec_tables(self) -> list[tuple[str, dict[str, Any]]]:
        """``(key prefix, {kind, rate})`` of every synthetic tensor, defaults filled from ``[input]``."""
        if self.tensors is None:
            return [("input.", {"kind": self.kind, "rate": self.rate})]
        return [(f"input.tensors[{i}].", {"kind": t.kind or self.kind, "rate": t.rate if t.rate is not None
                                          else self.rate}) for i, t in enumerate(self.tensors)]

    @property
    def synthetic_keys(self) -> list[str]:
        """The synthetic-input keys given (those only a model outside the zoo takes)."""
        return [k for k in ("shape", "kind", "rate", "step_mode", "tensors") if getattr(self, k) is not None]

    def tensor_specs(self, default_shape: tuple[int, ...] | None = None) -> list[TensorSpec]:
        """The synthetic inputs as :class:`~snnprof.data.synthetic_tensors.TensorSpec` (empty without a shape).

        Args:
            default_shape: used when neither ``shape`` nor ``tensors`` is given (a NIR graph's input type).
        """
        kind, rate = self.kind or "spike", 0.2 if self.rate is None else self.rate
        if self.tensors is not None:
            return [TensorSpec(tuple(t.shape), t.kind or kind, rate if t.rate is None else t.rate,
                               self.seed + i if t.seed is None else t.seed) for i, t in enumerate(self.tensors)]
        shape = self.shape if self.shape is not None else default_shape
        return [] if shape is None else [TensorSpec(tuple(shape), kind, rate, self.seed)]

    def effective_step_mode(self) -> str:
        """The step mode of a model outside the zoo (``step_mode``, else by ``time_steps``)."""
        if self.step_mode is not None:
            return self.step_mode
        return "multi" if self.time_steps > 1 else "ann"

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

    @model_validator(mode="after")
    def _inputs_fit_the_model(self) -> RunConfig:
        given = self.input.synthetic_keys
        if self.model.in_zoo and given:
            raise KeyProblem(f"input.{given[0]}", f"expected no {given[0]}: zoo model {self.model.name!r} makes its "
                                                  "own inputs (set input.kwargs, or name a model of your own)")
        if self.model.nir is not None and self.input.step_mode not in (None, "multi"):
            raise KeyProblem("input.step_mode", "expected 'multi' or nothing: a NIR graph takes [T, B, ...] "
                                                "inputs and steps through time itself")
        needs_shape = not self.model.in_zoo and self.model.nir is None and self.input.source == "synthetic"
        if needs_shape and self.input.shape is None and self.input.tensors is None:
            raise KeyProblem("input.shape", f"expected the shape of one input sample (e.g. shape = [2, 32, 32]) "
                                            f"or [[input.tensors]]: synthetic inputs of {self.model.name!r} "
                                            "need one")
        return self

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some fields replaced (no re-validation; callers pass validated values)."""
        return self.model_copy(update=changes)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as a JSON-ready dict (what ``ProfileResult.config`` holds)."""
        model: dict[str, Any] = {"name": self.model.name, "kwargs": dict(self.model.kwargs)}
        if self.model.checkpoint is not None:
            model["checkpoint"] = str(self.model.checkpoint)
            model["checkpoint_format"] = self.model.checkpoint_format
        if self.model.nir is not None:
            model["nir"] = str(self.model.nir)
        inp = self.input
        dataset = {"path": str(inp.path), "reader": inp.reader} if inp.path is not None else {}
        synthetic = inp.model_dump(include=set(inp.synthetic_keys), exclude_none=True)
        return {
            "path": str(self.path),
            "model": model,
            "input": {"source": inp.source, "batch_size": inp.batch_size, "time_steps": inp.time_steps,
                      "seed": inp.seed, "kwargs": dict(inp.kwargs), **dataset, **synthetic},
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
        raise ConfigError(path, "model", "required section missing: expected a [model] table with `name` or `nir`")
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


#: ``snnprof count GRAPH.nir`` options -> the config keys they set (messages name the option).
NIR_OPTION_KEYS: dict[str, str] = {
    "input.shape": "--shape", "input.kind": "--kind", "input.rate": "--rate", "input.seed": "--seed",
    "input.time_steps": "--time-steps", "input.batch_size": "--batch-size", "model.kwargs": "--dt",
    "model.kwargs.dt": "--dt", "model.nir": "GRAPH", "input": "--shape",
}


def toml_inline(value: Any) -> str:
    """A TOML inline value: table, array, boolean, number or string (JSON-quoted, a valid TOML basic string)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_inline(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_inline(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def nir_config_text(graph: Path, options: Mapping[str, Any]) -> str:
    """The TOML of the config ``snnprof count GRAPH.nir`` runs (what reports and JSON record).

    Args:
        graph: the ``.nir`` file.
        options: ``shape``, ``kind``, ``rate``, ``seed``, ``time_steps``, ``batch_size``, ``dt``,
            ``profiles`` (``None`` values are left out: the defaults or the graph's input type apply).
    """
    lines = ["# implicit config of `snnprof count` on a NIR graph", "[model]", f"nir = {toml_inline(str(graph))}"]
    if options.get("dt") is not None:
        lines.append(f"kwargs = {{ dt = {toml_inline(options['dt'])} }}")
    lines.append("[input]")
    for key in ("batch_size", "time_steps", "seed", "shape", "kind", "rate"):
        if options.get(key) is not None:
            lines.append(f"{key} = {toml_inline(options[key])}")
    if options.get("profiles"):
        lines += ["[energy]", f"profiles = {toml_inline(list(options['profiles']))}"]
    return "\n".join(lines) + "\n"


def nir_config(graph: str | Path, options: Mapping[str, Any]) -> RunConfig:
    """The validated implicit config of ``snnprof count GRAPH.nir`` (see :func:`nir_config_text`).

    Raises:
        ConfigError: naming the graph file and the command-line option at fault.
    """
    path = Path(graph)
    try:
        return parse_config(nir_config_text(path.resolve() if path.exists() else path, options), path)
    except ConfigError as err:
        raise ConfigError(path, NIR_OPTION_KEYS.get(err.key, err.key), err.expected) from None
