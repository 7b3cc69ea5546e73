"""ConvLSTM and Bi-ConvLSTM: shapes, a hand-computed cell step, and that both directions are used."""

from __future__ import annotations

import math

import pytest
import torch

from medgan_core.models.convlstm import BiConvLSTM, ConvLSTM, ConvLSTMCell

@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and do not fight other jobs for the cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TEST_CASES = [  # (B, T, C_in, hidden, H, W)
    (2, 3, 1, 4, 8, 8),
    (1, 5, 3, 2, 6, 10),
]


@pytest.mark.parametrize("b, t, c_in, hidden, h, w", TEST_CASES)
def test_shapes(b, t, c_in, hidden, h, w):
    torch.manual_seed(0)
    x = torch.randn(b, t, c_in, h, w)
    assert ConvLSTM(c_in, hidden)(x).shape == (b, t, hidden, h, w)
    assert BiConvLSTM(c_in, hidden)(x).shape == (b, t, hidden, h, w)


def test_cell_hand_values():
    cell = ConvLSTMCell(1, 1, kernel_size=1)
    with torch.no_grad():
        cell.gates.weight.zero_()
        cell.gates.bias.copy_(torch.tensor([0.5, -1.0, 2.0, 0.3]))  # i, f, o, g
    h0 = torch.zeros(1, 1, 1, 1)
    c0 = torch.full((1, 1, 1, 1), 0.7)
    h, c = cell(torch.zeros(1, 1, 1, 1), (h0, c0))
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    c_ref = sig(-1.0) * 0.7 + sig(0.5) * math.tanh(0.3)
    assert c.item() == pytest.approx(c_ref, abs=1e-6)
    assert h.item() == pytest.approx(sig(2.0) * math.tanh(c_ref), abs=1e-6)


def test_forward_lstm_is_causal_and_reverse_flag_matches_flipped_input():
    torch.manual_seed(0)
    lstm = ConvLSTM(2, 3)
    x = torch.randn(1, 4, 2, 5, 5)
    x2 = x.clone()
    x2[:, -1] += 1.0
    out, out2 = lstm(x), lstm(x2)
    assert torch.equal(out[:, :-1], out2[:, :-1])  # the future does not reach the past
    assert not torch.allclose(out[:, -1], out2[:, -1])
    rev = ConvLSTM(2, 3, reverse=True)
    rev.load_state_dict(lstm.state_dict())
    assert torch.allclose(rev(x), lstm(x.flip(1)).flip(1), atol=1e-6)


def test_bidirectional_uses_both_directions():
    torch.manual_seed(0)
    bi = BiConvLSTM(1, 4)
    x = torch.randn(2, 3, 1, 6, 6)
    base = bi(x)
    late, early = x.clone(), x.clone()
    late[:, 2] += 1.0
    early[:, 0] += 1.0
    assert not torch.allclose(bi(late)[:, 0], base[:, 0])  # backward direction: slice 3 reaches slice 1
    assert not torch.allclose(bi(early)[:, 2], base[:, 2])  # forward direction: slice 1 reaches slice 3
    # reversing the sequence changes the result (the two directions have different weights)
    assert not torch.allclose(bi(x.flip(1)), base.flip(1), atol=1e-4)


def test_errors_name_the_fix():
    with pytest.raises(ValueError, match="odd"):
        ConvLSTMCell(1, 1, kernel_size=2)
    with pytest.raises(ValueError, match=r"\(B, T, 2, H, W\)"):
        BiConvLSTM(2, 2)(torch.zeros(1, 3, 1, 4, 4))
