"""The engine's CPU form of a fused BA-Net: its per-pixel layers as matrix products (exact to float rounding).

:func:`use_cpu_forms` swaps them in; ``EngineOptions(time_gemm=False)`` keeps torch's layers.
Figures in benchmarks/README.md.
"""

from __future__ import annotations

from typing import cast

from torch import nn

from banet_ops.inference.output_gemm import OutputGemm
from banet_ops.inference.pixel_lstm import PixelLSTM
from banet_ops.inference.time_gemm import TimeGemm, UpTimeGemm
from banet_ops.models.banet import FusedBANet


def use_cpu_forms(net: FusedBANet) -> FusedBANet:
    """Swap the per-pixel layers of ``net`` for their CPU matrix-product forms, in place (a no-op on a net that has them).

    The temporal convolutions of the encoder become :class:`~.time_gemm.TimeGemm`, the decoder's
    temporal up-convolutions :class:`~.time_gemm.UpTimeGemm`, level 1's LSTM
    :class:`~.pixel_lstm.PixelLSTM`; the last decoder level's temporal up-convolution moves into the
    head, which with its ReLU and the output layer becomes :class:`~.output_gemm.OutputGemm` (day by day).
    """
    if isinstance(net.output, OutputGemm):
        return net
    last_time = net.ups[-1].time
    output = OutputGemm(net.output.head, net.output.final_conv, None if last_time is None else UpTimeGemm(last_time))  # type: ignore[arg-type]
    for level in net.levels:
        level.add_module("time", TimeGemm(level.time))  # type: ignore[arg-type]
        if level.lstm is not None:
            level.add_module("lstm", PixelLSTM(cast(nn.LSTM, level.lstm)))
    for up in net.ups[:-1]:
        if up.time is not None:
            up.add_module("time", UpTimeGemm(up.time))  # type: ignore[arg-type]
    net.ups[-1].add_module("time", None)
    net.add_module("output", output)
    return net
