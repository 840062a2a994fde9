"""Deterministic mutations of small valid configs and hardware profiles (types, ranges, keys, encodings, paths).

A *case* is a config file (and, for some, a profile file or a path it names) written into a fresh
folder. :func:`make_case` builds case ``i`` of a seeded stream, so ``(seed, i)`` always gives the
same files.
"""

from __future__ import annotations

import copy
import math
import os
import random
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

#: Small valid configs (each counts in well under a second on one core).
BASE_CONFIGS: dict[str, str] = {
    "sj": """\
[model]
name = "sj_spiking_cnn"
kwargs = { in_channels = 2, num_classes = 10, image_size = 16 }
[input]
source = "synthetic"
batch_size = 2
time_steps = 2
seed = 0
kwargs = { image_size = 16 }
[count]
sop_convention = "exact"
count_weighting = "value"
overrides = { "conv1" = "dense" }
strict = false
[energy]
profiles = ["cmos45nm_fp32", "mine.toml"]
""",
    "firenet": """\
[model]
name = "lif_firenet"
kwargs = { base_channels = 4, num_bins = 2 }
[input]
batch_size = 1
time_steps = 2
seed = 3
kwargs = { height = 32, width = 32, window = 200 }
[energy]
profiles = ["loihi", "spikesim_rram"]
""",
    "ottt": """\
[model]
name = "ottt_vgg11_ws"
kwargs = { num_classes = 10, width = 0.125 }
[input]
batch_size = 1
time_steps = 2
seed = 1
kwargs = { image_size = 32 }
[energy]
profiles = ["cmos45nm_fp32_mem"]
""",
    "dvgo": """\
[model]
name = "dvgo_ann"
kwargs = { num_voxels = 4096, chunk = 64, init = "scene", seed = 0 }
[input]
batch_size = 1
time_steps = 1
seed = 0
kwargs = { image_size = 6, camera_angle_x = 0.69 }
[energy]
profiles = ["cmos45nm_fp32"]
""",
}

PROFILE = (REPO / "snnprof" / "hardware_profiles" / "cmos45nm_fp32.toml").read_text(encoding="utf-8").replace(
    'name = "cmos45nm_fp32"', 'name = "mine"')

#: Values a mutation can put anywhere.
VALUES: tuple[Any, ...] = (
    0, -1, 1, 3, 7, 2**31, 2**63 - 1, 2**64, 2**70, -(2**63), 10**6, 10**9, 10**12,
    0.0, -0.5, 1.5, 1e308, -1e308, math.inf, -math.inf, math.nan, 1e-320,
    "", "x", "cmos45nm_fp32", "dense", "synthetic", "dataset", "\x1b[31mred\x1b[0m", "[bold]markup[/bold]",
    "a\nb", "../../etc/passwd", "é" * 3,
    True, False, [], [1, 2], ["loihi"], {}, {"a": 1}, {"conv1": "spike"},
)
#: Keys an unknown-key mutation adds, and known keys a value mutation may target even if absent.
KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "model": ("name", "kwargs", "checkpoint"),
    "input": ("source", "batch_size", "time_steps", "seed", "kwargs", "path", "reader"),
    "count": ("sop_convention", "count_weighting", "overrides", "strict"),
    "energy": ("profiles", "host_profile"),
    "train": ("epochs", "lr"),
}
PATH_KEYS: tuple[tuple[str, str], ...] = (("model", "checkpoint"), ("input", "path"), ("energy", "profiles"),
                                          ("energy", "host_profile"))
PATH_KINDS: tuple[str, ...] = ("missing", "directory", "devnull", "garbage", "empty", "symlink_dir", "symlink_loop",
                               "config_as_file", "unreadable")
PROFILE_TABLES: dict[str, tuple[str, ...]] = {
    "profile": ("name", "description", "model"),
    "provenance": ("source", "year", "technology_nm", "precision", "fidelity", "doi", "url", "notes"),
    "energy_pj": ("mac", "ac", "neuron_update", "spike"),
    "memory_pj_per_byte": ("weight_read", "input_read", "output_write", "state_read", "state_write"),
    "crossbar": ("xbar_size", "adc_pj"),
}


