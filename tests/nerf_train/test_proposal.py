"""Proposal sampling and the extra NeRF losses against hand values and the seed's equations written as loops."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from snnprof.reference_impls.harness import TrainOptions, read_metrics, run_training
from snnprof.reference_impls.nerf_proposal import (
    backface_loss,
    density_normals,
    interval_bounds,
    inverse_sample,
    max_blur,
    merge_depths,
    normal_loss,
    proposal_loss,
    proposal_weights,
    stratified_depths,
)

from .conftest import tiny_config


def test_proposal_weights_by_hand() -> None:
    """Two samples 0.5 apart on a ray of |d| = 2 (delta 1): alpha_0 = 1 - e^-1, then the 1e10 tail."""
    density = torch.tensor([[1.0, -3.0], [2.0, 0.5]])
    z = torch.tensor([[2.0, 2.5], [2.0, 2.5]])
    d = torch.tensor([[0.0, 0.0, -2.0], [0.0, 0.0, -2.0]])
    w = proposal_weights(density, z, d)
    a0 = 1 - math.exp(-1.0)
    assert w[0].tolist() == pytest.approx([a0, 0.0])  # relu(-3) = 0: no opacity at the tail sample
    b0 = 1 - math.exp(-2.0)
    assert w[1].tolist() == pytest.approx([b0, 1.0 * (math.exp(-2.0) + 1e-10)])


def test_max_blur_by_hand() -> None:
    w = torch.tensor([[0.1, 0.5, 0.2, 0.0]])
    # neighbour maxima 0.5, 0.5, 0.2; front [0.1, .5, .5, .2], rear [.5, .5, .2, 0.0]
    assert max_blur(w, 0.01)[0].tolist() == pytest.approx([0.31, 0.51, 0.36, 0.11])


def _sample_pdf_loop(bins: list[float], weights: list[float], u: float) -> tuple[float, int]:
    """The seed's ``sample_pdf`` for one ray and one uniform draw, written as a loop."""
    w = [x + 1e-5 for x in weights]
    total = sum(w)
    cdf = [0.0]
    for x in w:
        cdf.append(cdf[-1] + x / total)
    inds = sum(1 for c in cdf if c <= u)  # searchsorted(right=True)
    below, above = max(inds - 1, 0), min(inds, len(cdf) - 1)
    denom = cdf[above] - cdf[below]
    denom = 1.0 if denom < 1e-5 else denom
    return bins[below] + (u - cdf[below]) / denom * (bins[above] - bins[below]), below


def test_inverse_sample_matches_the_seed_loop() -> None:
    gen = torch.Generator().manual_seed(3)
    z = torch.sort(2 + 4 * torch.rand(2, 7, generator=gen), -1)[0]
    w = torch.rand(2, 7, generator=gen)
    depths, idx = inverse_sample(w, z, 9, deterministic=True)
    bins = (0.5 * (z[:, 1:] + z[:, :-1])).tolist()
    for r in range(2):
        expected = sorted(_sample_pdf_loop(bins[r], w[r, 1:-1].tolist(), u) for u in torch.linspace(0, 1, 9).tolist())
        assert depths[r].tolist() == pytest.approx([e[0] for e in expected], abs=1e-5)
        assert idx[r].tolist() == [e[1] for e in expected]
    rand_depths, _ = inverse_sample(w, z, 9, generator=torch.Generator().manual_seed(0))
    assert bool((rand_depths >= bins[0][0] - 1e-6).all()) and torch.equal(rand_depths, rand_depths.sort(-1)[0])


def test_bounds_merge_and_proposal_loss_by_hand() -> None:
    w = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    idx = torch.tensor([[0, 0, 2, 3]])
    # getBounds: sum of weights[idx_i .. idx_{i+1}] (both ends included)
    assert interval_bounds(w, idx)[0].tolist() == pytest.approx([0.1, 0.6, 0.7])
    nerf = torch.tensor([[0.3, 0.5, 0.0]])
    assert float(proposal_loss(interval_bounds(w, idx), nerf)) == pytest.approx(0.2**2 / (0.3 + 1e-8))
    coarse, fine = torch.tensor([[2.0, 3.0, 4.0]]), torch.tensor([[2.5, 3.5]])
    depths, merged = merge_depths(coarse, fine, torch.tensor([[0, 1]]))
    assert depths.tolist() == [[2.0, 2.5, 3.0, 3.5]] and merged.tolist() == [[0, 0, 1, 1, 2]]


def test_stratified_depths_stay_in_their_bins() -> None:
    z = stratified_depths(5, 4, 2.0, 6.0, generator=torch.Generator().manual_seed(1))
    lo = torch.tensor([2.0, 3.0, 4.0, 5.0])
    assert bool(((z >= lo) & (z <= lo + 1)).all())
    assert stratified_depths(1, 4, 2.0, 6.0, jitter=False)[0].tolist() == [2.5, 3.5, 4.5, 5.5]


