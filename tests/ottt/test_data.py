"""CIFAR-10/100 pickle batches, CIFAR10-DVS frame archives and the separable synthetic classes."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from snnprof.data import get_reader, list_readers
from snnprof.data import synthetic_images as si
from snnprof.data.cifar import CIFAR_MEAN, CIFAR_STD, load_cifar
from snnprof.data.cifar10dvs import DVS_CLASSES, DVS_MEAN, DVS_STD, pil_roundtrip, transform_frames
from snnprof.errors import ConfigError

SPEC = si.ImageClassesSpec(num_classes=10, image_size=32, seed=3)


def normalised(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).float() / 255.0
    return (x - torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)) / torch.tensor(CIFAR_STD).view(1, 3, 1, 1)


def test_readers_registered() -> None:
    assert {"cifar10", "cifar100", "cifar10dvs"} <= set(list_readers())


def test_cifar10_round_trip(tmp_path: Path) -> None:
    folder = si.write_cifar(tmp_path, SPEC, train_per_class=7, test_per_class=3)
    assert folder == tmp_path / "cifar-10-batches-py"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["batches.meta", *(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    train_images, train_labels = si.render_images(SPEC, 7, si.TRAIN_STREAM)
    for root in (tmp_path, folder):  # torchvision's root or the batches folder itself
        ds = get_reader("cifar10")(root, split="train")
        assert len(ds) == 70
        xs = torch.stack([ds[i][0] for i in range(len(ds))])
        torch.testing.assert_close(xs, normalised(train_images))
        assert [ds[i][1] for i in range(len(ds))] == train_labels.tolist()
    test = get_reader("cifar10")(tmp_path)  # default split: test
    assert len(test) == 30 and test.class_names == si.CIFAR10_NAMES
    assert test[0][0].dtype == torch.float32 and test[0][0].shape == (3, 32, 32)
    assert get_reader("cifar10")(tmp_path, image_size=16)[0][0].shape == (3, 16, 16)


def test_cifar10_batches_are_torchvision_layout(tmp_path: Path) -> None:
    folder = si.write_cifar(tmp_path, SPEC, train_per_class=5, test_per_class=1)
    with (folder / "data_batch_1").open("rb") as f:
        batch = pickle.load(f, encoding="latin1")  # how torchvision reads it
    assert set(batch) == {"batch_label", "labels", "data", "filenames"}
    assert batch["data"].dtype == np.uint8 and batch["data"].shape == (10, 3072)
    with (folder / "batches.meta").open("rb") as f:
        assert pickle.load(f, encoding="latin1")["label_names"][0] == "airplane"


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    spec = si.ImageClassesSpec(num_classes=100, seed=1)
    si.write_cifar(tmp_path, spec, train_per_class=1, test_per_class=1, variant="cifar100")
    ds = get_reader("cifar100")(tmp_path, split="train")
    images, labels = si.render_images(spec, 1, si.TRAIN_STREAM)
    assert len(ds) == 100 and [ds[i][1] for i in range(100)] == labels.tolist()
    torch.testing.assert_close(ds[5][0], normalised(images[5:6])[0])
    with (tmp_path / "cifar-100-python" / "train").open("rb") as f:
        raw = pickle.load(f)
    assert raw["coarse_labels"] == (labels // 5).tolist()
    assert ds.class_names[:2] == ("class_0", "class_1")


def _write_bytes_key_batch(path: Path, data: np.ndarray, labels: list[int]) -> None:
    """The original Python-2 files read with encoding='bytes' have bytes keys."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({b"batch_label": b"x", b"labels": labels, b"data": data}, protocol=2))


