"""BA-Net's tail on CPU, one day at a time: the last temporal up-convolution, the head, its ReLU and the output layer.

At full resolution BA-Net's tail writes two large tensors only to read them back: the last
decoder level's 32 channels over 64 days, and the head's 64 channels.  :class:`OutputGemm` makes
each day of both while the head asks for it and sends it through the ReLU and the ``1×1×1``
output layer while in cache, so only the logits are written.  Same sums as the layers, in
another order: equal to them to float rounding.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from banet_ops.inference.threads import share_among_threads, tile_days
from banet_ops.inference.time_gemm import TimeGemm, UpTimeGemm, product_into, runs_as_products


def _day_rows(x: Tensor) -> Callable[[int], Tensor]:
    """Day ``e`` of ``x`` ``(T, H, W, C)`` as an ``(H·W, C)`` matrix."""
    return lambda day: x[day].view(-1, x.shape[-1])


class _UpDays:
    """Days of the last decoder level, ``relu(y[e // s] @ W[e % s] + b)``, made as they are asked for; the last three kept."""

    def __init__(self, up: UpTimeGemm, y: Tensor) -> None:
        self.up, self.y = up, y  # y: (T / s, H, W, C_in), after the spatial up-convolution's ReLU
        cells = y.shape[1] * y.shape[2]
        self.slots = [y.new_empty((cells, up.w.shape[2])) for _ in range(3)]
        self.held = [-1, -1, -1]

    def __call__(self, day: int) -> Tensor:
        slot = day % 3
        if self.held[slot] != day:
            self.up.day_into(self.slots[slot], self.y[day // self.up.w.shape[0]].view(-1, self.y.shape[3]), day).clamp_min_(0.0)
            self.held[slot] = day
        return self.slots[slot]


class OutputGemm(nn.Module):
    """The head (a ``3×1×1`` convolution of two parts side by side), its ReLU and the ``1×1×1`` output layer, day by day.

    With ``up`` (the last decoder level's temporal up-convolution), the second part is given
    before it, at ``1/s`` of the days, and each of its days is made when the head first reads it.
    """

    def __init__(self, head: nn.Conv3d, final_conv: nn.Conv3d, up: UpTimeGemm | None = None) -> None:
        super().__init__()
        self.head, self.final_conv, self.up = TimeGemm(head), TimeGemm(final_conv), up
        same_days = self.head.stride == 1 and 2 * self.head.pad == self.head.k - 1 and self.head.k <= 3
        if not same_days or (self.final_conv.k, self.final_conv.stride, self.final_conv.pad) != (1, 1, 0) or self.final_conv.b is None:
            raise ValueError("expected a temporal head of at most 3 taps that keeps the days (stride 1, 'same' padding) and a 1×1×1 output layer with a bias")

    def forward(self, full: Tensor, x: Tensor) -> Tensor:
        """Logits ``(N, classes, T, H, W)`` of the head over ``full`` and ``x`` (or ``up(x)``) side by side in channels."""
        if not runs_as_products(full):
            x = x if self.up is None else torch.relu(self.up(x))
            return self.final_conv(torch.relu(self.head(full, x)))
        full_t, x_t = (p.permute(0, 2, 3, 4, 1).contiguous() for p in (full, x))  # (N, T, H, W, C)
        n, t_len, h, w, c_full = full_t.shape
        x_days = x_t.shape[1] * (1 if self.up is None else int(self.up.w.shape[0]))
        c_x = x_t.shape[4] if self.up is None else int(self.up.w.shape[2])
        if c_full + c_x != self.head.w.shape[1] or x_t.shape[0] != n or x_t.shape[2:4] != (h, w) or x_days != t_len:
            raise ValueError(f"expected parts with {self.head.w.shape[1]} channels in all and one (N, T, H, W), found {[tuple(p.shape) for p in (full, x)]}")
        logits = full.new_empty((n, t_len, h, w, self.final_conv.w.shape[2]))
        share_among_threads(n * t_len, lambda share: self._days(logits, full_t, x_t, share))
        return logits.permute(0, 4, 1, 2, 3)

    def _days(self, logits: Tensor, full_t: Tensor, x_t: Tensor, share: range) -> None:
        """``logits[j, day]`` for the (tile, day) indices ``j·T + day`` in ``share``; the parts ``(N, T, H, W, C)``."""
        t_len, cells = logits.shape[1], logits.shape[2] * logits.shape[3]
        final_w, final_b = self.final_conv.w[0], self.final_conv.b
        day_out = logits.new_empty((cells, self.head.w.shape[2]))
        for j, days in tile_days(share, t_len):
            parts = [_day_rows(full_t[j]), _UpDays(self.up, x_t[j]) if self.up is not None else _day_rows(x_t[j])]
            for day in days:
                self._head_day(day_out, parts, day, t_len)
                torch.addmm(final_b, day_out.clamp_min_(0.0), final_w, out=logits[j, day].view(cells, -1))  # type: ignore[arg-type]

    def _head_day(self, out: Tensor, parts: list[Callable[[int], Tensor]], day: int, t_len: int) -> None:
        """``out (H·W, C_out)`` = the head's output on ``day`` (bias included, before the ReLU); ``parts[i](day)``: that part's ``(H·W, C)``."""
        head, first = self.head, True
        for tap in head.taps:  # the centre tap first: it always reads a day
            src = day + tap - head.pad
            if not 0 <= src < t_len:
                continue
            c0 = 0
            for part in parts:
                xs = part(src)
                product_into(out, xs, head.w[tap, c0 : c0 + xs.shape[1]], head.b, accumulate=not first)
                first, c0 = False, c0 + xs.shape[1]
