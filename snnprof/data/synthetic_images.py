"""Deterministic separable image classes, written as CIFAR pickle batches or CIFAR10-DVS frames.

A stand-in for CIFAR-10/100 and CIFAR10-DVS (``docs/seed_models.md`` section 5.5) on which a
classifier can demonstrably learn. Each class ``k`` has a smooth prototype: a random
``grid x grid`` colour pattern per channel, bilinearly upsampled to ``S x S`` pixels. A sample is
its class prototype translated by up to ``shift`` pixels (circularly) plus Gaussian pixel noise of
std ``noise`` (on the [0, 1] scale), clipped and stored as ``uint8``. Event frames use the
prototype's first two channels as per-polarity event rates: counts ``~ Poisson(max_rate * proto)``
per pixel and frame.

* :func:`render_images` / :func:`render_frames` return the arrays;
* :func:`write_cifar` writes ``cifar-10-batches-py/`` (``data_batch_1..5``, ``test_batch``,
  ``batches.meta``) or ``cifar-100-python/`` (``train``, ``test``, ``meta``, fine and coarse labels),
  which the ``cifar10`` / ``cifar100`` readers read back;
* :func:`write_cifar10dvs` writes ``frames_num_<T>_split_by_number_normalization_None/<class>/
  cifar10_<class>_<i>.npz`` (``arr_0`` = float32 counts ``[T, 2, S, S]``) for the ``cifar10dvs`` reader.

Prototypes come from ``numpy.random.default_rng([seed, 0])``, samples of a split from
``default_rng([seed, stream])``: the same spec gives bit-identical arrays and files.
"""

from __future__ import annotations

import io
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from snnprof.data.cifar import CIFAR10_DIR, CIFAR100_DIR
from snnprof.data.cifar10dvs import DVS_CLASSES
from snnprof.io import atomic_write_bytes

__all__ = [
    "CIFAR10_NAMES",
    "TEST_STREAM",
    "TRAIN_STREAM",
    "ImageClassesSpec",
    "class_prototypes",
    "render_frames",
    "render_images",
    "write_cifar",
    "write_cifar10dvs",
]

logger = logging.getLogger(__name__)

#: CIFAR-10 class names (also the CIFAR10-DVS class folders).
CIFAR10_NAMES: tuple[str, ...] = DVS_CLASSES
#: Random streams of the train and test samples.
TRAIN_STREAM, TEST_STREAM = 1, 2


