"""Small synthetic data sets in each reader's real on-disk format (``snnprof data synth NAME --out DIR``).

One entry per registered reader: the writer of :mod:`snnprof.data.synthetic_images`,
``synthetic_flow``, ``synthetic_stereo`` or ``synthetic_scene`` with sizes that take seconds to
write, and the path to give the reader (``[input] path``). Everything is seeded: the same seed
writes the same files. The shipped ``configs/*_dataset.toml`` read what these write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SYNTHETIC_SETS", "SyntheticSet", "list_synthetic", "write_synthetic"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyntheticSet:
    """A synthetic stand-in for one reader's data set.

    Attributes:
        reader: the registered reader that reads it (``[input] reader``).
        description: what is written, one line.
        write: ``(out folder, seed) -> path to give the reader``.
    """

    reader: str
    description: str
    write: Callable[[Path, int], Path]


def _cifar(variant: str, classes: int, per_class: int) -> Callable[[Path, int], Path]:
    def write(out: Path, seed: int) -> Path:
        from snnprof.data.synthetic_images import ImageClassesSpec, write_cifar

        spec = ImageClassesSpec(num_classes=classes, seed=seed)
        return write_cifar(out, spec, train_per_class=per_class, test_per_class=per_class, variant=variant)

    return write


def _cifar10dvs(out: Path, seed: int) -> Path:
    from snnprof.data.synthetic_images import ImageClassesSpec, write_cifar10dvs

    return write_cifar10dvs(out, ImageClassesSpec(image_size=32, seed=seed), per_class=20, frames=8)


def _event_flow(out: Path, seed: int) -> Path:
    from snnprof.data.synthetic_flow import generate_dataset

    generate_dataset(out, count=2, seed=seed, height=64, width=64, num_events=20_000)
    return out


def _mvsec(out: Path, seed: int) -> Path:
    from snnprof.data.synthetic_stereo import SceneSpec, render_scene, write_mvsec

    data, _ = write_mvsec(render_scene(SceneSpec(height=64, width=96, frames=10, seed=seed)), out,
                          "synthetic_flying1")
    return data


def _blender(out: Path, seed: int) -> Path:
    from snnprof.data.synthetic_scene import SceneSpec, write_blender_scene

    return write_blender_scene(out, SceneSpec(image_size=32, train_views=8, val_views=2, test_views=4, seed=seed),
                               overwrite=True)


#: Reader name -> its synthetic set.
SYNTHETIC_SETS: dict[str, SyntheticSet] = {s.reader: s for s in (
    SyntheticSet("cifar10", "CIFAR-10 python batches: 10 classes x 10 train + 10 test images, 32x32",
                 _cifar("cifar10", 10, 10)),
    SyntheticSet("cifar100", "CIFAR-100 python batches: 100 classes x 2 train + 2 test images, 32x32",
                 _cifar("cifar100", 100, 2)),
    SyntheticSet("cifar10dvs", "CIFAR10-DVS frame archives: 10 classes x 20 files of 8 event-count frames, 32x32",
                 _cifar10dvs),
    SyntheticSet("event_flow_h5", "event_flow h5: 2 sequences of 20k events with ground-truth flow, 64x64",
                 _event_flow),
    SyntheticSet("mvsec", "MVSEC hdf5: one stereo sequence of 10 depth maps with events, 64x96", _mvsec),
    SyntheticSet("blender", "Blender/Synthetic-NeRF scene: 8 train, 2 val, 4 test RGBA views, 32x32", _blender),
)}


def list_synthetic() -> list[str]:
    """Readers with a synthetic set, sorted."""
    return sorted(SYNTHETIC_SETS)


def write_synthetic(name: str, out: str | Path, seed: int = 0) -> Path:
    """Write the synthetic set of reader ``name`` under ``out``; returns the path the reader takes.

    Raises:
        KeyError: ``name`` has no synthetic set (the message lists those that do).
    """
    if name not in SYNTHETIC_SETS:
        raise KeyError(f"no synthetic data set for {name!r}; expected one of: {', '.join(list_synthetic())}")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = SYNTHETIC_SETS[name].write(folder, seed)
    logger.debug("wrote the synthetic %s set to %s", name, path)
    return path
