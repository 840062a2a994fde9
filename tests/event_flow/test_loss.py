"""Contrast-maximisation loss, Charbonnier smoothness and AEE against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from snnprof.data.event_flow_h5 import ArraySource, PassReader, collate_passes
from snnprof.data.synthetic_flow import generate_sequence
from snnprof.reference_impls.event_flow_loss import EventWarping, _smoothness, average_endpoint_error, warp_and_splat


def _events(rows: list[tuple[float, float, float, float]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ev = torch.tensor(rows).unsqueeze(0)  # [1, N, 4] (ts, y, x, p)
    pol = torch.stack([(ev[..., 3] > 0).float(), (ev[..., 3] < 0).float()], dim=2)
    return ev, pol, torch.zeros(1, 1, 1, 3)


def test_bilinear_splat_weights():
    ev = torch.tensor([[[0.0, 1.0, 2.0, 1.0]]])
    idx, w = warp_and_splat(ev, torch.zeros(1, 1, 2), 1.0, (4, 5), 4.0)
    assert idx[0, 0].item() == 1 * 5 + 2 and w[0].tolist() == [1.0, 0.0, 0.0, 0.0]
    flow = torch.tensor([[[0.25 / 4, 0.5 / 4]]])  # (y, x): +0.25 px down, +0.5 px right over one pass
    idx, w = warp_and_splat(ev, flow, 1.0, (4, 5), 4.0)
    assert idx[0].tolist() == [7, 8, 12, 13]
    assert torch.allclose(w[0], torch.tensor([0.75 * 0.5, 0.75 * 0.5, 0.25 * 0.5, 0.25 * 0.5]))
    edge = torch.tensor([[[0.0, 3.0, 4.0, 1.0]]])  # bottom-right pixel pushed half a pixel out
    _, w = warp_and_splat(edge, flow, 1.0, (4, 5), 4.0)
    assert w.sum().item() == pytest.approx(0.75 * 0.5)


def test_timestamp_loss_closed_form():
    ev, pol, _ = _events([(0.0, 0.0, 0.0, 1.0), (1.0, 0.0, 1.0, 1.0)])
    mask = torch.tensor([[[[1.0, 1.0, 0.0]]]])
    eps_term = 0.001 * math.sqrt(1e-6) / 5  # one masked dx pair, weight 0.001, 5 components, 1 pass
    loss = EventWarping((1, 3))
    loss.add_pass([torch.zeros(1, 2, 1, 3)], ev, pol, mask)
    # zero flow: pixels hold ts 0 and 1 -> (0 + 1) / 2 pixels, both directions
    assert loss().item() == pytest.approx(0.5 + 0.5 + eps_term, rel=1e-6)
    aligned = EventWarping((1, 3))
    flow = torch.zeros(1, 2, 1, 3)
    flow[:, 0] = 1 / 3  # x flow of 1 px per pass (flow_scaling = max(H, W) = 3)
    aligned.add_pass([flow], ev, pol, mask)
    # both events meet: one pixel with mean ts 0.5 -> 0.25 per direction
    assert aligned().item() == pytest.approx(0.25 + 0.25 + eps_term, rel=1e-6)


def test_true_flow_minimises_the_loss_on_synthetic_data():
    seq = generate_sequence(0, height=48, width=48, num_events=6000)
    reader = PassReader(ArraySource.from_sequence(seq), "events", 1000)
    u, v = seq.velocity
    losses = {}
    for scale in (-1.0, 0.0, 1.0, 2.0):
        loss = EventWarping((48, 48))
        for n in range(5):
            p = reader.read(n)
            b = collate_passes([p])
            flow = torch.zeros(1, 2, 48, 48)
            flow[:, 0], flow[:, 1] = u * p.dt_input * scale / 48, v * p.dt_input * scale / 48
            loss.add_pass([flow], b["event_list"], b["pol_mask"], b["event_mask"])
        losses[scale] = loss().item()
    assert losses[1.0] < min(losses[0.0], losses[-1.0], losses[2.0])


def test_charbonnier_variants():
    fx = torch.tensor([0.0, 0.2]).view(1, 1, 1, 2)
    fy = torch.tensor([0.0, -0.2]).view(1, 1, 1, 2)
    eps = math.sqrt(1e-6)
    assert _smoothness(fx, fy, None, "code").item() == pytest.approx(eps / 5)  # (dx_x + dx_y)^2 = 0
    paper = 2 * math.sqrt(0.04 + 1e-6) / 5
    assert _smoothness(fx, fy, None, "paper").item() == pytest.approx(paper)
    with pytest.raises(ValueError, match="smoothness"):
        EventWarping((2, 2), smoothness="tv")


def test_average_endpoint_error_closed_form():
    flow = torch.zeros(1, 2, 2, 2)
    flow[0, 0] = 2 / 64  # 2 px per pass in x (flow_scaling 64)
    gt = torch.zeros(1, 2, 2, 2)
    gt[0, 0] = torch.tensor([[4.0, 4.0], [0.0, 4.0]])  # (1, 0) has no ground truth
    gt[0, 1] = torch.tensor([[3.0, 0.0], [0.0, 0.0]])
    mask = torch.tensor([[[[1.0, 1.0], [1.0, 0.0]]]])  # (1, 1) has no event
    dt_in, dt_gt = torch.tensor([0.5]), torch.tensor([1.0])  # prediction scaled x2: 4 px in x
    err = average_endpoint_error(flow, gt, mask, dt_in, dt_gt, flow_scaling=64)
    assert err.valid.item() == 2
    assert err.aee.item() == pytest.approx((3.0 + 0.0) / 2)
    assert err.outliers.item() == pytest.approx(0.0)  # 3 px is not > 3 px
    zero = average_endpoint_error(flow * 0, gt, mask, dt_in, dt_gt, flow_scaling=64)
    assert zero.aee.item() == pytest.approx((5.0 + 4.0) / 2) and zero.outliers.item() == pytest.approx(1.0)
    none = average_endpoint_error(flow, gt, mask, torch.tensor([0.0]), dt_gt, flow_scaling=64)
    assert none.valid.item() == 0 and none.aee.item() == 0.0
