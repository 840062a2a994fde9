"""Dataset-profiling benchmark cases: synthetic data sets on disk, their configs, plain vs profiled runs.

* ``sj_dvs``: the zoo's multi-step SpikingJelly CNN (``sj_spiking_cnn``, 32x32, T = 8) on
  CIFAR10-DVS-format event-count frames (``cifar10dvs`` reader, raw counts), batch 16.
* ``ottt_cifar``: the OTTT online spiking VGG-11 (``ottt_vgg11_ws``, width 0.5, T = 6) on CIFAR-10
  python batches (``cifar10`` reader), batch 16.

The data are written by the project's synthetic generators into a temporary folder (nothing is
downloaded). ``plain`` runs exactly the loop of ``snnprof count --dataset`` without the profiler
(same model build, reader, DataLoader, ``batch_to_inputs`` and zoo runner); ``profiled`` is
:func:`snnprof.pipeline.run_dataset` itself (sample statistics on, energy on the config's
profiles).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from snnprof.config import RunConfig, parse_config

__all__ = ["CASES", "DatasetCase", "make_dataset_case", "plain_run", "profiled_run"]

CASES: tuple[str, ...] = ("sj_dvs", "ottt_cifar")


@dataclass
class DatasetCase:
    """A config over a data set written to ``folder`` (kept alive by ``tmp``)."""

    name: str
    cfg: RunConfig
    samples: int
    tmp: tempfile.TemporaryDirectory

    @property
    def note(self) -> str:
        inp = self.cfg.input
        return f"{self.cfg.model.name}, {self.samples} samples, batch {inp.batch_size}, T={inp.time_steps}"


def _sj_dvs(root: Path, per_class: int) -> tuple[str, int]:
    from snnprof.data.synthetic_images import ImageClassesSpec, write_cifar10dvs

    folder = write_cifar10dvs(root, ImageClassesSpec(image_size=32), per_class=per_class, frames=8)
    text = f"""
[model]
name = "sj_spiking_cnn"
kwargs = {{ in_channels = 2, num_classes = 10, image_size = 32 }}
[input]
source = "dataset"
path = "{folder}"
reader = "cifar10dvs"
batch_size = 16
time_steps = 8
kwargs = {{ split = "train", image_size = 32, values = "counts", normalize = false }}
[energy]
profiles = ["cmos45nm_fp32", "loihi"]
"""
    return text, 10 * int(per_class * 0.9)  # the reader's train split: the first 90 % of each class


def _ottt_cifar(root: Path, per_class: int) -> tuple[str, int]:
    from snnprof.data.synthetic_images import ImageClassesSpec, write_cifar

    folder = write_cifar(root, ImageClassesSpec(), train_per_class=1, test_per_class=per_class)
    text = f"""
[model]
name = "ottt_vgg11_ws"
kwargs = {{ num_classes = 10, width = 0.5 }}
[input]
source = "dataset"
path = "{folder}"
reader = "cifar10"
batch_size = 16
time_steps = 6
kwargs = {{ split = "test" }}
[energy]
profiles = ["cmos45nm_fp32", "loihi"]
"""
    return text, 10 * per_class


_BUILDERS: dict[str, Callable[[Path, int], tuple[str, int]]] = {"sj_dvs": _sj_dvs, "ottt_cifar": _ottt_cifar}
#: Files per class written by default (sj_dvs: 110 train samples; ottt_cifar: 80 test samples).
DEFAULT_PER_CLASS = {"sj_dvs": 13, "ottt_cifar": 8}


def make_dataset_case(name: str, per_class: int | None = None) -> DatasetCase:
    """Write the case's data set and its config file (``<tmp>/<name>.toml``) to a temporary folder."""
    tmp = tempfile.TemporaryDirectory(prefix=f"snnprof_bench_{name}_")
    text, samples = _BUILDERS[name](Path(tmp.name), per_class or DEFAULT_PER_CLASS[name])
    path = Path(tmp.name) / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return DatasetCase(name, parse_config(text, path), samples, tmp)


def plain_run(case: DatasetCase) -> int:
    """The dataset loop without the profiler; returns samples run."""
    from snnprof.dataset.loop import open_config_dataset, to_device
    from snnprof.dataset.sharding import BatchShardSampler
    from snnprof.models import get_entry
    from snnprof.workload import prepare_model

    cfg = case.cfg
    entry = get_entry(cfg.model.name)
    model = prepare_model(cfg, torch.device("cpu"))
    dataset = open_config_dataset(cfg)
    sampler = BatchShardSampler(dataset, batch_size=cfg.input.batch_size)  # type: ignore[arg-type]
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.input.batch_size, sampler=sampler)
    samples = 0
    with torch.no_grad():
        for inputs, _targets in loader:
            entry.run(model, to_device(entry.batch_to_inputs(inputs), torch.device("cpu")), cfg.input.time_steps)
            samples += inputs.shape[0]
    return samples


def profiled_run(case: DatasetCase) -> int:
    """``snnprof count --dataset`` as a function; returns samples profiled."""
    from snnprof.pipeline import run_dataset

    run = run_dataset(case.cfg)
    assert run is not None and run.result.sample_stats is not None
    return run.result.sample_stats.n
