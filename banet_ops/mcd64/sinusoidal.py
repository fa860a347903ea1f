"""The MODIS sinusoidal tile grid (500 m, 36 × 18 tiles of 2400 × 2400 pixels).

Sphere radius, tile size and origin follow the MODIS land grid definition (data_interfaces §5.2).
Projection math uses the closed form of the sinusoidal projection on a sphere, which is what
PROJ computes for ``+proj=sinu +a=+b=6371007.181``; the tests cross-check it against pyproj.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

SINU_RADIUS = 6371007.181
SINU_PROJ4 = "+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +a=6371007.181 +b=6371007.181 +units=m +no_defs"
TILE_SIZE_M = SINU_RADIUS * math.pi / 18  # 1111950.5197665...
X_MIN = -18 * TILE_SIZE_M  # -20015109.354
Y_MAX = 9 * TILE_SIZE_M  # 10007554.677
N_H = 36
N_V = 18
TILE_PIXELS_500M = 2400
PIXEL_SIZE_500M = TILE_SIZE_M / TILE_PIXELS_500M  # 463.3127165...


@dataclass(frozen=True)
class SinuTile:
    """One tile of the MODIS sinusoidal grid and its pixel geometry."""

    h: int
    v: int
    pixels: int = TILE_PIXELS_500M

    @property
    def name(self) -> str:
        return f"h{self.h:02d}v{self.v:02d}"

    @property
    def pixel_size(self) -> float:
        return TILE_SIZE_M / self.pixels

    @property
    def upper_left(self) -> tuple[float, float]:
        """(x, y) in metres of the tile's upper-left corner (``UpperLeftPointMtrs``)."""
        return X_MIN + self.h * TILE_SIZE_M, Y_MAX - self.v * TILE_SIZE_M

    @property
    def lower_right(self) -> tuple[float, float]:
        """(x, y) in metres of the tile's lower-right corner (``LowerRightMtrs``)."""
        return X_MIN + (self.h + 1) * TILE_SIZE_M, Y_MAX - (self.v + 1) * TILE_SIZE_M

    def affine(self):  # type: ignore[no-untyped-def]  # affine.Affine
        """Pixel → sinusoidal metres transform (GDAL order), for rasterio."""
        from affine import Affine

        x0, y0 = self.upper_left
        return Affine(self.pixel_size, 0.0, x0, 0.0, -self.pixel_size, y0)


def lonlat_to_sinu(lon: NDArray[np.floating] | float, lat: NDArray[np.floating] | float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Forward sinusoidal projection (degrees → metres)."""
    lat_r = np.radians(np.asarray(lat, dtype=np.float64))
    lon_r = np.radians(np.asarray(lon, dtype=np.float64))
    return SINU_RADIUS * lon_r * np.cos(lat_r), SINU_RADIUS * lat_r


def sinu_to_lonlat(x: NDArray[np.floating] | float, y: NDArray[np.floating] | float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Inverse sinusoidal projection (metres → degrees); lon is NaN off the projected Earth."""
    lat_r = np.asarray(y, dtype=np.float64) / SINU_RADIUS
    with np.errstate(divide="ignore", invalid="ignore"):
        lon_r = np.asarray(x, dtype=np.float64) / (SINU_RADIUS * np.cos(lat_r))
    lon = np.degrees(lon_r)
    lon = np.where(np.abs(lon) <= 180.0, lon, np.nan)
    return lon, np.degrees(lat_r)


def tiles_for_bbox(bbox: tuple[float, float, float, float]) -> list[SinuTile]:
    """Sinusoidal tiles whose projected area intersects a lon/lat bbox ``(left, bottom, right, top)``.

    Exact: along a tile row the bbox spans ``x = R·lon·cos(lat)``, whose extremes lie at the
    row's latitude limits or at the equator.
    """
    left, bottom, right, top = bbox
    tiles: list[SinuTile] = []
    y_top = SINU_RADIUS * math.radians(top)
    y_bottom = SINU_RADIUS * math.radians(bottom)
    v0 = max(0, math.floor((Y_MAX - y_top) / TILE_SIZE_M))
    v1 = min(N_V - 1, math.floor((Y_MAX - y_bottom) / TILE_SIZE_M - 1e-12))
    for v in range(v0, v1 + 1):
        lat_hi = min(top, math.degrees((Y_MAX - v * TILE_SIZE_M) / SINU_RADIUS))
        lat_lo = max(bottom, math.degrees((Y_MAX - (v + 1) * TILE_SIZE_M) / SINU_RADIUS))
        if lat_lo >= lat_hi:
            continue
        lats = [lat_lo, lat_hi] + ([0.0] if lat_lo < 0 < lat_hi else [])
        xs_left = [SINU_RADIUS * math.radians(left) * math.cos(math.radians(la)) for la in lats]
        xs_right = [SINU_RADIUS * math.radians(right) * math.cos(math.radians(la)) for la in lats]
        x_lo, x_hi = min(xs_left), max(xs_right)
        h0 = max(0, math.floor((x_lo - X_MIN) / TILE_SIZE_M))
        h1 = min(N_H - 1, math.floor((x_hi - X_MIN) / TILE_SIZE_M - 1e-12))
        tiles.extend(SinuTile(h, v) for h in range(h0, h1 + 1))
    return tiles


def bbox_pixel_window(tile: SinuTile, bbox: tuple[float, float, float, float], margin: int = 1) -> tuple[slice, slice] | None:
    """Rows and columns of ``tile`` whose pixels may fall inside ``bbox`` (None when none do)."""
    left, bottom, right, top = bbox
    px = tile.pixel_size
    x0, y0 = tile.upper_left
    y_top, y_bottom = SINU_RADIUS * math.radians(top), SINU_RADIUS * math.radians(bottom)
    r0 = max(0, math.floor((y0 - y_top) / px) - margin)
    r1 = min(tile.pixels, math.ceil((y0 - y_bottom) / px) + margin)
    if r0 >= r1:
        return None
    lat_hi = math.degrees((y0 - r0 * px) / SINU_RADIUS)
    lat_lo = math.degrees((y0 - r1 * px) / SINU_RADIUS)
    lats = [max(lat_lo, bottom), min(lat_hi, top)]
    if lats[0] < 0 < lats[1]:
        lats.append(0.0)
    x_lo = min(SINU_RADIUS * math.radians(left) * math.cos(math.radians(la)) for la in lats)
    x_hi = max(SINU_RADIUS * math.radians(right) * math.cos(math.radians(la)) for la in lats)
    c0 = max(0, math.floor((x_lo - x0) / px) - margin)
    c1 = min(tile.pixels, math.ceil((x_hi - x0) / px) + margin)
    if c0 >= c1:
        return None
    return slice(r0, r1), slice(c0, c1)


def pixel_centres_lonlat(tile: SinuTile, rows: slice, cols: slice, supersample: int = 1) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(lon, lat) of the centres of the ``supersample``² sub-pixels of each pixel in a window.

    Arrays have shape ``(n_rows·s, n_cols·s)``; sub-pixel (i, j) belongs to pixel
    ``(i // s, j // s)`` of the window.
    """
    s = supersample
    px = tile.pixel_size
    x0, y0 = tile.upper_left
    r = np.arange((rows.stop - rows.start) * s, dtype=np.float64)
    c = np.arange((cols.stop - cols.start) * s, dtype=np.float64)
    y = y0 - (rows.start + (r + 0.5) / s) * px
    x = x0 + (cols.start + (c + 0.5) / s) * px
    xx, yy = np.meshgrid(x, y)
    return sinu_to_lonlat(xx, yy)
