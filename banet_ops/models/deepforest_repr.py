"""``deepforest_repr``: representation fusion of an optical and a thermal branch (DeepForest, Cherif et al. 2022).

Two branches, their features concatenated before a fusion head: an optical branch (the
reflectance bands — Red, NIR, MIR — through a per-day U-Net with a ConvLSTM at its bottleneck)
and a thermal / active-fire branch (the FRP time series through a full-resolution ConvLSTM).
Each branch also has its own head; training weighs their losses ``optical_weight`` /
``thermal_weight`` (70/30 as in DeepForest) on top of the fused output's loss
(:meth:`DeepForestRepr.forward_with_aux`).  The FRP band is the last input channel.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import Tensor, nn

from banet_ops.models.blocks import ConvBNReLU, ConvLSTM, crop_to, from_days, pad_to, to_days
from banet_ops.models.spec import ArchConfig, ArchSpec
from banet_ops.models.unet_convlstm import UNet2d


class DeepForestReprConfig(ArchConfig):
    width: int = Field(16, ge=2, le=128, description="Optical branch width.")
    thermal_width: int = Field(8, ge=2, le=64, description="Thermal branch ConvLSTM channels.")
    depth: int = Field(2, ge=1, le=5)
    optical_weight: float = Field(0.7, ge=0, description="Loss weight of the optical branch head.")
    thermal_weight: float = Field(0.3, ge=0, description="Loss weight of the thermal branch head.")
    bidirectional: bool = True


class DeepForestRepr(nn.Module):
    def __init__(self, cfg: DeepForestReprConfig) -> None:
        super().__init__()
        if cfg.in_channels < 2:
            raise ValueError("deepforest_repr needs optical bands and FRP (in_channels >= 2)")
        self.depth = cfg.depth
        self.weights = (cfg.optical_weight, cfg.thermal_weight)
        self.optical = UNet2d(cfg.in_channels - 1, cfg.width, cfg.depth)
        bottom = self.optical.channels[-1]
        self.optical_lstm = ConvLSTM(bottom, bottom, 3, cfg.bidirectional)
        self.thermal_in = ConvBNReLU(1, cfg.thermal_width)
        self.thermal = ConvLSTM(cfg.thermal_width, cfg.thermal_width, 3, cfg.bidirectional)
        self.fuse = ConvBNReLU(cfg.width + cfg.thermal_width, cfg.width)
        self.head = nn.Conv2d(cfg.width, 1, 1)
        self.optical_head = nn.Conv2d(cfg.width, 1, 1)
        self.thermal_head = nn.Conv2d(cfg.thermal_width, 1, 1)
        for aux in (self.optical_head.bias, self.thermal_head.bias):  # burns are rare: the branch heads start near p = 0.005, like the output
            if aux is not None:
                nn.init.constant_(aux, math.log(0.005 / 0.995))

    def forward_with_aux(self, x: Tensor) -> tuple[Tensor, list[tuple[Tensor, float]]]:
        b, _, _, h, w = x.shape
        days = pad_to(to_days(x), 2**self.depth)
        skips = self.optical.encode(days[:, :-1])
        skips[-1] = skips[-1] + to_days(self.optical_lstm(from_days(skips[-1], b)))
        f_opt = self.optical.decode(skips)
        f_th = self.thermal_in(days[:, -1:])
        f_th = f_th + to_days(self.thermal(from_days(f_th, b)))
        fused = self.head(self.fuse(torch.cat((f_opt, f_th), dim=1)))

        def out(t: Tensor) -> Tensor:
            return from_days(crop_to(t, h, w), b)

        return out(fused), [(out(self.optical_head(f_opt)), self.weights[0]), (out(self.thermal_head(f_th)), self.weights[1])]

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_aux(x)[0]


def build(cfg: ArchConfig) -> nn.Module:
    assert isinstance(cfg, DeepForestReprConfig)
    return DeepForestRepr(cfg)


SPEC = ArchSpec(
    "deepforest_repr", DeepForestReprConfig, build, "representation fusion: optical U-Net+ConvLSTM and FRP ConvLSTM branches, 70/30 heads (Cherif et al. 2022)"
)
