"""Hardware profiles: load, validate and list the TOML files that price a profiled network.

A hardware profile says how many picojoules (pJ) each counted event costs on one piece of
hardware, and where that number comes from. Shipped profiles live in
``snnprof/hardware_profiles/*.toml`` (package data, read with :mod:`importlib.resources`); users
pass their own file by path. The format below is a contract: unknown keys, wrong types, missing
required keys and negative energies are errors (:class:`~snnprof.errors.ProfileFileError`, naming
the file, the dotted key and what was expected).

Format (all energies in pJ)::

    [profile]                       # required
    name = "cmos45nm_fp32"          # required, non-empty string (shipped files: the file's stem)
    description = "..."             # optional string
    model = "per_event"             # required: "per_event" or "crossbar"

    [provenance]                    # required
    source = "M. Horowitz, ..."     # required: citation of the numbers
    year = 2014                     # required: integer year of the source
    technology_nm = 45              # required: process node in nm (positive number)
    precision = "fp32"              # required: arithmetic precision the numbers are for
    fidelity = "derived"            # required: "measured" | "simulated" | "derived"
    doi = "10.1109/..."             # optional string
    url = "https://..."             # optional string
    notes = "..."                   # optional string: how numbers were derived, what is left out

    [energy_pj]                     # pJ per event; required (>= 1 key) for model = "per_event",
    mac = 4.6                       #   optional for "crossbar" (added on top of the crossbar term)
    ac = 0.9                        # per synaptic operation (result.sops)
    neuron_update = 52.0            # per neuron state update (result.neuron_updates)
    spike = 1.7                     # per emitted spike (result.spikes)
                                    # mac prices result.macs (MACs whose input was dense)

    [memory_pj_per_byte]            # optional; pJ per byte of memory traffic
    weight_read = 12.5              # result.weight_read_bytes
    input_read = 2.5                # result.input_read_bytes
    output_write = 2.5              # result.output_write_bytes
    state_read = 2.5                # result.state_read_bytes (membrane state)
    state_write = 2.5               # result.state_write_bytes

    [crossbar]                      # required for model = "crossbar", forbidden otherwise
    xbar_size = 64                  # crossbar rows = columns (positive integer)
    xbar_ar_pj = 1.76423            # one crossbar array read (per kernel element)
    tile_buffer_pj = 397.0          # every key below is required, pJ per access
    temp_buffer_pj = 0.2
    sub_pj = 1.15e-6
    adc_pj = 2.03084
    htree_pj = 157.12
    mux_pj = 0.094245
    mem_fetch_pj = 4.64
    neuron_pj = 5.096

An event kind priced at ``0.0`` is deliberately free (e.g. included in another all-in figure); an
event kind left out is *unpriced*, and the estimator warns when the profiled run has such events.
The crossbar model (SpikeSim, Moitra et al., IEEE TCAD 2023) prices every synaptic layer by its
geometry: ``PE_ar = k*k*xbar_ar + (xbar/8)*(ADC + MUX)``, ``PE_cycle_energy = Htree + mem_fetch +
neuron + (xbar/8)*PE_ar + (xbar/8)*16*Sub + (xbar/8)*Temp_Buff + Tile_buff`` and
``E_layer = ceil(Cout/xbar) * ceil(Cin/xbar) * out_positions * PE_cycle_energy * frames``.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from snnprof.errors import ProfileFileError

__all__ = [
    "CROSSBAR_KEYS",
    "ENERGY_KEYS",
    "FIDELITIES",
    "MEMORY_KEYS",
    "MODELS",
    "HardwareProfile",
    "list_profiles",
    "load_profile",
    "parse_profile",
]

_PACKAGE = "snnprof.hardware_profiles"

#: Energy models a profile can name.
MODELS: tuple[str, ...] = ("per_event", "crossbar")
#: Allowed values of ``provenance.fidelity``.
FIDELITIES: tuple[str, ...] = ("measured", "simulated", "derived")
#: Event kinds of ``[energy_pj]`` (pJ per event).
ENERGY_KEYS: tuple[str, ...] = ("mac", "ac", "neuron_update", "spike")
#: Traffic kinds of ``[memory_pj_per_byte]`` (pJ per byte).
MEMORY_KEYS: tuple[str, ...] = ("weight_read", "input_read", "output_write", "state_read", "state_write")
#: Constants of ``[crossbar]`` (all required; ``xbar_size`` is an integer, the rest pJ).
CROSSBAR_KEYS: tuple[str, ...] = (
    "xbar_size",
    "xbar_ar_pj",
    "tile_buffer_pj",
    "temp_buffer_pj",
    "sub_pj",
    "adc_pj",
    "htree_pj",
    "mux_pj",
    "mem_fetch_pj",
    "neuron_pj",
)

_TABLES: tuple[str, ...] = ("profile", "provenance", "energy_pj", "memory_pj_per_byte", "crossbar")


@dataclass(frozen=True)
class HardwareProfile:
    """A validated hardware profile (see the module docstring for the file format).

    Attributes:
        name: profile name (shipped profiles: the file stem).
        description: one-line human description.
        model: ``"per_event"`` (price counted events) or ``"crossbar"`` (SpikeSim PE-cycle model).
        provenance: ``source``, ``year``, ``technology_nm``, ``precision``, ``fidelity`` and the
            optional ``doi``, ``url``, ``notes``.
        energy_pj: pJ per event, keys from :data:`ENERGY_KEYS`.
        memory_pj_per_byte: pJ per byte, keys from :data:`MEMORY_KEYS`.
        crossbar: crossbar constants, keys :data:`CROSSBAR_KEYS` (empty unless ``model == "crossbar"``).
        path: where the profile was loaded from (``""`` when built in code).
    """

    name: str
    description: str = ""
    model: str = "per_event"
    provenance: dict[str, Any] = field(default_factory=dict)
    energy_pj: dict[str, float] = field(default_factory=dict)
    memory_pj_per_byte: dict[str, float] = field(default_factory=dict)
    crossbar: dict[str, float] = field(default_factory=dict)
    path: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str = "<dict>") -> HardwareProfile:
        """Validate a parsed profile (same layout as the TOML file) and build it.

        Args:
            data: the parsed tables (``{"profile": {...}, "provenance": {...}, ...}``).
            path: label used in error messages.

        Raises:
            ProfileFileError: on any unknown key, wrong type, missing key or negative energy.
        """
        return parse_profile(data, path)

    def to_dict(self) -> dict[str, Any]:
        """The profile in the TOML file's layout (tables that are empty are left out)."""
        out: dict[str, Any] = {
            "profile": {"name": self.name, "description": self.description, "model": self.model},
            "provenance": dict(self.provenance),
        }
        for table in ("energy_pj", "memory_pj_per_byte", "crossbar"):
            values = getattr(self, table)
            if values:
                out[table] = dict(values)
        return out


