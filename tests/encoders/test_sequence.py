"""encoders.sequence: the LSTM user encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encoders.sequence import LSTMUserEncoder
from simulators.core.errors import ConfigError


def _encoder(seed: int = 0) -> LSTMUserEncoder:
    torch.manual_seed(seed)
    table = np.random.default_rng(0).normal(size=(30, 16)).astype(np.float32)
    return LSTMUserEncoder(table, projection_dim=8, hidden_dim=12, out_dim=6)


def test_lstm_shapes_and_empty_history() -> None:
    encoder = _encoder()
    ids = torch.tensor([[1, 2, 3, 0], [0, 0, 0, 0], [5, -1, -1, -1]])
    mask = torch.tensor([[1, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    out = encoder(ids, mask)
    assert out.shape == (3, 6) and torch.isfinite(out).all()
    empty = encoder(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, 4, dtype=torch.bool))
    torch.testing.assert_close(out[1:2], empty)


def test_lstm_ignores_masked_entries_wherever_they_are() -> None:
    encoder = _encoder()
    compact = encoder(torch.tensor([[4, 7, 9, 0, 0]]), torch.tensor([[1, 1, 1, 0, 0]], dtype=torch.bool))
    scattered = encoder(torch.tensor([[13, 4, 22, 7, 9]]), torch.tensor([[0, 1, 0, 1, 1]], dtype=torch.bool))
    torch.testing.assert_close(compact, scattered)
    reordered = encoder(torch.tensor([[9, 7, 4, 0, 0]]), torch.tensor([[1, 1, 1, 0, 0]], dtype=torch.bool))
    assert not torch.allclose(compact, reordered), "order matters to an LSTM"


def test_lstm_table_is_frozen_and_not_in_state_dict() -> None:
    encoder = _encoder()
    assert "item_table" not in encoder.state_dict()
    ids, mask = torch.tensor([[1, 2]]), torch.ones(1, 2, dtype=torch.bool)
    encoder(ids, mask).sum().backward()
    assert encoder.project.weight.grad is not None
    assert not encoder.item_table.requires_grad
    clone = _encoder(seed=1)
    clone.load_state_dict(encoder.state_dict())
    torch.testing.assert_close(clone(ids, mask), encoder(ids, mask))


def test_lstm_rejects_bad_shapes() -> None:
    with pytest.raises(ConfigError):
        _encoder()(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ConfigError):
        LSTMUserEncoder(np.zeros((0, 4)))


@pytest.mark.parametrize("num_layers", [1, 2])
def test_lstm_state_is_the_packed_sequences_final_state(num_layers: int) -> None:
    """The branch-free forward (exportable to ONNX) equals running the LSTM on each user's
    packed valid items, for any lengths, empty histories included."""
    from torch.nn.utils.rnn import pack_padded_sequence

    torch.manual_seed(0)
    table = np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32)
    encoder = LSTMUserEncoder(table, projection_dim=6, hidden_dim=5, num_layers=num_layers)
    ids = torch.randint(0, 30, (7, 9))
    lengths = torch.tensor([0, 1, 3, 9, 5, 2, 0])
    mask = torch.arange(9)[None, :] < lengths[:, None]
    with torch.no_grad():
        got = encoder(ids, mask)
        vectors = encoder.project(encoder.item_table[ids])
        has = lengths > 0
        packed = pack_padded_sequence(vectors[has], lengths[has], batch_first=True, enforce_sorted=False)
        _, (h_n, _) = encoder.lstm(packed)
    want = encoder.empty_history.detach().expand(7, -1).clone()
    want[has] = h_n[-1]
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)
