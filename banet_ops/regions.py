"""Regions (BA-Net ``R_{name}.json`` files) and the math of their 0.01° grids (DESIGN §1).

Rows run north to south, columns west to east; cell (0, 0) has its upper-left corner at
(left, top).  All arrays use ``float64`` coordinates so that a continent-sized grid keeps
sub-metre precision.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from banet_ops.errors import RegionError

MAX_CELLS = 50_000_000
# WGS84 ellipsoid
WGS84_A = 6378137.0
WGS84_F = 1 / 298.257223563
WGS84_E2 = WGS84_F * (2 - WGS84_F)


class Region(BaseModel):
    """A region as BA-Net writes it: ``{"name", "bbox": [left, bottom, right, top], "pixel_size"}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_]{1,32}$")
    bbox: tuple[float, float, float, float]
    pixel_size: float = Field(gt=0)

    @field_validator("bbox", mode="before")
    @classmethod
    def _bbox_four(cls, value: object) -> object:
        if not isinstance(value, list | tuple) or len(value) != 4:
            raise ValueError(f"expected [left, bottom, right, top], found {value!r}")
        return value

    @field_validator("bbox")
    @classmethod
    def _bbox_ok(cls, bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        left, bottom, right, top = bbox
        if not all(math.isfinite(v) for v in bbox):
            raise ValueError(f"expected four finite numbers, found {list(bbox)}")
        if not (-180 <= left <= 180 and -180 <= right <= 180):
            raise ValueError(f"expected longitudes within ±180, found left={left}, right={right}")
        if not (-90 <= bottom <= 90 and -90 <= top <= 90):
            raise ValueError(f"expected latitudes within ±90, found bottom={bottom}, top={top}")
        if not left < right:
            raise ValueError(f"expected left < right, found left={left}, right={right}")
        if not bottom < top:
            raise ValueError(f"expected bottom < top, found bottom={bottom}, top={top}")
        return bbox

    @field_validator("pixel_size")
    @classmethod
    def _size_ok(cls, pixel_size: float, info: ValidationInfo) -> float:
        if not math.isfinite(pixel_size):
            raise ValueError(f"expected a finite number, found {pixel_size}")
        bbox = info.data.get("bbox")
        if bbox is None:  # the bbox itself is invalid and already reported
            return pixel_size
        left, bottom, right, top = bbox
        n_cells = ((top - bottom) / pixel_size) * ((right - left) / pixel_size)  # a float: no 300-digit integers
        if n_cells > MAX_CELLS:
            raise ValueError(
                f"grid of {f'{n_cells:,.0f}' if n_cells < 1e15 else f'{n_cells:.3g}'} cells exceeds {MAX_CELLS:,} (pixel size {pixel_size:g}); "
                "use a larger pixel_size or split the region"
            )
        if min(round((top - bottom) / pixel_size), round((right - left) / pixel_size)) < 1:
            raise ValueError(f"expected a pixel_size no larger than the bbox ({right - left} x {top - bottom} degrees), found {pixel_size}")
        return pixel_size

    # grid -----------------------------------------------------------------------------------
    @property
    def left(self) -> float:
        return self.bbox[0]

    @property
    def bottom(self) -> float:
        return self.bbox[1]

    @property
    def right(self) -> float:
        return self.bbox[2]

    @property
    def top(self) -> float:
        return self.bbox[3]

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) = (round((top-bottom)/px), round((right-left)/px))."""
        return (
            round((self.top - self.bottom) / self.pixel_size),
            round((self.right - self.left) / self.pixel_size),
        )

    @property
    def transform(self) -> tuple[float, float, float, float, float, float]:
        """GDAL-order affine coefficients (a, b, c, d, e, f): x = a·col + b·row + c, y = d·col + e·row + f."""
        px = self.pixel_size
        return (px, 0.0, self.left, 0.0, -px, self.top)

    def affine(self):
        """The grid transform as a :class:`affine.Affine` (for rasterio)."""
        from affine import Affine

        a, b, c, d, e, f = self.transform
        return Affine(a, b, c, d, e, f)

    def lon_centres(self) -> NDArray[np.float64]:
        """Longitude of each column's cell centre, west to east."""
        return self.left + (np.arange(self.shape[1], dtype=np.float64) + 0.5) * self.pixel_size

    def lat_centres(self) -> NDArray[np.float64]:
        """Latitude of each row's cell centre, north to south."""
        return self.top - (np.arange(self.shape[0], dtype=np.float64) + 0.5) * self.pixel_size

    def rowcol(self, lon: NDArray[np.floating] | float, lat: NDArray[np.floating] | float) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
        """Row and column of the cells holding (lon, lat) and a mask of points inside the grid.

        Cells are half-open and exact: a point on a grid line belongs to the cell that starts
        there (column ``c`` spans ``[left + c px, left + (c+1) px)``, row ``r`` spans
        ``(top - (r+1) px, top - r px]``), the lines taken at their exact decimal value
        (:func:`grid_lines`), whatever the rounding of ``(lon - left) / px``.
        """
        lon_a = np.asarray(lon, dtype=np.float64)
        lat_a = np.asarray(lat, dtype=np.float64)
        col = cell_index(lon_a, self.left, self.pixel_size)
        row = cell_index(-lat_a, -self.top, self.pixel_size)
        rows, cols = self.shape
        inside = (row >= 0) & (row < rows) & (col >= 0) & (col < cols) & np.isfinite(lon_a) & np.isfinite(lat_a)
        return row, col, inside

    def xy(self, row: NDArray[np.integer] | int, col: NDArray[np.integer] | int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(lon, lat) of the centres of cells (row, col)."""
        r = np.asarray(row, dtype=np.float64)
        c = np.asarray(col, dtype=np.float64)
        return self.left + (c + 0.5) * self.pixel_size, self.top - (r + 0.5) * self.pixel_size

    def row_cell_area_km2(self) -> NDArray[np.float64]:
        """Area in km² of one cell in each row, on the WGS84 ellipsoid (exact authalic formula)."""
        edges = self.top - np.arange(self.shape[0] + 1, dtype=np.float64) * self.pixel_size
        return cell_area_km2(edges[1:], edges[:-1], self.pixel_size)

    def subregion(self, name: str, row0: int, col0: int, rows: int, cols: int) -> Region:
        """A region covering cells [row0, row0+rows) × [col0, col0+cols) of this grid."""
        px = self.pixel_size
        return Region(
            name=name,
            bbox=(self.left + col0 * px, self.top - (row0 + rows) * px, self.left + (col0 + cols) * px, self.top - row0 * px),
            pixel_size=px,
        )

    def to_file_dict(self) -> dict[str, object]:
        return {"name": self.name, "bbox": list(self.bbox), "pixel_size": self.pixel_size}


def _zone_integral(lat_deg: NDArray[np.float64]) -> NDArray[np.float64]:
    e = math.sqrt(WGS84_E2)
    s = np.sin(np.radians(lat_deg))
    return s / (2 * (1 - WGS84_E2 * s * s)) + np.log((1 + e * s) / (1 - e * s)) / (4 * e)


def cell_area_km2(lat_south: NDArray[np.float64] | float, lat_north: NDArray[np.float64] | float, width_deg: float) -> NDArray[np.float64]:
    """Area in km² of lat/lon cells between two latitudes and ``width_deg`` wide, on WGS84."""
    south = np.asarray(lat_south, dtype=np.float64)
    north = np.asarray(lat_north, dtype=np.float64)
    area_m2 = math.radians(width_deg) * WGS84_A**2 * (1 - WGS84_E2) * (_zone_integral(north) - _zone_integral(south))
    return np.abs(area_m2) / 1e6


def _first_error_line(path: Path, exc: ValidationError) -> str:
    from banet_ops.util import pydantic_problem

    return pydantic_problem(exc, source=str(path), field="field '{}'", default_field="file")


def parse_region(data: object, source: str | Path = "<region>") -> Region:
    """Validate a decoded region document; errors name the source and the field."""
    try:
        return Region.model_validate(data)
    except ValidationError as exc:
        raise RegionError(_first_error_line(Path(str(source)), exc), hint="fix the region file") from None


def load_region(path: str | Path) -> Region:
    """Load and validate one ``R_{name}.json`` file."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise RegionError(f"{p}: expected a region file, found nothing at that path") from None
    except OSError as exc:
        raise RegionError(f"{p}: expected a readable region file, found {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RegionError(f"{p}: expected JSON, found invalid content ({exc})", hint="fix the region file") from None
    region = parse_region(data, p)
    stem = p.stem
    if stem.startswith("R_") and stem[2:] != region.name:
        raise RegionError(f"{p}: field 'name': expected {stem[2:]!r} to match the file name, found {region.name!r}")
    return region


def load_regions(folder: str | Path) -> dict[str, Region]:
    """All regions in a folder of ``R_*.json`` files, by name (sorted)."""
    files = sorted(Path(folder).glob("R_*.json"))
    return {r.name: r for r in (load_region(f) for f in files)}


def get_region(name: str, folder: str | Path | None = None) -> Region:
    """The region called ``name`` from ``folder`` (default: ``BANET_REGIONS_DIR``)."""
    if folder is None:
        from banet_ops.settings import get_settings

        folder = get_settings().regions_dir
    path = Path(folder) / f"R_{name}.json"
    if not path.is_file():
        known = ", ".join(load_regions(folder)) or "none"
        raise RegionError(
            f"expected a region named {name!r} in BANET_REGIONS_DIR {folder}, found only: {known}",
            hint=f"the region files define the regions: put R_{name}.json there (or point BANET_REGIONS_DIR at its folder), then `banet-ops regions add` it",
        )
    return load_region(path)


@dataclass(frozen=True)
class Window:
    """A rectangular block of a region grid: rows [row0, row0+rows), cols [col0, col0+cols)."""

    row0: int
    col0: int
    rows: int
    cols: int


def cell_index(values: NDArray[np.float64], origin: float, step: float) -> NDArray[np.int64]:
    """``k`` with ``line(k) <= v < line(k + 1)``, ``line(k) = origin + k * step`` exact (:func:`grid_lines`); -1 for NaN."""
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    with np.errstate(invalid="ignore"):
        est = np.floor(np.where(finite, (v - origin) / step, 0.0))
    k = np.clip(est, -(2**31), 2**31).astype(np.int64)  # far outside any grid: no exactness needed there
    k = np.where(v < grid_lines(origin, step, k), k - 1, k)  # the division rounded across a line
    k = np.where(v >= grid_lines(origin, step, k + 1), k + 1, k)
    return np.where(finite, k, -1)


def grid_lines(origin: float, step: float, index: np.ndarray) -> np.ndarray:
    """``origin + index * step`` as the float64 nearest to the exact decimal value.

    That is what PostgreSQL computes for ``%(left)s + col * %(px)s`` (numeric arithmetic, then
    float8) and what region files mean: -8 + 3 * 0.01 is -7.97, not -7.970000000000001.  Exact
    with integers scaled by a power of ten and one correctly rounded division; plain float
    arithmetic when the numbers are too long for that.
    """
    o, st = Decimal(repr(float(origin))), Decimal(repr(float(step)))
    digits = max(0, -int(o.as_tuple().exponent), -int(st.as_tuple().exponent))
    if digits <= 22:
        scale = 10**digits
        o_int, st_int = int(o * scale), int(st * scale)
        lo, hi = (int(index.min()), int(index.max())) if index.size else (0, 0)
        if max(abs(o_int + lo * st_int), abs(o_int + hi * st_int)) < 2**53:
            return (o_int + index.astype(np.float64) * st_int) / scale
    return origin + index.astype(np.float64) * step
