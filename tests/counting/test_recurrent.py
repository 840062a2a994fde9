"""RNN/LSTM/GRU cells and full layers: dense MACs per the rule docstring, SOPs on spiking inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from tests.counting._helpers import binary, run

GATES = {nn.RNN: 1, nn.LSTM: 4, nn.GRU: 3, nn.RNNCell: 1, nn.LSTMCell: 4, nn.GRUCell: 3}


def _layer_macs(rows: int, g: int, h: int, i: int, *, layers: int, dirs: int, proj: int = 0) -> int:
    """Per step and direction: ``g*H*(I + H_out) + H*proj``; layer > 0 sees ``dirs*H_out`` inputs."""
    h_out = proj or h
    total = 0
    for layer in range(layers):
        in_f = i if layer == 0 else dirs * h_out
        total += rows * dirs * (g * h * (in_f + h_out) + h * proj)
    return total


@pytest.mark.parametrize("klass", [nn.RNNCell, nn.LSTMCell, nn.GRUCell])
@pytest.mark.parametrize("batched", [True, False])
def test_cells(klass: type, batched: bool) -> None:
    cell = klass(3, 5)
    x = torch.randn(4, 3) if batched else torch.randn(3)
    rows = 4 if batched else 1
    rec = run(cell, x).layers[0]
    assert rec.dense_macs == rows * GATES[klass] * 5 * (3 + 5)
    assert rec.macs == rec.dense_macs


@pytest.mark.parametrize("klass", [nn.RNN, nn.LSTM, nn.GRU])
@pytest.mark.parametrize(("layers", "bidirectional"), [(1, False), (2, False), (2, True), (3, True)])
def test_full_layers(klass: type, layers: int, bidirectional: bool) -> None:
    T, B, n_in, H = 4, 2, 3, 5
    rnn = klass(n_in, H, num_layers=layers, bidirectional=bidirectional)
    rec = run(rnn, torch.randn(T, B, n_in)).layers[0]
    dirs = 2 if bidirectional else 1
    assert rec.dense_macs == _layer_macs(T * B, GATES[klass], H, n_in, layers=layers, dirs=dirs)
    assert rec.params == sum(p.numel() for p in rnn.parameters())


@pytest.mark.filterwarnings("ignore:LSTM with projections")
@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_projection(bidirectional: bool) -> None:
    T, B, n_in, H, P = 5, 2, 3, 4, 2
    lstm = nn.LSTM(n_in, H, num_layers=2, bidirectional=bidirectional, proj_size=P)
    rec = run(lstm, torch.randn(T, B, n_in)).layers[0]
    dirs = 2 if bidirectional else 1
    expected = _layer_macs(T * B, 4, H, n_in, layers=2, dirs=dirs, proj=P)
    assert rec.dense_macs == expected
    if bidirectional:  # written out once: layer 0 sees n_in=3, layer 1 sees 2*P=4 inputs
        assert expected == 10 * 2 * (16 * 3 + 16 * 2 + 4 * 2) + 10 * 2 * (16 * 4 + 16 * 2 + 4 * 2) == 3840


def test_batch_first_and_unbatched() -> None:
    gru = nn.GRU(3, 4, batch_first=True)
    assert run(gru, torch.randn(2, 6, 3)).totals.dense_macs == 12 * 3 * 4 * 7
    assert run(nn.GRU(3, 4), torch.randn(6, 3)).totals.dense_macs == 6 * 3 * 4 * 7


def test_packed_sequence_counts_real_steps_only() -> None:
    lstm = nn.LSTM(3, 4)
    x = torch.randn(5, 3, 3)
    packed = pack_padded_sequence(x, torch.tensor([5, 3, 2]), enforce_sorted=True)
    rec = run(lstm, (packed,)).layers[0]
    assert rec.dense_macs == (5 + 3 + 2) * 4 * 4 * (3 + 4)


def test_spiking_input_gives_sops_on_first_layer_input_product() -> None:
    T, B, n_in, H = 4, 2, 6, 3
    lstm = nn.LSTM(n_in, H, num_layers=2, bidirectional=True)
    x = binary((T, B, n_in), seed=3)
    rec = run(lstm, x).layers[0]
    dirs, g = 2, 4
    first_input = T * B * dirs * g * H * n_in
    assert rec.dense_macs == _layer_macs(T * B, g, H, n_in, layers=2, dirs=dirs)
    assert rec.sops == int(x.sum()) * dirs * g * H  # each event reaches g*H units per direction
    assert rec.macs == rec.dense_macs - first_input
    assert rec.input_kind == "spike"