def test_normal_losses_by_hand() -> None:
    pts = torch.tensor([[[1.0, 2.0, 0.0]]], requires_grad=True)
    raw = (pts**2).sum(-1)  # grad 2 p: the density normal is -p / |p|
    n_density = density_normals(raw, pts)
    torch.testing.assert_close(n_density, -pts.detach() / math.sqrt(5))
    pred = torch.tensor([[[0.0, -1.0, 0.0]]])
    weights = torch.tensor([[0.5]])
    assert float(normal_loss(weights, n_density, pred)) == pytest.approx(0.5 * (1 - 2 / math.sqrt(5)))
    dirs = torch.tensor([[[0.0, -0.6, 0.8]]])
    assert float(backface_loss(weights, pred, dirs)) == pytest.approx(0.5 * 0.6)
    assert float(backface_loss(weights, -pred, dirs)) == 0.0  # facing the camera: no penalty


def test_density_normals_are_constants_unless_differentiable() -> None:
    """``sigma = a . x``: the normal is ``-a / |a|`` everywhere. Against a fixed unit ``m`` the loss
    ``1 - n . m = 1 + (a . m) / |a|`` has ``dL/da = m / |a| - (a . m) a / |a|^3`` when the normals are
    differentiated (Ref-NeRF's official code), and no path to ``a`` at all with the seed's ``get_grad``."""
    a = torch.tensor([3.0, 0.0, 4.0], requires_grad=True)
    m = torch.tensor([0.0, 1.0, 0.0]) * 0.6 + torch.tensor([1.0, 0.0, 0.0]) * 0.8
    pts = torch.tensor([[0.2, -0.1, 0.5], [1.0, 2.0, 3.0]], requires_grad=True)
    seed = density_normals((pts * a).sum(-1), pts)
    assert not seed.requires_grad
    n = density_normals((pts * a).sum(-1), pts, differentiable=True)
    torch.testing.assert_close(n.detach(), (-a.detach() / 5.0).expand(2, 3))
    (1.0 - (n[0] * m).sum()).backward()
    ad = a.detach()
    expected = m / 5.0 - float((ad * m).sum()) * ad / 125.0  # |a| = 5
    torch.testing.assert_close(a.grad, expected)


#: ``[train]`` keys of the 24-step loop runs below (a tiny proposal network, a fast learning rate).
_TINY_LOOP = ('weight_init = "torch"\nwarmup_steps = 2\ncoarse_samples = 8\nfine_samples = 8\nproposal_width = 16\n'
              "lr = 5e-3")


@pytest.mark.parametrize("key", ["nerf_mlp", "refnerf"])
def test_the_loop_reports_and_lowers_its_losses(tmp_path: Path, key: str) -> None:
    """Tiny runs (24 steps): the proposal, image and orientation losses fall; see docs for the normal loss."""
    config = tiny_config(tmp_path, key, epochs=4, spe=6, extra=_TINY_LOOP)
    run_training(config, TrainOptions(out=tmp_path / "run", threads=1, count=False))
    train = [r["train"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")]
    assert train[-1]["proposal_loss"] < train[0]["proposal_loss"] and train[-1]["mse"] < train[0]["mse"]
    if key == "refnerf":
        assert {"normal_loss", "backface_loss"} <= set(train[0])
        assert train[-1]["backface_loss"] < train[0]["backface_loss"]
        assert all(math.isfinite(t["normal_loss"]) for t in train)


def test_differentiated_density_normals_lower_the_normal_loss_in_a_tiny_run(tmp_path: Path) -> None:
    """``density_normal_grad = true`` (train_refnerf_normals_small.toml's setting): in 24 steps the normal
    loss and the misalignment fall (with the seed's constant normals they do not; docs/nerf_training.md)."""
    config = tiny_config(tmp_path, "refnerf", epochs=4, spe=6,
                         extra=_TINY_LOOP + "\nnormal_weight = 1.0\ndensity_normal_grad = true")
    run_training(config, TrainOptions(out=tmp_path / "run", threads=1, count=False))
    train = [r["train"] for r in read_metrics(tmp_path / "run" / "metrics.jsonl")]
    assert train[-1]["normal_loss"] < 0.95 * train[0]["normal_loss"]
    assert train[-1]["normal_misalignment"] < 0.95 * train[0]["normal_misalignment"]


def test_normal_loss_trains_the_predicted_normals_towards_a_smooth_density_gradient() -> None:
    """With a smooth density (``sigma = a . x``: one normal ``-a / |a|`` everywhere) Adam on the normal loss
    alone turns Ref-NeRF's predicted normals to it (the loss falls by more than half)."""
    from snnprof.models import create_model

    torch.manual_seed(0)
    model = create_model("refnerf", hidden=16, bottle_neck_dim=8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    pts0 = torch.rand(8, 6, 3) * 2 - 1
    dirs = torch.nn.functional.normalize(torch.randn(8, 6, 3), dim=-1)
    weights, a = torch.full((8, 6), 1 / 6), torch.tensor([0.3, -0.5, 0.8])
    losses = []
    for _ in range(30):
        pts = pts0.clone().requires_grad_(True)
        _, _, normal = model.field(pts, dirs)
        loss = normal_loss(weights, density_normals((pts * a).sum(-1), pts), normal)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
