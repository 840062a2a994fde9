"""CIFAR-10 / CIFAR-100 "python version" pickle batches (readers ``cifar10`` and ``cifar100``).

On-disk layout (what ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz`` unpack to, and what
torchvision's ``root`` holds)::

    cifar-10-batches-py/  data_batch_1 .. data_batch_5, test_batch, batches.meta
    cifar-100-python/     train, test, meta

Each batch is a pickled dict with ``data`` (``uint8 [N, 3072]``: the red, green and blue 32x32
planes of each image, row-major) and ``labels`` (CIFAR-10) or ``fine_labels``/``coarse_labels``
(CIFAR-100); the meta file holds ``label_names`` / ``fine_label_names``. Keys may be ``bytes``
(original Python-2 files read with ``encoding='bytes'``) or ``str``. Files are unpickled with a
restricted unpickler that only admits plain containers and numpy arrays.

Items are ``(image, label)``: ``float32 [3, S, S]`` normalised with OTTT's mean
``(0.4914, 0.4822, 0.4465)`` and std ``(0.2023, 0.1994, 0.2010)`` (the same for CIFAR-100, as in
the seed's ``train_cifar.py``), and the integer label. Augmentation (random crop, Cutout, flip)
belongs to the training loop.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from snnprof.data import register_reader
from snnprof.errors import ConfigError

__all__ = [
    "CIFAR100_DIR",
    "CIFAR10_DIR",
    "CIFAR_MEAN",
    "CIFAR_STD",
    "CifarArrays",
    "CifarDataset",
    "load_cifar",
    "load_pickle",
    "normalize_images",
    "read_cifar10",
    "read_cifar100",
]

logger = logging.getLogger(__name__)

#: OTTT's CIFAR normalisation (per RGB channel, on [0, 1] pixels).
CIFAR_MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
CIFAR_STD: tuple[float, float, float] = (0.2023, 0.1994, 0.2010)

CIFAR10_DIR = "cifar-10-batches-py"
CIFAR100_DIR = "cifar-100-python"

#: Per variant: folder, train files, test files, meta file, label key, label-names key.
_LAYOUTS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], str, str, str]] = {
    "cifar10": (
        CIFAR10_DIR,
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "batches.meta",
        "labels",
        "label_names",
    ),
    "cifar100": (CIFAR100_DIR, ("train",), ("test",), "meta", "fine_labels", "fine_label_names"),
}

_SAFE_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }
)


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler admitting only numpy arrays and builtin containers (CIFAR batches need no more)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")


def load_pickle(path: Path) -> dict[str, Any]:
    """Read one CIFAR pickle as a dict with ``str`` keys.

    Raises:
        ConfigError: the file is missing, not a pickle, or not a dict.
    """
    if not path.is_file():
        raise ConfigError(str(path), "", "CIFAR batch file not found")
    try:
        with path.open("rb") as handle:
            obj = _SafeUnpickler(handle, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as err:
        raise ConfigError(str(path), "", f"not a CIFAR python pickle batch ({err})") from None
    if not isinstance(obj, dict):
        raise ConfigError(str(path), "", f"expected a pickled dict, got {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def _strings(values: Any) -> list[str]:
    return [v.decode("latin1") if isinstance(v, bytes) else str(v) for v in values]


@dataclass(frozen=True)
class CifarArrays:
    """Raw CIFAR images and labels of one split.

    Attributes:
        images: ``uint8 [N, 3, S, S]`` pixels.
        labels: ``int64 [N]`` class indices.
        class_names: label names from the meta file (empty when absent).
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]


