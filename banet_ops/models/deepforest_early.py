"""``deepforest_early``: early fusion with ConvLSTM blocks at the skip connections (DeepForest, Cherif et al. 2022).

Cherif et al. (2022), "DeepForest: novel deep learning models for land use and land cover
classification using multi-temporal and -modal Sentinel data of the Amazon basin", Remote
Sensing 14(19), 5000.  Early fusion: all modalities (Red, NIR, MIR, FRP) are stacked at the input
of one 2-D encoder-decoder run on every day; ConvLSTM blocks on the skip connections merge the
encoder levels over time — one block at the bottleneck, a second at the full-resolution skip
(``lstm_blocks=2``, the default, lets every cell see its own time series); ``aspp`` adds atrous
spatial pyramid pooling at the bottleneck.  The blocks are residual.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import Tensor, nn

from banet_ops.models.blocks import ASPP, ConvLSTM, crop_to, from_days, pad_to, to_days
from banet_ops.models.spec import ArchConfig, ArchSpec
from banet_ops.models.unet_convlstm import UNet2d


class DeepForestEarlyConfig(ArchConfig):
    width: int = Field(16, ge=2, le=128)
    depth: int = Field(2, ge=1, le=5)
    lstm_blocks: Literal[1, 2] = Field(2, description="ConvLSTM blocks: 1 (bottleneck) or 2 (bottleneck and full-resolution skip).")
    aspp: bool = Field(False, description="Atrous spatial pyramid pooling at the bottleneck.")
    bidirectional: bool = True


class DeepForestEarly(nn.Module):
    def __init__(self, cfg: DeepForestEarlyConfig) -> None:
        super().__init__()
        self.depth = cfg.depth
        self.unet = UNet2d(cfg.in_channels, cfg.width, cfg.depth)
        chans = self.unet.channels
        self.aspp = ASPP(chans[-1]) if cfg.aspp else None
        self.lstm_bottom = ConvLSTM(chans[-1], chans[-1], 3, cfg.bidirectional)
        self.lstm_top = ConvLSTM(chans[0], chans[0], 3, cfg.bidirectional) if cfg.lstm_blocks == 2 else None
        self.head = nn.Conv2d(cfg.width, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, _, _, h, w = x.shape
        skips = self.unet.encode(pad_to(to_days(x), 2**self.depth))
        if self.aspp is not None:
            skips[-1] = self.aspp(skips[-1])
        skips[-1] = skips[-1] + to_days(self.lstm_bottom(from_days(skips[-1], b)))
        if self.lstm_top is not None:
            skips[0] = skips[0] + to_days(self.lstm_top(from_days(skips[0], b)))
        y = self.head(self.unet.decode(skips))
        return from_days(crop_to(y, h, w), b)


def build(cfg: ArchConfig) -> nn.Module:
    assert isinstance(cfg, DeepForestEarlyConfig)
    return DeepForestEarly(cfg)


SPEC = ArchSpec("deepforest_early", DeepForestEarlyConfig, build, "early fusion U-Net, ConvLSTM at the skip connections, optional ASPP (Cherif et al. 2022)")