# ---------------------------------------------------------------------------------------------
# Field checks: each returns None when the value is fine, else what was expected.
# ---------------------------------------------------------------------------------------------

_Check = Callable[[Any], "str | None"]


def _is_number(value: Any) -> bool:
    """True for int/float but not bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _energy(value: Any) -> str | None:
    """A finite, non-negative energy."""
    if not _is_number(value):
        return f"a number (pJ), got {type(value).__name__} {value!r}"
    if not math.isfinite(value) or value < 0:
        return f"a non-negative finite number (pJ), got {value!r}"
    return None


def _positive_number(value: Any) -> str | None:
    """A finite number > 0."""
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        return f"a positive number, got {type(value).__name__} {value!r}"
    return None


def _positive_int(value: Any) -> str | None:
    """An integer > 0."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return f"a positive integer, got {type(value).__name__} {value!r}"
    return None


def _year(value: Any) -> str | None:
    """An integer year."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1900 <= value <= 2200:
        return f"an integer year such as 2014, got {type(value).__name__} {value!r}"
    return None


def _string(value: Any) -> str | None:
    """Any string."""
    return None if isinstance(value, str) else f"a string, got {type(value).__name__} {value!r}"


def _nonempty_string(value: Any) -> str | None:
    """A string with visible characters."""
    if not isinstance(value, str) or not value.strip():
        return f"a non-empty string, got {type(value).__name__} {value!r}"
    return None


def _one_of(choices: tuple[str, ...]) -> _Check:
    """A check accepting exactly one of ``choices``."""

    def check(value: Any) -> str | None:
        if value not in choices:
            return "one of " + ", ".join(repr(c) for c in choices) + f", got {value!r}"
        return None

    return check


# Per table: key -> (check, required).
_SCHEMA: dict[str, dict[str, tuple[_Check, bool]]] = {
    "profile": {
        "name": (_nonempty_string, True),
        "description": (_string, False),
        "model": (_one_of(MODELS), True),
    },
    "provenance": {
        "source": (_nonempty_string, True),
        "year": (_year, True),
        "technology_nm": (_positive_number, True),
        "precision": (_nonempty_string, True),
        "fidelity": (_one_of(FIDELITIES), True),
        "doi": (_string, False),
        "url": (_string, False),
        "notes": (_string, False),
    },
    "energy_pj": {key: (_energy, False) for key in ENERGY_KEYS},
    "memory_pj_per_byte": {key: (_energy, False) for key in MEMORY_KEYS},
    "crossbar": {key: (_positive_int if key == "xbar_size" else _energy, True) for key in CROSSBAR_KEYS},
}


def _check_table(data: Mapping[str, Any], table: str, path: str) -> dict[str, Any]:
    """Validate one table against :data:`_SCHEMA` and return a plain copy.

    Raises:
        ProfileFileError: naming ``table.key`` on an unknown key, a wrong value or a missing key.
    """
    value = data.get(table)
    if not isinstance(value, Mapping):
        raise ProfileFileError(path, table, f"a table [{table}], got {type(value).__name__}")
    schema = _SCHEMA[table]
    for key, item in value.items():
        if key not in schema:
            raise ProfileFileError(path, f"{table}.{key}", "an allowed key: " + ", ".join(schema))
        problem = schema[key][0](item)
        if problem:
            raise ProfileFileError(path, f"{table}.{key}", problem)
    for key, (_, required) in schema.items():
        if required and key not in value:
            raise ProfileFileError(path, f"{table}.{key}", "this required key (missing)")
    return dict(value)


def _as_floats(values: Mapping[str, Any], keep_int: tuple[str, ...] = ()) -> dict[str, float]:
    """Convert numeric values to float (except keys in ``keep_int``)."""
    return {k: (v if k in keep_int else float(v)) for k, v in values.items()}


def _check_structure(data: Mapping[str, Any], model: str, path: str) -> None:
    """Check which tables exist for the chosen model.

    Raises:
        ProfileFileError: unknown table, missing ``[energy_pj]``/``[crossbar]``, or a misplaced table.
    """
    for table in data:
        if table not in _TABLES:
            raise ProfileFileError(path, table, "a known table: " + ", ".join(f"[{t}]" for t in _TABLES))
    if model == "per_event":
        if not data.get("energy_pj"):
            raise ProfileFileError(
                path, "energy_pj", "a table with at least one of " + ", ".join(ENERGY_KEYS) + " (per_event)"
            )
        if "crossbar" in data:
            raise ProfileFileError(path, "crossbar", 'no [crossbar] table unless profile.model = "crossbar"')
    elif "crossbar" not in data:
        raise ProfileFileError(
            path, "crossbar", 'a [crossbar] table (required by profile.model = "crossbar")'
        )


def parse_profile(data: Mapping[str, Any], path: str = "<dict>") -> HardwareProfile:
    """Validate parsed TOML data and build a :class:`HardwareProfile`.

    Args:
        data: the parsed file (tables as dicts).
        path: file path (or label) used in error messages.

    Returns:
        The validated profile; energies are floats in pJ.

    Raises:
        ProfileFileError: on unknown tables/keys, wrong types, missing keys or negative energies.
    """
    path = str(path)
    head = _check_table(data, "profile", path)
    _check_structure(data, head["model"], path)
    provenance = _check_table(data, "provenance", path)
    optional = {t: _check_table(data, t, path) if t in data else {} for t in _TABLES[2:]}
    return HardwareProfile(
        name=head["name"],
        description=head.get("description", ""),
        model=head["model"],
        provenance=provenance,
        energy_pj=_as_floats(optional["energy_pj"]),
        memory_pj_per_byte=_as_floats(optional["memory_pj_per_byte"]),
        crossbar=_as_floats(optional["crossbar"], keep_int=("xbar_size",)),
        path=path,
    )


def _parse_text(text: str, path: str) -> HardwareProfile:
    """Parse TOML text and validate it.

    Raises:
        ProfileFileError: invalid TOML or an invalid profile.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileFileError(path, "", f"valid TOML ({exc})") from exc
    return parse_profile(data, path)


