"""``segnet``: a per-day SegNet with a short temporal context and two fused input streams (Audebert et al. 2017).

Audebert, Le Saux & Lefèvre (2017), "Beyond RGB: very high resolution urban remote sensing with
multimodal deep networks", ISPRS J. 140: SegNet (Badrinarayanan et al. 2017; max-pooling indices
reused by the decoder's unpooling) for dense labelling, with two input streams fused by
summation (FuseNet style).  Here the streams are the reflectances (Red, NIR, MIR) and FRP; each
starts with a ``(2·context+1)×3×3`` convolution over the neighbouring days, so every day is
labelled from a short temporal context.  Sliding-window inference with averaged overlaps is the
engine's (:mod:`banet_ops.inference.tiling`).
"""

from __future__ import annotations

from pydantic import Field
from torch import Tensor, nn

from banet_ops.models.blocks import ConvBNReLU, crop_to, from_days, pad_to, to_days
from banet_ops.models.spec import ArchConfig, ArchSpec


class SegNetConfig(ArchConfig):
    width: int = Field(16, ge=2, le=128)
    depth: int = Field(3, ge=1, le=5)
    context: int = Field(2, ge=0, le=8, description="Days on each side that every day sees.")


class SegNet(nn.Module):
    def __init__(self, cfg: SegNetConfig) -> None:
        super().__init__()
        self.depth = cfg.depth
        k = 2 * cfg.context + 1
        w = cfg.width
        self.optical_stem = nn.Conv3d(cfg.in_channels - 1, w, (k, 3, 3), padding=(cfg.context, 1, 1), bias=False)
        self.thermal_stem = nn.Conv3d(1, w, (k, 3, 3), padding=(cfg.context, 1, 1), bias=False)
        self.stem_norm = nn.Sequential(nn.BatchNorm2d(w), nn.ReLU(inplace=True))
        chans = [w * 2**i for i in range(cfg.depth + 1)]
        self.enc = nn.ModuleList(nn.Sequential(ConvBNReLU(chans[i], chans[i + 1]), ConvBNReLU(chans[i + 1], chans[i + 1])) for i in range(cfg.depth))
        self.dec = nn.ModuleList(nn.Sequential(ConvBNReLU(chans[i + 1], chans[i + 1]), ConvBNReLU(chans[i + 1], chans[i])) for i in range(cfg.depth))
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)
        self.head = nn.Conv2d(w, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, _, _, h, w = x.shape
        m = 2**self.depth
        x = pad_to(x, m)
        y = to_days(self.optical_stem(x[:, :-1]) + self.thermal_stem(x[:, -1:]))
        y = self.stem_norm(y)
        indices = []
        for enc in self.enc:
            y, idx = self.pool(enc(y))
            indices.append(idx)
        for i in range(self.depth - 1, -1, -1):
            y = self.dec[i](self.unpool(y, indices[i]))
        return from_days(crop_to(self.head(y), h, w), b)


def build(cfg: ArchConfig) -> nn.Module:
    assert isinstance(cfg, SegNetConfig)
    return SegNet(cfg)


SPEC = ArchSpec("segnet", SegNetConfig, build, "per-day SegNet (pooling indices), optical + FRP streams fused, short temporal context (Audebert et al. 2017)")
