"""The engine's CPU form of a fused BA-Net: its per-pixel layers as matrix products (exact to float rounding).

:func:`use_time_gemm` swaps them in; ``EngineOptions(time_gemm=False)`` keeps torch's layers.
Figures in benchmarks/README.md.
"""

from __future__ import annotations

from typing import cast

from torch import nn

from banet_ops.inference.output_gemm import OutputGemm
from banet_ops.inference.pixel_lstm import PixelLSTM
from banet_ops.inference.time_gemm import TimeGemm, UpTimeGemm
from banet_ops.models.banet import FusedBANet


def use_time_gemm(net: FusedBANet) -> FusedBANet:
    """Swap the per-pixel layers of ``net`` for their CPU matrix-product forms, in place.

    The temporal convolutions of the encoder become :class:`~.time_gemm.TimeGemm`, the decoder's temporal
    up-convolutions :class:`~.time_gemm.UpTimeGemm`, level 1's LSTM :class:`~.pixel_lstm.PixelLSTM`;
    the last decoder level's temporal up-convolution moves into the head, which with its ReLU and
    the output layer becomes :class:`~.output_gemm.OutputGemm` (day by day).
    """
    for level in net.levels:
        level.add_module("time", TimeGemm(level.time))  # type: ignore[arg-type]
        if level.lstm is not None:
            level.add_module("lstm", PixelLSTM(cast(nn.LSTM, level.lstm)))
    for up in net.ups:
        if up.time is not None:
            up.add_module("time", UpTimeGemm(up.time))  # type: ignore[arg-type]
    last = net.ups[-1]
    up_time = cast(UpTimeGemm | None, last.time)
    last.add_module("time", None)
    net.add_module("output", OutputGemm(net.output.head, net.output.final_conv, up_time))  # type: ignore[arg-type]
    return net