def list_profiles() -> list[str]:
    """Names of the shipped hardware profiles, sorted."""
    root = resources.files(_PACKAGE)
    return sorted(entry.name[: -len(".toml")] for entry in root.iterdir() if entry.name.endswith(".toml"))


def _load_shipped(name: str) -> HardwareProfile:
    """Load a shipped profile by name."""
    resource = resources.files(_PACKAGE).joinpath(f"{name}.toml")
    return _parse_text(resource.read_text(encoding="utf-8"), str(resource))


def _load_path(path: Path) -> HardwareProfile:
    """Load a user profile file.

    Raises:
        ProfileFileError: the file is missing/unreadable or invalid.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ProfileFileError(str(path), "", "an existing hardware-profile file (not found)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileFileError(str(path), "", f"a readable UTF-8 TOML file ({exc})") from exc
    return _parse_text(text, str(path))


def _looks_like_path(text: str) -> bool:
    """True when a string names a file rather than a shipped profile."""
    return text.endswith(".toml") or "/" in text or os.sep in text or Path(text).is_file()


def load_profile(profile: str | os.PathLike[str] | HardwareProfile) -> HardwareProfile:
    """Return a validated hardware profile.

    Args:
        profile: a shipped profile name (see :func:`list_profiles`), a path to a ``.toml`` file
            (``str`` or :class:`os.PathLike`), or a :class:`HardwareProfile` (returned as is).

    Returns:
        The profile.

    Raises:
        ProfileFileError: unknown name (the message lists the shipped names), missing file or
            invalid contents.
    """
    if isinstance(profile, HardwareProfile):
        return profile
    if isinstance(profile, os.PathLike):
        return _load_path(Path(profile))
    if not isinstance(profile, str):
        raise ProfileFileError(
            repr(profile), "", "a profile name, a path to a .toml file or a HardwareProfile"
        )
    shipped = list_profiles()
    if profile in shipped:
        return _load_shipped(profile)
    if _looks_like_path(profile):
        return _load_path(Path(profile))
    raise ProfileFileError(
        profile, "", "a shipped hardware profile (" + ", ".join(shipped) + ") or a .toml path"
    )
