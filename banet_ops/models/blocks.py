"""Building blocks shared by the model-zoo architectures (DESIGN §6).

All zoo models take ``(batch, bands, T, H, W)`` and return daily logits ``(batch, 1, T, H, W)``.
2-D layers run on every day at once by folding time into the batch (:func:`per_day`); temporal
context comes from :class:`ConvLSTM` (Shi et al. 2015), run forward and, optionally, backward
in time.  :func:`pad_to` / :func:`crop_to` let encoder-decoders accept any H and W.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def to_days(x: Tensor) -> Tensor:
    """``(B, C, T, H, W)`` → ``(B*T, C, H, W)``."""
    b, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(b * t, c, h, w)


def from_days(x: Tensor, batch: int) -> Tensor:
    """``(B*T, C, H, W)`` → ``(B, C, T, H, W)``."""
    bt, c, h, w = x.shape
    return x.reshape(batch, bt // batch, c, h, w).transpose(1, 2)


def pad_to(x: Tensor, multiple: int) -> Tensor:
    """Zero-pad the last two axes (bottom/right) up to a multiple of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (0, pw, 0, ph))


def crop_to(x: Tensor, h: int, w: int) -> Tensor:
    return x[..., :h, :w]


class ConvBNReLU(nn.Sequential):
    """3×3 convolution, batch norm, ReLU (2-D)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, dilation: int = 1) -> None:
        pad = dilation * (kernel // 2)
        super().__init__(nn.Conv2d(in_ch, out_ch, kernel, padding=pad, dilation=dilation, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))


class DoubleConv(nn.Sequential):
    """Two :class:`ConvBNReLU` (the U-Net level)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(ConvBNReLU(in_ch, out_ch), ConvBNReLU(out_ch, out_ch))


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step: gates from a convolution of ``[x_t, h_{t-1}]``."""

    def __init__(self, in_ch: int, hidden: int, kernel: int = 3) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(in_ch + hidden, 4 * hidden, kernel, padding=kernel // 2)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        h, c = state
        i, f, o, g = self.gates(torch.cat((x, h), dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class ConvLSTM(nn.Module):
    """A ConvLSTM over the time axis of ``(B, C, T, H, W)``; returns ``(B, out, T, H, W)``.

    Bidirectional: a forward and a backward cell, their hidden states concatenated and mixed back
    to ``hidden`` channels by a 1×1 convolution (so a day sees the days after it too — needed to
    date a burn whose scar is only observed later).
    """

    def __init__(self, in_ch: int, hidden: int, kernel: int = 3, bidirectional: bool = True) -> None:
        super().__init__()
        self.hidden = hidden
        self.bidirectional = bidirectional
        self.fwd = ConvLSTMCell(in_ch, hidden, kernel)
        if bidirectional:
            self.bwd = ConvLSTMCell(in_ch, hidden, kernel)
            self.mix = nn.Conv2d(2 * hidden, hidden, 1)

    def _run(self, cell: ConvLSTMCell, x: Tensor, reverse: bool) -> Tensor:
        b, _, t, h, w = x.shape
        state = (x.new_zeros(b, self.hidden, h, w), x.new_zeros(b, self.hidden, h, w))
        out: list[Tensor] = [x] * t
        order = range(t - 1, -1, -1) if reverse else range(t)
        for k in order:
            state = cell(x[:, :, k], state)
            out[k] = state[0]
        return torch.stack(out, dim=2)

    def forward(self, x: Tensor) -> Tensor:
        y = self._run(self.fwd, x, reverse=False)
        if not self.bidirectional:
            return y
        both = torch.cat((y, self._run(self.bwd, x, reverse=True)), dim=1)
        return from_days(self.mix(to_days(both)), x.shape[0])


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (Chen et al. 2017): parallel dilated 3×3 branches, concatenated, 1×1 projection."""

    def __init__(self, channels: int, rates: tuple[int, ...] = (1, 2, 4)) -> None:
        super().__init__()
        self.branches = nn.ModuleList(ConvBNReLU(channels, channels, 3, dilation=r) for r in rates)
        self.project = ConvBNReLU(channels * len(rates), channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.project(torch.cat([b(x) for b in self.branches], dim=1))