def _batch_arrays(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(uint8 [N, 3, S, S], int64 [N])`` of one batch file, with shape checks."""
    batch = load_pickle(path)
    for key in ("data", label_key):
        if key not in batch:
            raise ConfigError(str(path), key, f"missing key; expected a CIFAR batch with 'data' and '{label_key}'")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[label_key], dtype=np.int64).reshape(-1)
    side = int(round((data.shape[1] / 3) ** 0.5)) if data.ndim == 2 else 0
    if data.ndim != 2 or data.dtype != np.uint8 or 3 * side * side != data.shape[1]:
        got = f"{data.dtype} {list(data.shape)}"
        raise ConfigError(str(path), "data", f"expected uint8 [N, 3*S*S] (3072 for 32x32), got {got}")
    if labels.shape[0] != data.shape[0]:
        raise ConfigError(str(path), label_key, f"expected {data.shape[0]} labels, got {labels.shape[0]}")
    return data.reshape(-1, 3, side, side), labels


def _folder(path: Path, variant: str) -> Path:
    """The batches folder: ``path`` itself or ``path/<cifar folder>``."""
    sub = path / _LAYOUTS[variant][0]
    if sub.is_dir():
        return sub
    if path.is_dir():
        return path
    expected = f"{_LAYOUTS[variant][0]}/ or its parent"
    raise ConfigError(str(path), "", f"{variant} dataset folder not found; expected {expected}")


def load_cifar(path: Path, variant: str = "cifar10", split: str = "train") -> CifarArrays:
    """Load one split of CIFAR-10 or CIFAR-100 from its python-pickle batches.

    Args:
        path: the batches folder or its parent (torchvision's ``root``).
        variant: ``cifar10`` or ``cifar100``.
        split: ``train`` or ``test``.

    Raises:
        ConfigError: missing folder/files, wrong format, missing keys, or inconsistent shapes.
    """
    if variant not in _LAYOUTS:
        raise ValueError(f"variant must be one of {sorted(_LAYOUTS)}, got {variant!r}")
    if split not in ("train", "test"):
        raise ConfigError(str(path), "split", f"expected 'train' or 'test', got {split!r}")
    _, train, test, meta_name, label_key, names_key = _LAYOUTS[variant]
    folder = _folder(Path(path), variant)
    parts = [_batch_arrays(folder / name, label_key) for name in (train if split == "train" else test)]
    if len({p[0].shape[1:] for p in parts}) != 1:
        raise ConfigError(str(folder), "data", "batches have different image sizes")
    meta_path = folder / meta_name
    names = tuple(_strings(load_pickle(meta_path).get(names_key, []))) if meta_path.is_file() else ()
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    logger.debug("loaded %d %s %s images from %s", len(labels), variant, split, folder)
    return CifarArrays(images=images, labels=labels, class_names=names)


def normalize_images(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """``(uint8 pixels / 255 - mean) / std`` per channel, as float32 (``[..., C, H, W]``)."""
    m = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return (images.to(torch.float32) / 255.0 - m) / s


class CifarDataset(Dataset):
    """Normalised CIFAR images ``float32 [3, S, S]`` and integer labels.

    Args:
        arrays: the raw split.
        image_size: output side S in pixels (resized with antialiased bilinear interpolation when
            it differs from the stored side; 32 = native).
        normalize: apply OTTT's mean/std (else pixels in [0, 1]).
    """

    def __init__(self, arrays: CifarArrays, image_size: int | None = None, normalize: bool = True) -> None:
        self.arrays = arrays
        self.class_names = arrays.class_names
        self.image_size = int(image_size) if image_size else int(arrays.images.shape[-1])
        self.normalize = bool(normalize)
        self.targets = torch.from_numpy(arrays.labels)

    def __len__(self) -> int:
        return int(self.arrays.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        pixels = torch.from_numpy(np.ascontiguousarray(self.arrays.images[index]))
        image = normalize_images(pixels, CIFAR_MEAN, CIFAR_STD) if self.normalize else pixels.float() / 255.0
        if image.shape[-1] != self.image_size:
            size = (self.image_size, self.image_size)
            image = F.interpolate(image[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
        return image, int(self.arrays.labels[index])


def _read(path: Path, variant: str, split: str, image_size: int | None, normalize: bool) -> CifarDataset:
    if image_size is not None and int(image_size) < 1:
        raise ConfigError(str(path), "image_size", f"expected a positive side in pixels, got {image_size!r}")
    return CifarDataset(load_cifar(path, variant, split), image_size=image_size, normalize=normalize)


@register_reader("cifar10")
def read_cifar10(
    path: Path, split: str = "test", image_size: int | None = None, normalize: bool = True
) -> CifarDataset:
    """CIFAR-10 python batches (``data_batch_1..5`` / ``test_batch``); items ``(float32 [3, S, S], label)``.

    Args:
        path: ``cifar-10-batches-py`` or its parent.
        split: ``train`` (50k) or ``test`` (10k).
        image_size: resize to S x S (default: stored size, 32).
        normalize: OTTT's mean/std normalisation.
    """
    return _read(path, "cifar10", split, image_size, normalize)


@register_reader("cifar100")
def read_cifar100(
    path: Path, split: str = "test", image_size: int | None = None, normalize: bool = True
) -> CifarDataset:
    """CIFAR-100 python batches (``train`` / ``test``, fine labels); items ``(float32 [3, S, S], label)``.

    Args:
        path: ``cifar-100-python`` or its parent.
        split: ``train`` (50k) or ``test`` (10k).
        image_size: resize to S x S (default: stored size, 32).
        normalize: OTTT's mean/std normalisation (the seed uses CIFAR-10's for CIFAR-100 too).
    """
    return _read(path, "cifar100", split, image_size, normalize)
