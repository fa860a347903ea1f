"""``unet_convlstm``: a 2-D U-Net (FCN) on single days with a ConvLSTM at its bottleneck (Sefrin et al. 2021).

Sefrin, Riese & Keller (2021), "Deep learning for land cover change detection", Remote Sensing
13(1), 78: a U-Net trained on single images is reused as the encoder/decoder of a U-Net +
ConvLSTM that predicts on sequences.  Here the ConvLSTM is added *residually* to the bottleneck,
so ``forward(x, temporal=False)`` is exactly the 2-D FCN: pre-train it on single days, then train
the sequence model from those weights (:mod:`banet_ops.training.zoo_train`).
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from banet_ops.models.blocks import ConvLSTM, DoubleConv, crop_to, from_days, pad_to, to_days
from banet_ops.models.spec import ArchConfig, ArchSpec


class UNetConvLSTMConfig(ArchConfig):
    width: int = Field(16, ge=2, le=128, description="Channels of the first level (doubled per level).")
    depth: int = Field(2, ge=1, le=5, description="Down-sampling levels.")
    bidirectional: bool = Field(True, description="ConvLSTM forward and backward in time.")


class UNet2d(nn.Module):
    """A 2-D U-Net split into :meth:`encode` (skip features, finest first) and :meth:`decode`."""

    def __init__(self, in_ch: int, width: int, depth: int) -> None:
        super().__init__()
        chans = [width * 2**i for i in range(depth + 1)]
        self.channels = chans
        self.inc = DoubleConv(in_ch, chans[0])
        self.pool = nn.MaxPool2d(2)
        self.downs = nn.ModuleList(DoubleConv(chans[i], chans[i + 1]) for i in range(depth))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2) for i in range(depth))
        self.decs = nn.ModuleList(DoubleConv(2 * chans[i], chans[i]) for i in range(depth))

    def encode(self, x: Tensor) -> list[Tensor]:
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(self.pool(skips[-1])))
        return skips

    def decode(self, skips: list[Tensor]) -> Tensor:
        y = skips[-1]
        for i in range(len(self.downs) - 1, -1, -1):
            y = self.decs[i](torch.cat((skips[i], self.ups[i](y)), dim=1))
        return y


class UNetConvLSTM(nn.Module):
    def __init__(self, cfg: UNetConvLSTMConfig) -> None:
        super().__init__()
        self.depth = cfg.depth
        self.unet = UNet2d(cfg.in_channels, cfg.width, cfg.depth)
        bottom = self.unet.channels[-1]
        self.temporal = ConvLSTM(bottom, bottom, 3, cfg.bidirectional)
        self.head = nn.Conv2d(cfg.width, 1, 1)

    def forward(self, x: Tensor, temporal: bool = True) -> Tensor:
        b, _, _, h, w = x.shape
        skips = self.unet.encode(pad_to(to_days(x), 2**self.depth))
        if temporal:
            deep = from_days(skips[-1], b)
            skips[-1] = skips[-1] + to_days(self.temporal(deep))
        y = self.head(self.unet.decode(skips))
        return from_days(crop_to(y, h, w), b)


def build(cfg: ArchConfig) -> nn.Module:
    assert isinstance(cfg, UNetConvLSTMConfig)
    return UNetConvLSTM(cfg)


SPEC = ArchSpec("unet_convlstm", UNetConvLSTMConfig, build, "2-D U-Net on single days + bidirectional ConvLSTM at the bottleneck (Sefrin et al. 2021)")