def test_bytes_keys_as_in_the_original_files(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    data = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    for name in [f"data_batch_{i}" for i in range(1, 6)]:
        _write_bytes_key_batch(folder / name, data, [3, 4])
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"a", b"b"]}, protocol=2))
    arrays = load_cifar(tmp_path, "cifar10", "train")
    assert arrays.images.shape == (10, 3, 32, 32) and arrays.labels.tolist() == [3, 4] * 5
    assert arrays.class_names == ("a", "b")
    assert np.array_equal(arrays.images[1, 2], data[1, 2048:].reshape(32, 32))  # blue plane, row-major


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("missing_folder", "dataset folder not found"),
        ("missing_batch", "data_batch_3"),
        ("missing_key", "labels"),
        ("bad_shape", "expected uint8 [N, 3*S*S]"),
        ("garbage", "not a CIFAR python pickle"),
        ("evil", "not allowed"),
    ],
)
def test_cifar_bad_input(tmp_path: Path, case: str, needle: str) -> None:
    folder = si.write_cifar(tmp_path, SPEC, train_per_class=5, test_per_class=1)
    path = tmp_path
    batch = folder / "data_batch_1"
    if case == "missing_folder":
        path = tmp_path / "nope"
    elif case == "missing_batch":
        (folder / "data_batch_3").unlink()
    elif case == "missing_key":
        batch.write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8)}))
    elif case == "bad_shape":
        batch.write_bytes(pickle.dumps({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}))
    elif case == "garbage":
        batch.write_bytes(b"this is not a pickle")
    else:
        batch.write_bytes(pickle.dumps({"data": _Evil(), "labels": [0]}))
    with pytest.raises(ConfigError) as info:
        get_reader("cifar10")(path, split="train")
    assert needle in str(info.value)
    assert str(path if case == "missing_folder" else folder) in str(info.value)