# --------------------------------------------------------------------------- a tiny TOML writer


def _float(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def _string(value: str) -> str:
    out = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in out) + '"'


_WRITERS: tuple[tuple[type, Any], ...] = (
    (bool, lambda v: "true" if v else "false"),
    (float, _float),
    (int, str),
    (str, _string),
)


def _scalar(value: Any) -> str:
    if isinstance(value, Nested):
        return value.toml()
    for kind, write in _WRITERS:
        if isinstance(value, kind):
            return write(value)
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if not isinstance(value, dict):
        raise TypeError(type(value))
    return "{ " + ", ".join(f"{_key(k)} = {_scalar(v)}" for k, v in value.items()) + " }" if value else "{}"


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else _scalar(key)


def dumps(data: dict[str, Any]) -> str:
    """TOML text of ``data`` (top-level tables of scalars and inline tables)."""
    lines = [f"{_key(name)} = {_scalar(value)}" for name, value in data.items() if not isinstance(value, dict)]
    for name, table in data.items():
        if isinstance(table, dict):
            lines.append(f"[{_key(name)}]")
            lines += [f"{_key(k)} = {_scalar(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- mutations


@dataclass
class Case:
    """One mutated input: its folder, the config to run, and what was done to it."""

    folder: Path
    config: Path
    description: str


@dataclass(frozen=True)
class Nested:
    """An inline table nested ``depth`` levels deep (written iteratively: Python recursion has a limit)."""

    depth: int

    def toml(self) -> str:
        """``{ a = { a = ... { x = 1 } ... } }``."""
        return "{ a = " * self.depth + "{ x = 1 }" + " }" * self.depth


def _make_path(kind: str, folder: Path, suffix: str = "") -> str:
    """A file-system object of ``kind`` inside ``folder``; returns its path as a config would name it."""
    target = folder / f"p_{kind}{suffix}"
    if kind == "directory":
        target.mkdir()
    elif kind == "devnull":
        return os.devnull
    elif kind == "garbage":
        target.write_bytes(bytes(range(256)) * 4)
    elif kind == "empty":
        target.write_bytes(b"")
    elif kind == "symlink_dir":
        (folder / "real_dir").mkdir()
        target.symlink_to(folder / "real_dir")
    elif kind == "symlink_loop":
        target.symlink_to(target)
    elif kind == "config_as_file":
        target.write_text(BASE_CONFIGS["sj"], encoding="utf-8")
    elif kind == "unreadable":
        target.write_text("secret", encoding="utf-8")
        target.chmod(0)
    return target.name if kind != "missing" else f"no/such/file{suffix}"


def _mutate_value(data: dict[str, Any], rng: random.Random) -> str:
    table = rng.choice(list(KNOWN_KEYS))
    key = rng.choice(KNOWN_KEYS[table])
    value = copy.deepcopy(rng.choice(VALUES))
    section = data.setdefault(table, {})
    if not isinstance(section, dict):
        return "noop"
    if key in ("kwargs", "overrides") and isinstance(section.get(key), dict) and section[key] and rng.random() < 0.6:
        sub = rng.choice(list(section[key]))
        section[key][sub] = value
        return f"{table}.{key}.{sub} = {value!r}"
    section[key] = value
    return f"{table}.{key} = {value!r}"


def _mutate_structure(data: dict[str, Any], rng: random.Random) -> str:
    choice = rng.randrange(6)
    table = rng.choice(list(data))
    if choice == 0 and isinstance(data[table], dict) and data[table]:
        key = rng.choice(list(data[table]))
        del data[table][key]
        return f"del {table}.{key}"
    if choice == 1:
        del data[table]
        return f"del [{table}]"
    if choice == 2 and isinstance(data[table], dict):
        data[table][rng.choice(["bogus", "Batch_size", "profile", "kwarg"])] = 1
        return f"unknown key in [{table}]"
    if choice == 3:
        data[rng.choice(["extra", "Model", "energies"])] = {"x": 1}
        return "unknown section"
    if choice == 4:
        data[table] = rng.choice([1, "model", [1], True])
        return f"[{table}] is not a table"
    depth = rng.choice([3, 50, 400, 3000])
    data.setdefault("model", {})
    if isinstance(data["model"], dict):
        data["model"]["kwargs"] = Nested(depth)
    return f"model.kwargs nested {depth} deep"


def _mutate_path(data: dict[str, Any], folder: Path, rng: random.Random) -> str:
    table, key = rng.choice(PATH_KEYS)
    kind = rng.choice(PATH_KINDS)
    name = _make_path(kind, folder, ".toml" if "profile" in key else ".pt" if key == "checkpoint" else "")
    section = data.setdefault(table, {})
    if not isinstance(section, dict):
        return "noop"
    if key == "profiles":
        section[key] = ["cmos45nm_fp32", name]
    else:
        section[key] = name
    if key == "path":
        section.update({"source": "dataset", "reader": rng.choice(["cifar10", "mvsec", "blender"])})
    return f"{table}.{key} -> {kind}"


def _mutate_profile(folder: Path, rng: random.Random) -> str:
    data = tomllib.loads(PROFILE)
    table = rng.choice(list(PROFILE_TABLES))
    key = rng.choice(PROFILE_TABLES[table])
    roll = rng.random()
    if roll < 0.15:
        data.pop(table, None)
        text, what = dumps(data), f"profile: del [{table}]"
    elif roll < 0.3 and isinstance(data.get(table), dict):
        data[table].pop(key, None)
        text, what = dumps(data), f"profile: del {table}.{key}"
    elif roll < 0.4:
        text, what = PROFILE.replace('name = "mine"', 'name = "cmos45nm_fp32"'), "profile: shipped name"
    elif roll < 0.45:
        text, what = dumps({**data, "profile": {**data["profile"], "model": "crossbar"}}), "profile: crossbar w/o table"
    else:
        value = copy.deepcopy(rng.choice(VALUES))
        data.setdefault(table, {})[key] = value
        text, what = dumps(data), f"profile: {table}.{key} = {value!r}"
    (folder / "mine.toml").write_text(text, encoding="utf-8")
    return what


def _encode(text: str, rng: random.Random) -> tuple[bytes, str]:
    roll = rng.randrange(5)
    if roll == 0:
        return text.encode("utf-16"), "utf-16"
    if roll == 1:
        return b"\xef\xbb\xbf" + text.encode(), "utf-8 BOM"
    if roll == 2:
        return text.encode() + b"\xff\xfe bad", "invalid utf-8"
    if roll == 3:
        return text.encode().replace(b"\n", b"\x00\n", 1), "NUL byte"
    return text.encode()[: max(1, len(text) // 2)], "truncated"


def make_case(seed: int, index: int, root: Path) -> Case:
    """Case ``index`` of the stream seeded by ``seed``, written under ``root``."""
    rng = random.Random(seed * 1_000_003 + index)
    folder = root / f"case{index:05d}"
    folder.mkdir(parents=True)
    base = rng.choice(sorted(BASE_CONFIGS))
    data = tomllib.loads(BASE_CONFIGS[base])
    (folder / "mine.toml").write_text(PROFILE, encoding="utf-8")
    what = [base]
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        roll = rng.random()
        if roll < 0.45:
            what.append(_mutate_value(data, rng))
        elif roll < 0.65:
            what.append(_mutate_structure(data, rng))
        elif roll < 0.8:
            what.append(_mutate_path(data, folder, rng))
        else:
            what.append(_mutate_profile(folder, rng))
    text = dumps(data)
    config = folder / "run.toml"
    if rng.random() < 0.06:
        raw, how = _encode(text, rng)
        config.write_bytes(raw)
        what.append(f"encoding: {how}")
    else:
        config.write_text(text, encoding="utf-8")
    return Case(folder, config, "; ".join(what))