@dataclass(frozen=True)
class ImageClassesSpec:
    """Parameters of a separable image-classification set.

    Attributes:
        num_classes: K classes.
        image_size: S = H = W, pixels.
        channels: C image channels (3 for CIFAR; frames always use 2 polarities).
        grid: side of each prototype's random colour grid (lower = smoother classes).
        noise: std of the Gaussian pixel noise, on the [0, 1] scale.
        shift: maximum circular translation of a sample, pixels.
        max_rate: mean events per pixel and frame at prototype value 1 (frames only).
        seed: seed of every draw.
    """

    num_classes: int = 10
    image_size: int = 32
    channels: int = 3
    grid: int = 4
    noise: float = 0.2
    shift: int = 2
    max_rate: float = 0.6
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("num_classes", "image_size", "channels", "grid"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.noise < 0 or self.shift < 0 or self.max_rate <= 0:
            raise ValueError("noise and shift must be >= 0 and max_rate > 0")


def class_prototypes(spec: ImageClassesSpec, channels: int | None = None) -> np.ndarray:
    """Smooth class prototypes ``float32 [K, C, S, S]`` in [0, 1]."""
    c = spec.channels if channels is None else channels
    rng = np.random.default_rng([spec.seed, 0])
    grid = torch.from_numpy(rng.random((spec.num_classes, c, spec.grid, spec.grid), dtype=np.float32))
    size = (spec.image_size, spec.image_size)
    return torch.nn.functional.interpolate(grid, size=size, mode="bilinear", align_corners=False).numpy()


def _labels(num_classes: int, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """Balanced labels in a seeded random order."""
    return rng.permutation(np.repeat(np.arange(num_classes, dtype=np.int64), per_class))


def _shifted(protos: np.ndarray, labels: np.ndarray, shift: int, rng: np.random.Generator) -> np.ndarray:
    """Each sample's prototype, circularly translated by up to ``shift`` pixels."""
    out = protos[labels].copy()
    if shift:
        moves = rng.integers(-shift, shift + 1, size=(len(labels), 2))
        for i, (dy, dx) in enumerate(moves):
            out[i] = np.roll(out[i], (int(dy), int(dx)), axis=(-2, -1))
    return out


def render_images(spec: ImageClassesSpec, per_class: int, stream: int = TRAIN_STREAM) -> tuple[np.ndarray, np.ndarray]:
    """Noisy shifted prototypes as ``uint8 [N, C, S, S]`` images and ``int64 [N]`` labels (N = K x per_class).

    Args:
        spec: the class set.
        per_class: samples per class.
        stream: random stream (``TRAIN_STREAM``, ``TEST_STREAM`` or any other int).
    """
    rng = np.random.default_rng([spec.seed, stream])
    labels = _labels(spec.num_classes, per_class, rng)
    clean = _shifted(class_prototypes(spec), labels, spec.shift, rng)
    noisy = clean + spec.noise * rng.standard_normal(clean.shape, dtype=np.float32)
    return np.round(np.clip(noisy, 0.0, 1.0) * 255.0).astype(np.uint8), labels


def render_frames(
    spec: ImageClassesSpec, per_class: int, frames: int, stream: int = TRAIN_STREAM
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson event counts ``float32 [N, T, 2, S, S]`` and ``int64 [N]`` labels.

    Args:
        spec: the class set (its ``channels`` is ignored: 2 polarities).
        per_class: samples per class.
        frames: T, frames per sample.
        stream: random stream.
    """
    rng = np.random.default_rng([spec.seed, stream])
    labels = _labels(spec.num_classes, per_class, rng)
    rates = _shifted(class_prototypes(spec, channels=2), labels, spec.shift, rng) * spec.max_rate
    counts = rng.poisson(np.repeat(rates[:, None], frames, axis=1))
    return counts.astype(np.float32), labels


def _pickle_bytes(obj: dict[str, object]) -> bytes:
    buffer = io.BytesIO()
    pickle.dump(obj, buffer, protocol=2)
    return buffer.getvalue()


def _class_names(num_classes: int) -> list[str]:
    return list(CIFAR10_NAMES) if num_classes == len(CIFAR10_NAMES) else [f"class_{k}" for k in range(num_classes)]


def _batch(images: np.ndarray, labels: np.ndarray, title: str, variant: str, classes: int) -> dict[str, object]:
    """One batch dict in the CIFAR python layout (``str`` keys, as torchvision reads them)."""
    data = images.reshape(len(images), -1)
    names = [f"synthetic_{title.replace(' ', '_')}_{i}.png" for i in range(len(images))]
    if variant == "cifar10":
        return {"batch_label": title, "labels": labels.tolist(), "data": data, "filenames": names}
    coarse = labels * 20 // classes  # 20 superclasses of consecutive fine classes
    return {"batch_label": title, "fine_labels": labels.tolist(), "coarse_labels": coarse.tolist(),
            "data": data, "filenames": names}  # fmt: skip


def write_cifar(
    root: str | Path,
    spec: ImageClassesSpec,
    *,
    train_per_class: int,
    test_per_class: int,
    variant: str = "cifar10",
) -> Path:
    """Write the class set as CIFAR python pickle batches under ``root``; returns the batches folder.

    Args:
        root: parent folder (torchvision's ``root``); created if needed.
        spec: the class set (``channels`` must be 3).
        train_per_class: train samples per class (split over 5 batches for CIFAR-10).
        test_per_class: test samples per class.
        variant: ``cifar10`` (``data_batch_1..5``, ``test_batch``, ``batches.meta``) or
            ``cifar100`` (``train``, ``test``, ``meta``).
    """
    if variant not in ("cifar10", "cifar100") or spec.channels != 3:
        raise ValueError(f"variant must be cifar10/cifar100 with 3 channels, got {variant!r}, {spec.channels}")
    folder = Path(root) / (CIFAR10_DIR if variant == "cifar10" else CIFAR100_DIR)
    train = render_images(spec, train_per_class, TRAIN_STREAM)
    test = render_images(spec, test_per_class, TEST_STREAM)
    k, names = spec.num_classes, _class_names(spec.num_classes)
    files: dict[str, dict[str, object]] = {}
    if variant == "cifar10":
        for i, idx in enumerate(np.array_split(np.arange(len(train[1])), 5), start=1):
            files[f"data_batch_{i}"] = _batch(train[0][idx], train[1][idx], f"training batch {i} of 5", variant, k)
        files["test_batch"] = _batch(*test, "testing batch 1 of 1", variant, k)
        files["batches.meta"] = {"label_names": names, "num_cases_per_batch": int(np.ceil(len(train[1]) / 5)),
                                 "num_vis": 3 * spec.image_size**2}  # fmt: skip
    else:
        files["train"] = _batch(*train, "training batch 1 of 1", variant, k)
        files["test"] = _batch(*test, "testing batch 1 of 1", variant, k)
        files["meta"] = {"fine_label_names": names, "coarse_label_names": [f"superclass_{k}" for k in range(20)]}
    for name, obj in files.items():
        atomic_write_bytes(folder / name, _pickle_bytes(obj))
    logger.debug("wrote %s synthetic set to %s", variant, folder)
    return folder


def write_cifar10dvs(root: str | Path, spec: ImageClassesSpec, *, per_class: int, frames: int = 10) -> Path:
    """Write the class set as CIFAR10-DVS frame archives under ``root``; returns the frames folder.

    Files ``cifar10_<class>_<i>.npz`` (``i < per_class``; the reader's default split puts the first
    90 % in train) hold ``arr_0`` = float32 counts ``[T, 2, S, S]``. Needs ``spec.num_classes <= 10``.

    Args:
        root: parent folder; created if needed.
        spec: the class set.
        per_class: files per class.
        frames: T, frames per file.
    """
    if spec.num_classes > len(DVS_CLASSES):
        raise ValueError(f"CIFAR10-DVS has {len(DVS_CLASSES)} classes, got num_classes={spec.num_classes}")
    folder = Path(root) / f"frames_num_{frames}_split_by_number_normalization_None"
    counts, labels = render_frames(spec, per_class, frames, TRAIN_STREAM)
    seen = [0] * spec.num_classes
    for sample, label in zip(counts, labels, strict=True):
        name = DVS_CLASSES[int(label)]
        buffer = io.BytesIO()
        np.savez_compressed(buffer, sample)
        atomic_write_bytes(folder / name / f"cifar10_{name}_{seen[label]}.npz", buffer.getvalue())
        seen[label] += 1
    logger.debug("wrote %d synthetic CIFAR10-DVS files to %s", len(labels), folder)
    return folder
