"""BA-Net's level-1 LSTM on CPU as matrix products over blocks of pixels (exact to float rounding).

BA-Net runs one LSTM over the 64 days of every pixel, so the pixels are a batch of independent
sequences.  oneDNN's LSTM walks all of them step by step, with gate buffers far larger than the
caches.  :class:`PixelLSTM` walks blocks of :data:`BLOCK_PIXELS` pixels instead, whose gates stay
in cache for all 64 steps, and takes every gate through one ``sigmoid``: the cell gate and the
cell's output use ``tanh(z) = 2·sigmoid(2z) − 1``.  Doubling the cell gate's weights is exact in
floating point; each step's values differ from torch's by about one float32 step of 0.5 (~6e-8,
absolute).  ``torch.tanh`` costs ~4–8× a sigmoid per element on this CPU (benchmarks/README.md,
session 7).
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from banet_ops.inference.threads import share_among_threads
from banet_ops.inference.time_gemm import runs_as_products

BLOCK_PIXELS = 2048  # gates of one block: 2048 x 128 floats = 1 MiB, one core's L2


class PixelLSTM(nn.Module):
    """A time-major, one-layer :class:`torch.nn.LSTM` (input ``(T, pixels, C)``) run block by block of pixels."""

    w_in: Tensor  # (C, 4H), gates ordered (input, forget, output, cell); the cell gate doubled
    w_rec: Tensor  # (H, 4H), same order
    bias: Tensor  # (4H,)

    def __init__(self, lstm: nn.LSTM) -> None:
        super().__init__()
        if lstm.num_layers != 1 or lstm.bidirectional or lstm.batch_first or not lstm.bias or lstm.proj_size:
            raise ValueError("expected a one-layer, one-way, time-major LSTM with biases and no projection")
        self.lstm = lstm  # off the CPU, or with gradients: the LSTM itself
        h = lstm.hidden_size
        # torch orders the gates (input, forget, cell, output); put the three sigmoid gates first
        order = torch.cat((torch.arange(0, 2 * h), torch.arange(3 * h, 4 * h), torch.arange(2 * h, 3 * h)))
        scale = torch.ones(4 * h)
        scale[3 * h :] = 2.0
        w_ih, w_hh, b_ih, b_hh = (cast(Tensor, getattr(lstm, name)).detach() for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"))
        scale = scale.to(w_ih)
        self.register_buffer("w_in", (w_ih[order] * scale[:, None]).t().contiguous())
        self.register_buffer("w_rec", (w_hh[order] * scale[:, None]).t().contiguous())
        self.register_buffer("bias", (b_ih + b_hh)[order] * scale)

    def forward(self, seq: Tensor) -> tuple[Tensor, None]:
        """``(T, pixels, C)`` → ``(T, pixels, H)`` hidden states (and no final state, which BA-Net does not use)."""
        if not runs_as_products(seq):
            return self.lstm(seq)[0], None
        t_len, n_pix, _ = seq.shape
        out = seq.new_empty((t_len, n_pix, self.lstm.hidden_size))

        def walk(pixels: range) -> None:
            for start in range(pixels.start, pixels.stop, BLOCK_PIXELS):
                end = min(start + BLOCK_PIXELS, pixels.stop)
                self._block(seq[:, start:end], out[:, start:end])

        share_among_threads(n_pix, walk, grain=BLOCK_PIXELS)  # the blocks of one thread: results do not depend on the threads
        return out, None

    def _block(self, seq: Tensor, out: Tensor) -> None:
        """Run the LSTM over one block of pixels, writing each day's hidden state into ``out``.

        The state kept is ``e = −2·cell``, so that ``tanh(cell) = 1 − 2·sigmoid(e)`` and the hidden
        state ``out·tanh(cell) = out − 2·out·sigmoid(e)`` are one operation each.
        """
        h_size = self.lstm.hidden_size
        gates = seq.new_empty((seq.shape[1], 4 * h_size))
        state = seq.new_zeros((seq.shape[1], h_size))
        squashed = torch.empty_like(state)
        in_gate, forget, out_gate, cell_gate = gates.split(h_size, dim=1)
        for day in range(seq.shape[0]):
            torch.addmm(self.bias, seq[day], self.w_in, out=gates)
            if day:
                gates.addmm_(out[day - 1], self.w_rec)
            gates.sigmoid_()
            # cell = forget·cell + in·tanh(z), tanh(z) = 2·cell_gate − 1; so e = forget·e − 4·in·cell_gate + 2·in
            state.mul_(forget).addcmul_(in_gate, cell_gate, value=-4.0).add_(in_gate, alpha=2.0)
            torch.sigmoid(state, out=squashed)
            torch.addcmul(out_gate, out_gate, squashed, value=-2.0, out=out[day])
