"""Convolutional LSTM (Shi et al. 2015) and its bidirectional form, over a sequence of CT slices.

A ConvLSTM is an LSTM whose gates are convolutions, so its hidden state is a feature *map*:

    i_t, f_t, o_t = sigmoid(W_{i,f,o} * [x_t, h_{t-1}] + b)
    g_t = tanh(W_g * [x_t, h_{t-1}] + b_g)
    c_t = f_t . c_{t-1} + i_t . g_t,   h_t = o_t . tanh(c_t)

(``*`` a same-padded convolution, ``.`` the elementwise product). :class:`BiConvLSTM` runs one
ConvLSTM from the first slice to the last and another from the last to the first, and mixes the
two hidden states of every slice with a 1x1 convolution, so each output slice sees both of its
neighbours. SQ-AGGAN uses it to keep neighbouring generated slices consistent.

Shapes: input `(B, T, C_in, H, W)` (batch, slices, channels, height, width); output
`(B, T, C_out, H, W)`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _check_sequence(x: Tensor, channels: int, name: str) -> None:
    """Raise if ``x`` is not a `(B, T, channels, H, W)` float tensor.

    Args:
        x: the tensor.
        channels: the expected channel count.
        name: the module, named in the error.
    """
    if x.dim() != 5 or x.shape[2] != channels:
        raise ValueError(f"{name} expects a sequence (B, T, {channels}, H, W), got {tuple(x.shape)}; "
                         "stack the slices along dim 1.")


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step: ``(x_t, (h, c)) -> (h_t, c_t)``.

    Args:
        in_channels: channels of ``x_t``.
        hidden_channels: channels of ``h`` and ``c``.
        kernel_size: odd side of the gate convolution.
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd (same padding), got {kernel_size}.")
        self.hidden_channels = hidden_channels
        self.gates = nn.Conv2d(in_channels + hidden_channels, 4 * hidden_channels, kernel_size,
                               padding=kernel_size // 2)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """Advance one slice.

        Args:
            x: `(B, C_in, H, W)`.
            state: ``(h, c)``, each `(B, hidden, H, W)`.
        """
        h, c = state
        i, f, o, g = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvLSTM(nn.Module):
    """A one-directional ConvLSTM layer over the slice axis (zero initial state).

    Args:
        in_channels: input channels.
        hidden_channels: hidden (= output) channels.
        kernel_size: odd gate kernel side.
        reverse: run from the last slice to the first (outputs stay in slice order).
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3, reverse: bool = False) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.cell = ConvLSTMCell(in_channels, hidden_channels, kernel_size)
        self.reverse = reverse

    def forward(self, x: Tensor) -> Tensor:
        """Run over the sequence.

        Args:
            x: `(B, T, C_in, H, W)`.

        Returns:
            Hidden states `(B, T, hidden, H, W)` in slice order.
        """
        _check_sequence(x, self.in_channels, type(self).__name__)
        b, t, _, hh, ww = x.shape
        h = x.new_zeros(b, self.cell.hidden_channels, hh, ww)
        c = torch.zeros_like(h)
        order = range(t - 1, -1, -1) if self.reverse else range(t)
        out: list[Tensor] = [x] * t  # placeholders, all overwritten
        for k in order:
            h, c = self.cell(x[:, k], (h, c))
            out[k] = h
        return torch.stack(out, dim=1)


class BiConvLSTM(nn.Module):
    """Forward and backward ConvLSTMs whose hidden states are mixed per slice by a 1x1 conv.

    Args:
        in_channels: input channels.
        out_channels: output channels (each direction has this many hidden channels).
        kernel_size: odd gate kernel side.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.fwd = ConvLSTM(in_channels, out_channels, kernel_size)
        self.bwd = ConvLSTM(in_channels, out_channels, kernel_size, reverse=True)
        self.mix = nn.Conv2d(2 * out_channels, out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """Run both directions and mix them.

        Args:
            x: `(B, T, C_in, H, W)`.

        Returns:
            `(B, T, out_channels, H, W)`.
        """
        _check_sequence(x, self.in_channels, type(self).__name__)
        both = torch.cat([self.fwd(x), self.bwd(x)], dim=2)  # `(B, T, 2 out, H, W)`
        b, t = both.shape[:2]
        return self.mix(both.flatten(0, 1)).unflatten(0, (b, t))
