"""CIFAR10-DVS frame archives (reader ``cifar10dvs``), as OTTT / SpikingJelly write them.

Layout (events integrated into ``T`` frames split by event number)::

    <root>/frames_num_<T>_split_by_number_normalization_None/   (OTTT's datasets/cifar10_dvs.py)
    <root>/frames_number_<T>_split_by_number/                   (SpikingJelly's CIFAR10DVS)
        airplane/  cifar10_airplane_0.npz ... cifar10_airplane_999.npz
        automobile/ ... truck/

Each ``.npz`` holds ``arr_0`` (or SpikingJelly's ``frames``): event counts ``[T, 2, H, W]``
(polarity channels, 128x128 for the real data). ``path`` may be the frames folder itself or a root
holding exactly one frames folder (or several, with ``frames`` choosing ``T``). Per class, files
are ordered by their trailing index; the first ``split_ratio`` (90 %) are the train split.

Items follow the seed's test transform (``train_cifar10dvs.py``): each frame goes through
torchvision's ``ToPILImage`` (float -> ``uint8(255 * x)``, which wraps modulo 256: a count of 1
stays 1.0, 2 becomes 254/255), a resize to ``image_size`` (48) and ``Normalize((0.2728, 0.1295),
(0.2225, 0.1290))``. ``values="counts"`` skips the wrap and keeps raw counts. Returned as
``(float32 [T, 2, S, S], label)``.
"""

from __future__ import annotations

import logging
import re
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from snnprof.data import register_reader
from snnprof.errors import ConfigError

__all__ = [
    "DVS_CLASSES",
    "DVS_MEAN",
    "DVS_STD",
    "Cifar10DVSDataset",
    "frames_folder",
    "index_files",
    "load_frames",
    "pil_roundtrip",
    "read_cifar10dvs",
    "transform_frames",
]

logger = logging.getLogger(__name__)

#: Class folders in label order (OTTT's ``labels_dict``).
DVS_CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
#: OTTT's per-polarity normalisation of the 48x48 frames.
DVS_MEAN: tuple[float, float] = (0.2728, 0.1295)
DVS_STD: tuple[float, float] = (0.2225, 0.1290)

_FRAMES_DIR = re.compile(r"^frames_(?:num|number)_(\d+)_split_by_\w+$")
_INDEX = re.compile(r"_(\d+)\.npz$")
_LAYOUT = "a frames_num_<T>_split_by_number[_normalization_None]/ folder with one sub-folder per class of .npz files"


def frames_folder(path: Path, frames: int | None = None) -> Path:
    """Locate the frames folder: ``path`` itself (it has class folders) or its one ``frames_*`` child.

    Raises:
        ConfigError: nothing (or several candidates) found.
    """
    if not path.is_dir():
        raise ConfigError(str(path), "", f"CIFAR10-DVS folder not found; expected {_LAYOUT}")
    if any((path / name).is_dir() for name in DVS_CLASSES):
        return path
    found = sorted(p for p in path.iterdir() if p.is_dir() and _FRAMES_DIR.match(p.name))
    if frames is not None:
        found = [p for p in found if int(_FRAMES_DIR.match(p.name).group(1)) == int(frames)]  # type: ignore[union-attr]
    if len(found) != 1:
        what = ", ".join(p.name for p in found) or "none"
        raise ConfigError(str(path), "frames", f"expected exactly one frames folder (found {what}); {_LAYOUT}")
    return found[0]


def _file_index(path: Path) -> tuple[int, str]:
    match = _INDEX.search(path.name)
    return (int(match.group(1)) if match else -1, path.name)


def _class_files(folder: Path) -> list[list[Path]]:
    """Per class (label order), its ``.npz`` files sorted by trailing index."""
    return [sorted((folder / name).glob("*.npz"), key=_file_index) if (folder / name).is_dir() else []
            for name in DVS_CLASSES]  # fmt: skip


def index_files(folder: Path, split: str, split_ratio: float) -> list[tuple[Path, int]]:
    """``(file, label)`` of one split: per class, the first ``split_ratio`` of the sorted files are train.

    Raises:
        ConfigError: bad split/ratio, or no ``.npz`` files at all.
    """
    if split not in ("train", "test"):
        raise ConfigError(str(folder), "split", f"expected 'train' or 'test', got {split!r}")
    if not 0.0 < float(split_ratio) < 1.0:
        raise ConfigError(str(folder), "split_ratio", f"expected a fraction in (0, 1), got {split_ratio!r}")
    per_class = _class_files(folder)
    first = next((files[0] for files in per_class if files), None)
    if first is None:
        raise ConfigError(str(folder), "", f"no .npz frame files in the class folders; expected {_LAYOUT}")
    load_frames(first)  # fail early, naming the file, on a broken archive
    items: list[tuple[Path, int]] = []
    for label, files in enumerate(per_class):
        cut = int(split_ratio * len(files))
        items += [(f, label) for f in (files[:cut] if split == "train" else files[cut:])]
    return items


