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

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from snnprof.errors import ProfileFileError
from snnprof.validation import KeyProblem, StrictModel, validate

__all__ = [
    "CROSSBAR_KEYS",
    "DEFAULT_PROFILES",
    "ENERGY_KEYS",
    "FIDELITIES",
    "MEMORY_KEYS",
    "MODELS",
    "HardwareProfile",
    "ProfileFile",
    "list_profiles",
    "load_profile",
    "parse_profile",
]

_PACKAGE = "snnprof.hardware_profiles"

#: The hardware profiles priced when a config, a command or an API call names none.
DEFAULT_PROFILES: tuple[str, ...] = ("cmos45nm_fp32",)

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
# The file's schema (pydantic models; errors become ProfileFileError naming file and key)
# ---------------------------------------------------------------------------------------------

#: The largest plausible price of one event or byte: 1 J (1e12 pJ).
MAX_PRICE_PJ = 1e12
#: One price: a finite, non-negative energy in pJ, at most :data:`MAX_PRICE_PJ`.
Price = Annotated[float, Field(ge=0, le=MAX_PRICE_PJ)]
NonEmpty = Annotated[str, Field(min_length=1, max_length=4000, pattern=r"\S")]
#: A profile name: letters, digits and ``_ . + -`` (it is printed in terminals and used as a key).
ProfileName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")]


class _Head(StrictModel):
    name: ProfileName
    description: str = ""
    model: Literal["per_event", "crossbar"]


class _Provenance(StrictModel):
    source: NonEmpty
    year: Annotated[int, Field(ge=1900, le=2200)]
    technology_nm: Annotated[int | float, Field(gt=0)]
    precision: NonEmpty
    fidelity: Literal["measured", "simulated", "derived"]
    doi: str | None = None
    url: str | None = None
    notes: str | None = None


class _Energy(StrictModel):
    mac: Price | None = None
    ac: Price | None = None
    neuron_update: Price | None = None
    spike: Price | None = None


class _Memory(StrictModel):
    weight_read: Price | None = None
    input_read: Price | None = None
    output_write: Price | None = None
    state_read: Price | None = None
    state_write: Price | None = None


class _Crossbar(StrictModel):
    xbar_size: Annotated[int, Field(gt=0, le=1 << 20)]
    xbar_ar_pj: Price
    tile_buffer_pj: Price
    temp_buffer_pj: Price
    sub_pj: Price
    adc_pj: Price
    htree_pj: Price
    mux_pj: Price
    mem_fetch_pj: Price
    neuron_pj: Price


class ProfileFile(StrictModel):
    """A hardware-profile file as written (see the module docstring for the format)."""

    profile: _Head
    provenance: _Provenance
    energy_pj: _Energy | None = None
    memory_pj_per_byte: _Memory | None = None
    crossbar: _Crossbar | None = None

    @model_validator(mode="after")
    def _tables_fit_the_model(self) -> ProfileFile:
        if self.profile.model == "per_event":
            if self.energy_pj is None or not _present(self.energy_pj):
                raise KeyProblem("energy_pj", "expected a table with at least one of "
                                 + ", ".join(ENERGY_KEYS) + " (per_event)")
            if self.crossbar is not None:
                raise KeyProblem("crossbar", 'expected no [crossbar] table unless profile.model = "crossbar"')
        elif self.crossbar is None:
            raise KeyProblem("crossbar", 'expected a [crossbar] table (required by profile.model = "crossbar")')
        return self


def _present(table: StrictModel | None) -> dict[str, Any]:
    """The keys a table sets (``None`` = not given)."""
    return {} if table is None else table.model_dump(exclude_none=True)


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
    doc = validate(ProfileFile, dict(data), path=path, error=ProfileFileError)
    crossbar = _present(doc.crossbar)
    return HardwareProfile(
        name=doc.profile.name,
        description=doc.profile.description,
        model=doc.profile.model,
        provenance=_present(doc.provenance),
        energy_pj={k: float(v) for k, v in _present(doc.energy_pj).items()},
        memory_pj_per_byte={k: float(v) for k, v in _present(doc.memory_pj_per_byte).items()},
        crossbar={k: (v if k == "xbar_size" else float(v)) for k, v in crossbar.items()},
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
        raise ProfileFileError(path, "", f"expected valid TOML ({exc})") from exc
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
        raise ProfileFileError(str(path), "", "expected an existing hardware-profile file (not found)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileFileError(str(path), "", f"expected a readable UTF-8 TOML file ({exc})") from exc
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
            repr(profile), "", "expected a profile name, a path to a .toml file or a HardwareProfile"
        )
    shipped = list_profiles()
    if profile in shipped:
        return _load_shipped(profile)
    if _looks_like_path(profile):
        return _load_path(Path(profile))
    raise ProfileFileError(
        profile, "", "expected a shipped hardware profile (" + ", ".join(shipped) + ") or a .toml path"
    )