def test_synthetic_is_deterministic(tmp_path: Path) -> None:
    a = si.write_cifar(tmp_path / "a", SPEC, train_per_class=3, test_per_class=1)
    b = si.write_cifar(tmp_path / "b", SPEC, train_per_class=3, test_per_class=1)
    for name in ("data_batch_1", "test_batch", "batches.meta"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    other = si.render_images(si.ImageClassesSpec(seed=4), 3)[0]
    assert not np.array_equal(si.render_images(SPEC, 3)[0], other)
    labels = si.render_images(SPEC, 3)[1]
    assert np.bincount(labels).tolist() == [3] * 10


def test_synthetic_classes_are_separable() -> None:
    # Nearest class prototype recovers (almost) every label: the classes are separable by construction.
    images, labels = si.render_images(SPEC, 20, si.TEST_STREAM)
    protos = si.class_prototypes(SPEC).reshape(10, -1)
    x = images.reshape(len(images), -1).astype(np.float32) / 255.0
    # the shift is circular and small: compare against every shifted prototype
    best = np.full((len(x), 10), np.inf)
    grid = si.class_prototypes(SPEC)
    for dy in range(-SPEC.shift, SPEC.shift + 1):
        for dx in range(-SPEC.shift, SPEC.shift + 1):
            shifted = np.roll(grid, (dy, dx), axis=(-2, -1)).reshape(10, -1)
            best = np.minimum(best, ((x[:, None, :] - shifted[None]) ** 2).sum(-1))
    assert (best.argmin(1) == labels).mean() > 0.95
    assert protos.shape == (10, 3 * 32 * 32)


# ----------------------------------------------------------------------------- CIFAR10-DVS


def test_pil_roundtrip_closed_form() -> None:
    counts = torch.tensor([0.0, 1.0, 2.0, 3.0, 256.0, 0.5])
    expected = torch.tensor([0.0, 255.0, 254.0, 253.0, 0.0, 127.0]) / 255.0  # trunc(255 x) mod 256
    torch.testing.assert_close(pil_roundtrip(counts), expected)


def test_cifar10dvs_round_trip(tmp_path: Path) -> None:
    spec = si.ImageClassesSpec(image_size=16, seed=2)
    folder = si.write_cifar10dvs(tmp_path, spec, per_class=20, frames=5)
    assert folder.name == "frames_num_5_split_by_number_normalization_None"
    assert sorted(p.name for p in folder.iterdir()) == sorted(DVS_CLASSES)
    with np.load(folder / "cat" / "cifar10_cat_0.npz") as archive:
        assert archive.files == ["arr_0"] and archive["arr_0"].shape == (5, 2, 16, 16)
    train = get_reader("cifar10dvs")(tmp_path, split="train")
    test = get_reader("cifar10dvs")(folder, split="test", image_size=16)
    assert len(train) == 180 and len(test) == 20
    # Per class the first 90 % by numeric index are train: cifar10_cat_17 is train, _18 and _19 test.
    train_files = {p.name for p, _ in train.items}
    assert "cifar10_cat_17.npz" in train_files and "cifar10_cat_18.npz" not in train_files
    x, label = test[0]
    assert x.shape == (5, 2, 16, 16) and label == 0
    with np.load(test.items[0][0]) as archive:
        raw = torch.from_numpy(archive["arr_0"])
    mean, std = torch.tensor(DVS_MEAN).view(1, 2, 1, 1), torch.tensor(DVS_STD).view(1, 2, 1, 1)
    torch.testing.assert_close(x, (pil_roundtrip(raw) - mean) / std)
    assert train[0][0].shape == (5, 2, 48, 48)  # the seed's 48x48 resize by default
    torch.testing.assert_close(transform_frames(raw, 16, values="counts", normalize=False), raw)


def _npz(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


def test_cifar10dvs_spikingjelly_layout_and_frames_key(tmp_path: Path) -> None:
    folder = tmp_path / "frames_number_3_split_by_number"
    for i in range(10):
        _npz(folder / "dog" / f"cifar10_dog_{i}.npz", frames=np.ones((3, 2, 8, 8), np.float32))
    ds = get_reader("cifar10dvs")(tmp_path, split="test", image_size=8, values="counts", normalize=False)
    assert len(ds) == 1 and ds[0][1] == DVS_CLASSES.index("dog")
    assert torch.equal(ds[0][0], torch.ones(3, 2, 8, 8))


@pytest.mark.parametrize(
    ("case", "needle"),
    [("missing", "CIFAR10-DVS folder not found"), ("empty", "no .npz"), ("key", "arr_0"),
     ("shape", "expected frames [T, 2, H, W]"), ("two_folders", "exactly one frames folder")],
)  # fmt: skip
def test_cifar10dvs_bad_input(tmp_path: Path, case: str, needle: str) -> None:
    path = tmp_path
    frames = tmp_path / "frames_num_4_split_by_number_normalization_None"
    if case == "missing":
        path = tmp_path / "nope"
    elif case == "empty":
        (frames / "cat").mkdir(parents=True)
    elif case == "key":
        _npz(frames / "cat" / "cifar10_cat_0.npz", other=np.zeros((4, 2, 8, 8)))
    elif case == "shape":
        _npz(frames / "cat" / "cifar10_cat_0.npz", arr_0=np.zeros((4, 3, 8, 8)))
    else:
        (frames / "cat").mkdir(parents=True)
        (tmp_path / "frames_num_10_split_by_number_normalization_None" / "cat").mkdir(parents=True)
    with pytest.raises(ConfigError) as info:
        get_reader("cifar10dvs")(path, split="train")
    assert needle in str(info.value)
    if case == "two_folders":  # naming T picks one
        with pytest.raises(ConfigError, match="no .npz"):
            get_reader("cifar10dvs")(path, split="train", frames=4)


def test_dataset_config_validates_the_path(tmp_path: Path) -> None:
    from snnprof.config import parse_config

    si.write_cifar(tmp_path, SPEC, train_per_class=1, test_per_class=1)
    text = f'[model]\nname = "ottt_vgg11_ws"\n[input]\nsource = "dataset"\nreader = "cifar10"\npath = "{tmp_path}"\n'
    assert parse_config(text, tmp_path / "x.toml").input.path == tmp_path
    with pytest.raises(ConfigError, match="dataset path not found"):
        parse_config(text.replace(str(tmp_path), str(tmp_path / "missing")), tmp_path / "x.toml")