def load_frames(path: Path) -> np.ndarray:
    """Event counts ``[T, 2, H, W]`` from one archive (key ``arr_0`` or ``frames``).

    Raises:
        ConfigError: unreadable file, missing key or wrong shape.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            key = next((k for k in ("arr_0", "frames") if k in archive.files), None)
            if key is None:
                raise ConfigError(str(path), "arr_0", f"missing key; expected arr_0 (or frames), found {archive.files}")
            frames = archive[key]
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise ConfigError(str(path), "", f"not a readable .npz frame archive ({err})") from None
    if frames.ndim != 4 or frames.shape[1] != 2:
        raise ConfigError(str(path), key, f"expected frames [T, 2, H, W], got shape {list(frames.shape)}")
    return frames


def pil_roundtrip(frames: torch.Tensor) -> torch.Tensor:
    """Apply torchvision's ``ToPILImage`` then ``ToTensor`` on float frames: ``(trunc(255 x) mod 256) / 255``."""
    return torch.remainder(torch.trunc(frames * 255.0), 256.0) / 255.0


def transform_frames(
    frames: torch.Tensor, image_size: int, values: str = "seed", normalize: bool = True
) -> torch.Tensor:
    """The seed's test transform of ``[T, 2, H, W]`` counts: PIL round trip, resize, normalise."""
    x = pil_roundtrip(frames) if values == "seed" else frames
    if x.shape[-1] != image_size or x.shape[-2] != image_size:
        x = torch.nn.functional.interpolate(
            x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False
        )
    if normalize:
        mean = torch.tensor(DVS_MEAN, dtype=x.dtype).view(1, 2, 1, 1)
        std = torch.tensor(DVS_STD, dtype=x.dtype).view(1, 2, 1, 1)
        x = (x - mean) / std
    return x


class Cifar10DVSDataset(Dataset):
    """CIFAR10-DVS frames ``float32 [T, 2, S, S]`` and labels (files read lazily).

    Args:
        items: ``(file, label)`` pairs.
        image_size: output side S, pixels.
        values: ``seed`` (ToPILImage wrap, the seed's behaviour) or ``counts`` (raw counts).
        normalize: OTTT's per-polarity mean/std.
    """

    def __init__(
        self, items: list[tuple[Path, int]], image_size: int = 48, values: str = "seed", normalize: bool = True
    ) -> None:
        self.items = list(items)
        self.image_size, self.values, self.normalize = int(image_size), values, bool(normalize)
        self.targets = torch.tensor([label for _, label in self.items], dtype=torch.int64)
        self.class_names = DVS_CLASSES

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[index]
        frames = torch.from_numpy(load_frames(path).astype(np.float32))
        return transform_frames(frames, self.image_size, self.values, self.normalize), label


@register_reader("cifar10dvs")
def read_cifar10dvs(
    path: Path,
    split: str = "test",
    *,
    split_ratio: float = 0.9,
    image_size: int = 48,
    frames: int | None = None,
    values: str = "seed",
    normalize: bool = True,
) -> Cifar10DVSDataset:
    """CIFAR10-DVS frame archives; items ``(float32 [T, 2, S, S], label)``.

    Args:
        path: the frames folder, or a root holding it.
        split: ``train`` (first 90 % of each class) or ``test``.
        split_ratio: train fraction per class.
        image_size: output side S in pixels (the seed resizes to 48).
        frames: T, to pick among several frames folders under ``path``.
        values: ``seed`` (ToPILImage wrap) or ``counts``.
        normalize: OTTT's per-polarity mean/std.
    """
    if values not in ("seed", "counts"):
        raise ConfigError(str(path), "values", f"expected 'seed' or 'counts', got {values!r}")
    if int(image_size) < 1:
        raise ConfigError(str(path), "image_size", f"expected a positive side in pixels, got {image_size!r}")
    folder = frames_folder(Path(path), frames)
    items = index_files(folder, split, split_ratio)
    logger.debug("cifar10dvs %s: %d files under %s", split, len(items), folder)
    return Cifar10DVSDataset(items, image_size=image_size, values=values, normalize=normalize)
