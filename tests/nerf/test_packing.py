"""TP / TCP / tempo_flip placement against a literal re-implementation of the seed's tensor code."""

from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import layer

import snnprof
from snnprof.models.nerf_packing import TempoLinear, TemporalPacker, pack_points


def seed_tempo(ray_id: torch.Tensor, step_id: torch.Tensor, feat: torch.Tensor, condensing: bool,
               flip: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The seed's input tensor as the SNN sees it (after its flip) and each point's (t, b) in it.

    Written from docs/seed_models.md §1.2: TP spans the chunk's step and ray-id ranges; TCP drops empty rays
    and packs each ray from t = 0 (right-aligned with tempo_flip); tempo_flip then flips the whole tensor.
    """
    if condensing:
        counts = torch.bincount(ray_id)
        counts = counts[counts != 0]
        t_max = int(counts.max())
        b = torch.repeat_interleave(torch.arange(counts.numel()), counts)
        if flip:
            t = torch.cat([torch.arange(int(c)) + t_max - int(c) for c in counts])
        else:
            grid = torch.arange(t_max).repeat(counts.numel(), 1)
            t = grid.masked_select(grid < counts.unsqueeze(1))
        shape = (t_max, counts.numel())
    else:
        t, b = step_id - step_id.min(), ray_id - ray_id.min()
        shape = (int(step_id.max() - step_id.min()) + 1, int(ray_id.max() - ray_id.min()) + 1)
    tempo = torch.zeros(*shape, feat.shape[-1])
    tempo[t, b] = feat
    if flip:
        tempo, t = tempo.flip(0), shape[0] - 1 - t
    return tempo, t, b


def random_chunk(seed: int, rays: int = 9, steps: int = 30) -> tuple[torch.Tensor, ...]:
    """Sorted (ray_id, step_id) of random surviving points, some rays empty, plus features."""
    gen = torch.Generator().manual_seed(seed)
    keep = torch.rand(rays, steps, generator=gen) < 0.15
    keep[torch.rand(rays, generator=gen) < 0.3] = False
    keep[rays // 2, 3] = True
    ray_id, step_id = keep.nonzero(as_tuple=True)
    feat = torch.randn(ray_id.numel(), 5, generator=gen)
    return ray_id, step_id, feat


def test_docstring_example_of_the_spec() -> None:
    ray, step = torch.tensor([0, 0, 0, 1]), torch.tensor([10, 11, 40, 12])
    tp, tcp = pack_points(ray, step, "tp"), pack_points(ray, step, "tcp")
    assert (tp.time_steps, tp.batch) == (31, 2)
    assert (tcp.time_steps, tcp.batch) == (3, 2)
    assert tcp.t_idx.tolist() == [0, 1, 2, 0] and tcp.b_idx.tolist() == [0, 0, 0, 1]
    assert tp.t_idx.tolist() == [0, 1, 30, 2]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("layout", "flip"), [("tp", False), ("tp", True), ("tcp", False), ("tcp", True)])
def test_placement_matches_the_seed(seed: int, layout: str, flip: bool) -> None:
    ray_id, step_id, feat = random_chunk(seed)
    packing = pack_points(ray_id, step_id, layout, flip, feat)
    tempo, t, b = seed_tempo(ray_id, step_id, feat, layout == "tcp", flip)
    assert (packing.time_steps, packing.batch) == tuple(tempo.shape[:2])
    assert torch.equal(packing.t_idx, t) and torch.equal(packing.b_idx, b)
    assert packing.zero_elements == int((tempo == 0).sum())
    assert packing.sparsity == pytest.approx(float((tempo == 0).sum()) / tempo.numel(), abs=0)
    assert packing.padding_fraction == 1 - ray_id.numel() / (tempo.shape[0] * tempo.shape[1])


@pytest.mark.parametrize("seed", range(6))
def test_tcp_is_never_larger_than_tp(seed: int) -> None:
    ray_id, step_id, _ = random_chunk(seed)
    tp, tcp = pack_points(ray_id, step_id, "tp"), pack_points(ray_id, step_id, "tcp")
    assert tcp.time_steps <= tp.time_steps and tcp.batch <= tp.batch
    assert tcp.padding_fraction <= tp.padding_fraction


def test_empty_chunk_and_bad_layout() -> None:
    empty = torch.zeros(0, dtype=torch.long)
    packing = pack_points(empty, empty, "tcp", feat=torch.zeros(0, 39))
    assert (packing.time_steps, packing.batch, packing.points, packing.padding_fraction) == (0, 0, 0, 0.0)
    with pytest.raises(ValueError, match="layout"):
        pack_points(empty, empty, "tcp2")
    with pytest.raises(ValueError, match="layout"):
        TemporalPacker("padded")


def test_tempo_linear_equals_a_linear_on_the_padded_tensor() -> None:
    ray_id, step_id, feat = random_chunk(3)
    packing = pack_points(ray_id, step_id, "tp")
    tempo, _, _ = seed_tempo(ray_id, step_id, feat, condensing=False, flip=False)
    ours = TempoLinear(5, 7)
    dense = layer.Linear(5, 7, bias=False, step_mode="m")
    dense.weight.data.copy_(ours.weight.data)
    torch.testing.assert_close(ours(feat, packing), dense(tempo), rtol=1e-6, atol=1e-6)


def test_tempo_linear_counts_valid_points_only() -> None:
    ray_id, step_id, feat = random_chunk(4)
    packer, lin = TemporalPacker("tp"), TempoLinear(5, 7)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.packer, self.lin = packer, lin

        def forward(self, r: torch.Tensor, s: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
            return self.lin(f, self.packer(r, s, f))

    result = snnprof.profile(Net(), (ray_id, step_id, feat), strict=True, batch_size=1, time_steps=1)
    rec = result.layer("lin")
    assert rec.macs == rec.dense_macs == ray_id.numel() * 5 * 7
    assert rec.input_kind == "dense"
    assert rec.geometry["frames"] == ray_id.numel()
    assert result.totals.sops == 0 and result.unsupported == []
