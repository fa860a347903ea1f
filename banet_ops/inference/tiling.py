"""Tiling plans and blending weights for sliding-window inference.

Two start rules:

* ``snap`` (ours): tiles every ``tile - overlap`` pixels, the last tile moved back so it ends on
  the region edge, so padding happens only when the region is smaller than a tile;
* ``baseline`` (the published BA-Net procedure): starts ``range(0, size - 1, step)``, tiles that
  run past the edge are padded with zeros.

Presets (``BANET_TILING``, ``banet-ops infer --tiling``), see :data:`PRESETS`:

* ``published`` (the default): the published grid — 128-px tiles starting every 100 px from the
  origin, the last ones running past the edge and padded with raw zeros before standardisation,
  overlaps averaged uniformly.  Outputs equal the published procedure's (to float rounding).
* ``fast``: 256-px tiles, 32-px overlap, ``snap`` starts and cosine blending; about 2x less
  compute, but cells near tile borders differ from ``published`` (see benchmarks/README.md).

Blending: each tile's output is multiplied by a separable weight ``w(y) * w(x)`` and the
accumulated sum is divided by the accumulated weight, so a uniform prediction stays uniform
across tile borders.  ``uniform`` weights (all ones) reproduce the published overlap average;
``cosine`` and ``linear`` ramps over the overlap down-weight tile borders, where the
convolutions see zero padding instead of context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from banet_ops.errors import ValidationError

Blend = Literal["cosine", "linear", "uniform"]
StartRule = Literal["snap", "baseline"]
MODEL_MULTIPLE = 32  # five spatial halvings in BA-Net


@dataclass(frozen=True)
class Tiling:
    """How to cut a region into model tiles: size, overlap, blending and start rule."""

    tile: int = 256
    overlap: int = 32
    blend: Blend = "cosine"
    starts: StartRule = "snap"

    def __post_init__(self) -> None:
        if self.tile < MODEL_MULTIPLE or self.tile % MODEL_MULTIPLE:
            raise ValidationError(f"tile: expected a positive multiple of {MODEL_MULTIPLE} pixels, found {self.tile}", hint="use 128, 256, 512 …")
        if not 0 <= self.overlap < self.tile:
            raise ValidationError(f"overlap: expected 0 <= overlap < tile ({self.tile}), found {self.overlap}")

    @property
    def step(self) -> int:
        return self.tile - self.overlap

    @classmethod
    def baseline(cls) -> Tiling:
        """The published procedure: 128 x 128 tiles every 100 pixels, overlaps averaged."""
        return cls(tile=128, overlap=28, blend="uniform", starts="baseline")

    @property
    def label(self) -> str:
        """The preset name when this is a preset, else ``custom:<tile>/<overlap>/<blend>/<starts>``."""
        for name, preset in PRESETS.items():
            if preset == self:
                return name
        return f"custom:{self.tile}/{self.overlap}/{self.blend}/{self.starts}"


PRESETS: dict[str, Tiling] = {
    "published": Tiling(tile=128, overlap=28, blend="uniform", starts="baseline"),
    "fast": Tiling(tile=256, overlap=32, blend="cosine", starts="snap"),
}
DEFAULT_PRESET = "published"


def tiling_preset(name: str, *, tile: int | None = None, overlap: int | None = None) -> Tiling:
    """The tiling of preset ``name``, with ``tile``/``overlap`` overriding its own (a custom tiling then)."""
    if name not in PRESETS:
        raise ValidationError(f"tiling: expected one of {', '.join(PRESETS)}, found {name!r}", hint="set BANET_TILING or --tiling")
    base = PRESETS[name]
    if tile is None and overlap is None:
        return base
    return Tiling(tile=tile or base.tile, overlap=base.overlap if overlap is None else overlap, blend=base.blend, starts=base.starts)


def tile_starts(size: int, tile: int, step: int, rule: StartRule) -> list[int]:
    """Start offsets along one axis of length ``size``."""
    if size <= 0:
        raise ValidationError(f"expected a positive axis length, found {size}")
    if rule == "baseline":
        return list(range(0, max(size - 1, 1), step))
    if size <= tile:
        return [0]
    n = math.ceil((size - tile) / step) + 1
    starts = [min(i * step, size - tile) for i in range(n)]
    return sorted(set(starts))


def ramp(length: int, overlap: int, blend: Blend) -> NDArray[np.float64]:
    """1D blending weight of a tile of ``length`` pixels; strictly positive, ramps over ``overlap`` pixels at both ends."""
    w = np.ones(length, dtype=np.float64)
    if blend == "uniform" or overlap == 0:
        return w
    n = min(overlap, length // 2)
    pos = (np.arange(n) + 0.5) / n  # in (0, 1): never zero, so every pixel keeps a weight
    edge = 0.5 - 0.5 * np.cos(np.pi * pos) if blend == "cosine" else pos
    w[:n] = edge
    w[length - n :] = edge[::-1]
    return w


@dataclass(frozen=True)
class TileBox:
    """One tile: its start in the region, the region rows/cols it covers and its index in the plan."""

    index: int
    row: int  # index of its tile-row
    y0: int
    x0: int
    h: int  # valid (inside the region) extent
    w: int


@dataclass(frozen=True)
class TilePlan:
    """All tiles of a ``height`` x ``width`` region, row-major, with the model tile shape and weights."""

    height: int
    width: int
    tile_h: int
    tile_w: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]
    weight_y: NDArray[np.float32]
    weight_x: NDArray[np.float32]

    @property
    def boxes(self) -> list[TileBox]:
        out: list[TileBox] = []
        for r, y in enumerate(self.ys):
            for x in self.xs:
                out.append(TileBox(len(out), r, y, x, min(self.tile_h, self.height - y), min(self.tile_w, self.width - x)))
        return out

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)


def _round_up(n: int, m: int) -> int:
    return -(-n // m) * m


def plan_tiles(height: int, width: int, tiling: Tiling) -> TilePlan:
    """The tiles covering a ``height`` x ``width`` region.

    With the ``snap`` rule a region smaller than the tile gets a smaller model tile (the region
    rounded up to a multiple of 32, zero-padded), which saves compute without changing results
    much; the ``baseline`` rule always uses the full tile, as published.
    """
    th = tw = tiling.tile
    if tiling.starts == "snap":
        th = min(th, _round_up(height, MODEL_MULTIPLE))
        tw = min(tw, _round_up(width, MODEL_MULTIPLE))
    ys = tile_starts(height, th, tiling.step, tiling.starts)
    xs = tile_starts(width, tw, tiling.step, tiling.starts)
    return TilePlan(
        height=height,
        width=width,
        tile_h=th,
        tile_w=tw,
        ys=tuple(ys),
        xs=tuple(xs),
        weight_y=ramp(th, tiling.overlap, tiling.blend).astype(np.float32),
        weight_x=ramp(tw, tiling.overlap, tiling.blend).astype(np.float32),
    )
