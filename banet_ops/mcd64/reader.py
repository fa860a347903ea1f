"""Read MCD64A1 burned area (HDF4 sinusoidal tiles, UMD GeoTIFF windows) onto a region grid.

The region grid is 0.01° lat/lon; MCD64A1 pixels are 500 m sinusoidal (≈ 4–6 pixels per cell).
Instead of reprojecting one indicator raster per day, each source pixel is split into
``supersample``² sub-pixels once, each sub-pixel is assigned to the region cell holding its
centre, and that pixel → cell mapping (with sub-pixel counts as weights, i.e. area, since the
sinusoidal projection is equal-area) turns a month of burn dates into per-day burned fractions
with a few ``bincount`` calls.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from banet_ops.errors import DataFormatError, NotFoundError
from banet_ops.mcd64.sinusoidal import (
    TILE_PIXELS_500M,
    SinuTile,
    bbox_pixel_window,
    pixel_centres_lonlat,
    tiles_for_bbox,
)
from banet_ops.regions import Region
from banet_ops.settings import Settings, get_settings

log = logging.getLogger(__name__)

GRID_NAME = "MOD_Grid_Monthly_500m_DB_BA"
SDS_NAMES = ("Burn Date", "Burn Date Uncertainty", "QA", "First Day", "Last Day")
UNBURNED = 0
UNMAPPED = -1
WATER = -2
# Cell status codes of a label cube (uint8).
MASK_VALID = 0
MASK_UNMAPPED = 1
MASK_WATER = 2
MASK_NO_DATA = 3

HDF_NAME_RE = re.compile(r"^MCD64A1\.A(?P<year>\d{4})(?P<doy>\d{3})\.h(?P<h>\d{2})v(?P<v>\d{2})\.(?P<collection>\d{3})\.(?P<prod>\d{13})\.hdf$")
UMD_NAME_RE = re.compile(r"^MCD64monthly\.A(?P<year>\d{4})(?P<doy>\d{3})\.Win(?P<win>\d{2})\.(?P<collection>\d{3})\.burndate\.tif$")


def month_first_doy(year: int, month: int) -> int:
    """Day of year of the first day of a month (the ``DDD`` of MCD64A1 file names)."""
    return dt.date(year, month, 1).timetuple().tm_yday


def month_days(year: int, month: int) -> list[dt.date]:
    """Every day of a month."""
    return [dt.date(year, month, d) for d in range(1, calendar.monthrange(year, month)[1] + 1)]


@dataclass(frozen=True)
class Mcd64Name:
    """Parts of an MCD64A1 file name."""

    year: int
    doy: int
    tile: SinuTile
    collection: str
    production: str

    @property
    def month(self) -> int:
        return (dt.date(self.year, 1, 1) + dt.timedelta(days=self.doy - 1)).month


def parse_hdf_name(name: str) -> Mcd64Name:
    """Parse ``MCD64A1.A{YYYYDDD}.hHHvVV.CCC.{prod}.hdf``; DataFormatError otherwise."""
    m = HDF_NAME_RE.match(name)
    if not m:
        raise DataFormatError(f"{name}: expected an MCD64A1 file name like MCD64A1.A2020245.h17v04.061.2020306123456.hdf, found something else")
    h, v = int(m["h"]), int(m["v"])
    if not (0 <= h < 36 and 0 <= v < 18):
        raise DataFormatError(f"{name}: expected tile h00-h35 v00-v17, found h{h:02d}v{v:02d}")
    return Mcd64Name(int(m["year"]), int(m["doy"]), SinuTile(h, v), m["collection"], m["prod"])


@dataclass
class Mcd64Tile:
    """The SDS of one MCD64A1 tile (optionally a pixel window of it)."""

    path: Path
    tile: SinuTile
    year: int
    month: int
    rows: slice
    cols: slice
    burn_date: NDArray[np.int16]
    uncertainty: NDArray[np.uint8]
    qa: NDArray[np.uint8]
    first_day: NDArray[np.int16]
    last_day: NDArray[np.int16]


_CORNER_RE = {
    "grid": re.compile(r'GridName="?([^"\n]+)"?'),
    "ul": re.compile(r"UpperLeftPointMtrs=\(([-\d.eE+]+),([-\d.eE+]+)\)"),
    "lr": re.compile(r"LowerRightMtrs=\(([-\d.eE+]+),([-\d.eE+]+)\)"),
    "xdim": re.compile(r"XDim=(\d+)"),
    "ydim": re.compile(r"YDim=(\d+)"),
}


def parse_struct_metadata(text: str, source: str) -> tuple[str, tuple[float, float], tuple[float, float], int, int]:
    """Grid name, upper-left and lower-right corners (metres) and (XDim, YDim) from ``StructMetadata.0``."""
    found: dict[str, re.Match[str]] = {}
    for key, regex in _CORNER_RE.items():
        m = regex.search(text)
        if m is None:
            raise DataFormatError(f"{source}: StructMetadata.0 lacks {key!r}; expected an HDF-EOS2 grid definition")
        found[key] = m
    return (
        found["grid"].group(1).strip(),
        (float(found["ul"].group(1)), float(found["ul"].group(2))),
        (float(found["lr"].group(1)), float(found["lr"].group(2))),
        int(found["xdim"].group(1)),
        int(found["ydim"].group(1)),
    )


def _check_grid(sd: Any, p: Path, tile: SinuTile) -> None:
    """The file's HDF-EOS2 grid is the MCD64A1 grid of ``tile`` (name, size, corners)."""
    meta = sd.attributes().get("StructMetadata.0")
    if not isinstance(meta, str):
        raise DataFormatError(f"{p}: expected a StructMetadata.0 attribute (HDF-EOS2 grid), found none")
    grid, ul, lr, xdim, ydim = parse_struct_metadata(meta, str(p))
    if grid != GRID_NAME:
        raise DataFormatError(f"{p}: expected grid {GRID_NAME!r}, found {grid!r}")
    if (xdim, ydim) != (TILE_PIXELS_500M, TILE_PIXELS_500M):
        raise DataFormatError(f"{p}: expected a {TILE_PIXELS_500M}x{TILE_PIXELS_500M} grid, found {xdim}x{ydim}")
    for what, got, want in (("UpperLeftPointMtrs", ul, tile.upper_left), ("LowerRightMtrs", lr, tile.lower_right)):
        if abs(got[0] - want[0]) > 1.0 or abs(got[1] - want[1]) > 1.0:
            raise DataFormatError(f"{p}: expected {what} {want} for tile {tile.name}, found {got}")


def _read_sds(sd: Any, p: Path, rows: slice, cols: slice) -> dict[str, NDArray[np.generic]]:
    """The window of every MCD64A1 SDS, after checking names, shapes and the Burn Date type."""
    datasets = sd.datasets()
    missing = [n for n in SDS_NAMES if n not in datasets]
    if missing:
        raise DataFormatError(f"{p}: expected SDS {list(SDS_NAMES)}, missing {missing}")
    out: dict[str, NDArray[np.generic]] = {}
    for sds_name in SDS_NAMES:
        shape = tuple(datasets[sds_name][1])
        if shape != (TILE_PIXELS_500M, TILE_PIXELS_500M):
            raise DataFormatError(f"{p}: SDS {sds_name!r}: expected shape (2400, 2400), found {shape}")
        sds = sd.select(sds_name)
        try:
            out[sds_name] = np.asarray(sds[rows.start : rows.stop, cols.start : cols.stop])
        finally:
            sds.endaccess()
    if out["Burn Date"].dtype != np.int16:
        raise DataFormatError(f"{p}: SDS 'Burn Date': expected int16, found {out['Burn Date'].dtype}")
    return out


def read_hdf_tile(path: str | Path, window: tuple[slice, slice] | None = None) -> Mcd64Tile:
    """Read an MCD64A1 HDF4 tile, checking its grid, corners, SDS names, types and shapes.

    ``window`` (rows, cols) reads only part of each 2400 × 2400 SDS.
    """
    from pyhdf.error import HDF4Error
    from pyhdf.SD import SD, SDC

    p = Path(path)
    name = parse_hdf_name(p.name)
    try:
        sd = SD(str(p), SDC.READ)
    except HDF4Error as exc:
        raise DataFormatError(f"{p}: expected an HDF4 MCD64A1 tile, found unreadable content ({exc})", hint="delete the file and fetch it again") from None
    tile = name.tile
    rows, cols = window or (slice(0, TILE_PIXELS_500M), slice(0, TILE_PIXELS_500M))
    try:
        _check_grid(sd, p, tile)
        out = _read_sds(sd, p, rows, cols)
    except HDF4Error as exc:
        raise DataFormatError(f"{p}: expected a readable MCD64A1 tile, reading failed ({exc})", hint="delete the file and fetch it again") from None
    finally:
        sd.end()
    return Mcd64Tile(
        path=p,
        tile=tile,
        year=name.year,
        month=name.month,
        rows=rows,
        cols=cols,
        burn_date=out["Burn Date"].astype(np.int16, copy=False),
        uncertainty=out["Burn Date Uncertainty"].astype(np.uint8, copy=False),
        qa=out["QA"].astype(np.uint8, copy=False),
        first_day=out["First Day"].astype(np.int16, copy=False),
        last_day=out["Last Day"].astype(np.int16, copy=False),
    )


# --- finding files -------------------------------------------------------------------------------


def select_tiles(names: Iterable[str], region: Region, year: int, month: int, collection: str = "061") -> tuple[dict[str, str], list[SinuTile]]:
    """Pick, among file names, the month's tiles covering ``region`` (newest production wins per tile).

    Returns ``{tile name: file name}`` and the covering tiles that have no file.
    """
    doy = month_first_doy(year, month)
    wanted = {t.name: t for t in tiles_for_bbox(region.bbox)}
    best: dict[str, tuple[str, str]] = {}
    for fname in names:
        try:
            n = parse_hdf_name(fname)
        except DataFormatError:
            continue
        if n.collection != collection or n.year != year or n.doy != doy or n.tile.name not in wanted:
            continue
        if n.tile.name not in best or n.production > best[n.tile.name][0]:
            best[n.tile.name] = (n.production, fname)
    return {k: v[1] for k, v in sorted(best.items())}, [t for k, t in sorted(wanted.items()) if k not in best]


def fetch_month_tiles(region: Region, year: int, month: int, *, settings: Settings | None = None) -> tuple[list[Path], list[SinuTile]]:
    """Local paths of the MCD64A1 tiles of a month covering ``region``, from the archive (LAADS or mirror).

    Also returns the covering tiles the archive lacks (ocean-only tiles do not exist).
    """
    from banet_ops.sources.factory import make_sources

    sources = make_sources(settings or get_settings(), spatial_filter=False)
    found = sources.archive.list_day("MCD64A1", dt.date(year, month, 1))
    chosen, missing = select_tiles([i.name for i in found], region, year, month)
    if not chosen:
        raise NotFoundError(
            f"expected MCD64A1 {year}-{month:02d} tiles {[t.name for t in tiles_for_bbox(region.bbox)]} in the archive, found none",
            hint="check BANET_ARCHIVE_URL, or wait until the month is published",
        )
    by_name = {i.name: i for i in found}
    paths = [sources.fetch(by_name[f]) for f in chosen.values()]
    if missing:
        log.warning("%s %d-%02d: no MCD64A1 file for tiles %s (ocean-only tiles do not exist)", region.name, year, month, [t.name for t in missing])
    return paths, missing


# --- pixel → cell mapping ------------------------------------------------------------------------


@dataclass(frozen=True)
class CellMapping:
    """Sub-pixel counts linking the pixels of a source window to region cells.

    ``pixel`` indexes the window's flattened pixels, ``cell`` the region's flattened cells,
    ``weight`` is the number of sub-pixels of that pixel in that cell.
    """

    rows: slice
    cols: slice
    pixel: NDArray[np.int64]
    cell: NDArray[np.int64]
    weight: NDArray[np.float64]


def _mapping_from_lonlat(region: Region, lon: NDArray[np.float64], lat: NDArray[np.float64], rows: slice, cols: slice, s: int) -> CellMapping:
    r, c, inside = region.rowcol(lon, lat)
    n_cols_win = cols.stop - cols.start
    ii, jj = np.nonzero(inside)
    pixel = (ii // s) * n_cols_win + (jj // s)
    cell = r[ii, jj] * region.shape[1] + c[ii, jj]
    key = pixel * (region.shape[0] * region.shape[1]) + cell
    ukey, counts = np.unique(key, return_counts=True)
    n_cells = region.shape[0] * region.shape[1]
    return CellMapping(rows, cols, ukey // n_cells, ukey % n_cells, counts.astype(np.float64))


@lru_cache(maxsize=16)
def sinusoidal_mapping(region: Region, tile: SinuTile, supersample: int = 2) -> CellMapping | None:
    """Mapping of a sinusoidal tile's pixels to the cells of ``region`` (None if they do not meet)."""
    window = bbox_pixel_window(tile, region.bbox)
    if window is None:
        return None
    rows, cols = window
    lon, lat = pixel_centres_lonlat(tile, rows, cols, supersample)
    mapping = _mapping_from_lonlat(region, lon, lat, rows, cols, supersample)
    return mapping if mapping.cell.size else None


def geographic_mapping(region: Region, transform: tuple[float, ...], rows: slice, cols: slice, supersample: int = 1) -> CellMapping:
    """Mapping of a window of a lat/lon raster (GDAL transform ``a, b, c, d, e, f``) to region cells."""
    a, _, c, _, e, f = transform[:6]
    s = supersample
    jj = cols.start + (np.arange((cols.stop - cols.start) * s) + 0.5) / s
    ii = rows.start + (np.arange((rows.stop - rows.start) * s) + 0.5) / s
    lon, lat = np.meshgrid(c + jj * a, f + ii * e)
    return _mapping_from_lonlat(region, lon, lat, rows, cols, s)


# --- monthly burned fractions --------------------------------------------------------------------


@dataclass
class MonthLabels:
    """Per-day burned fraction of one region-month.

    ``bafrac`` float32 ``(day, y, x)``: share of the cell's 500 m pixels (by area) that burned that
    day, NaN where no source pixel covers the cell; ``mask`` uint8 ``(y, x)``: MASK_VALID, or
    MASK_UNMAPPED / MASK_WATER where at least half the cell is unmapped / water, or MASK_NO_DATA;
    ``sources`` the file names used; ``ignored_out_of_month`` pixels whose burn date lies outside
    the month.
    """

    region: Region
    year: int
    month: int
    bafrac: NDArray[np.float32]
    mask: NDArray[np.uint8]
    sources: list[str]
    ignored_out_of_month: int = 0

    @property
    def days(self) -> list[dt.date]:
        return month_days(self.year, self.month)

    def burned_area_km2(self) -> float:
        """Σ bafrac × cell area over the valid cells (ellipsoidal cell areas)."""
        frac = np.nan_to_num(self.bafrac).sum(axis=0)
        return float((frac * self.region.row_cell_area_km2()[:, None]).sum())


def accumulate_month(region: Region, year: int, month: int, sources: Iterable[tuple[str, NDArray[np.integer], CellMapping]]) -> MonthLabels:
    """Burned fraction per cell and day from (name, burn-date window, mapping) triples."""
    days = month_days(year, month)
    doy0 = month_first_doy(year, month)
    n_days = len(days)
    n_cells = region.shape[0] * region.shape[1]
    total = np.zeros(n_cells, dtype=np.float64)
    unmapped = np.zeros(n_cells, dtype=np.float64)
    water = np.zeros(n_cells, dtype=np.float64)
    burned_key: list[NDArray[np.int64]] = []
    burned_w: list[NDArray[np.float64]] = []
    names: list[str] = []
    ignored = 0
    for name, values, mapping in sources:
        names.append(name)
        vals = np.asarray(values).reshape(-1)[mapping.pixel].astype(np.int32)
        total += np.bincount(mapping.cell, mapping.weight, minlength=n_cells)
        unmapped += np.bincount(mapping.cell[vals == UNMAPPED], mapping.weight[vals == UNMAPPED], minlength=n_cells)
        water += np.bincount(mapping.cell[vals == WATER], mapping.weight[vals == WATER], minlength=n_cells)
        day = vals - doy0
        burned = vals > 0
        in_month = burned & (day >= 0) & (day < n_days)
        ignored += int((burned & ~in_month).sum())
        burned_key.append(day[in_month].astype(np.int64) * n_cells + mapping.cell[in_month])
        burned_w.append(mapping.weight[in_month])
    bafrac = np.zeros((n_days, n_cells), dtype=np.float32)
    if burned_key:
        keys = np.concatenate(burned_key)
        if keys.size:
            ukey, inv = np.unique(keys, return_inverse=True)
            sums = np.bincount(inv, np.concatenate(burned_w))
            bafrac.reshape(-1)[ukey] = sums
    covered = total > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        bafrac /= np.where(covered, total, 1.0)[None, :].astype(np.float32)
        mask = np.full(n_cells, MASK_VALID, dtype=np.uint8)
        mask[unmapped >= 0.5 * total] = MASK_UNMAPPED
        mask[(water >= 0.5 * total) & (water >= unmapped)] = MASK_WATER
    mask[~covered] = MASK_NO_DATA
    bafrac[:, ~covered] = np.nan
    if ignored:
        log.info("%s %d-%02d: %d burned pixels dated outside the month were ignored", region.name, year, month, ignored)
    rows, cols = region.shape
    return MonthLabels(region, year, month, bafrac.reshape(n_days, rows, cols), mask.reshape(rows, cols), names, ignored)


def labels_from_hdf(region: Region, year: int, month: int, files: Sequence[str | Path], supersample: int = 2) -> MonthLabels:
    """Month labels of ``region`` from MCD64A1 HDF4 tiles."""

    def sources() -> Iterable[tuple[str, NDArray[np.integer], CellMapping]]:
        for f in files:
            name = parse_hdf_name(Path(f).name)
            if (name.year, name.month) != (year, month):
                raise DataFormatError(f"{f}: expected a tile of {year}-{month:02d}, found {name.year}-{name.month:02d}")
            mapping = sinusoidal_mapping(region, name.tile, supersample)
            if mapping is None:
                continue
            tile = read_hdf_tile(f, (mapping.rows, mapping.cols))
            yield Path(f).name, tile.burn_date, mapping

    return accumulate_month(region, year, month, sources())


# --- UMD GeoTIFF windows -------------------------------------------------------------------------


def parse_umd_name(name: str) -> tuple[int, int, int]:
    """(year, month, window) of ``MCD64monthly.A{YYYYDDD}.WinNN.CCC.burndate.tif``."""
    m = UMD_NAME_RE.match(name)
    if not m:
        raise DataFormatError(f"{name}: expected a UMD window name like MCD64monthly.A2020245.Win03.061.burndate.tif, found something else")
    day = dt.date(int(m["year"]), 1, 1) + dt.timedelta(days=int(m["doy"]) - 1)
    return day.year, day.month, int(m["win"])


def find_umd_windows(folder: str | Path, region: Region, year: int, month: int) -> list[Path]:
    """The month's UMD ``burndate.tif`` files in ``folder`` (searched recursively) that intersect the region."""
    import rasterio

    out = []
    left, bottom, right, top = region.bbox
    for f in sorted(Path(folder).rglob("MCD64monthly.A*.burndate.tif")):
        try:
            y, m, _ = parse_umd_name(f.name)
        except DataFormatError:
            continue
        if (y, m) != (year, month):
            continue
        with rasterio.open(f) as ds:
            b = ds.bounds
        if b.left < right and b.right > left and b.bottom < top and b.top > bottom:
            out.append(f)
    if not out:
        raise NotFoundError(f"expected UMD burndate windows of {year}-{month:02d} intersecting {region.name} in {folder}, found none")
    return out


def labels_from_umd(region: Region, year: int, month: int, files: Sequence[str | Path], supersample: int = 1) -> MonthLabels:
    """Month labels of ``region`` from UMD monthly ``burndate.tif`` windows (EPSG:4326)."""
    import rasterio
    from rasterio.errors import RasterioIOError
    from rasterio.windows import from_bounds

    def sources() -> Iterable[tuple[str, NDArray[np.integer], CellMapping]]:
        for f in files:
            try:
                with rasterio.open(f) as ds:
                    if ds.crs is None or ds.crs.to_epsg() != 4326:
                        raise DataFormatError(f"{f}: expected a GeoTIFF in EPSG:4326, found CRS {ds.crs}")
                    win = from_bounds(*region.bbox, transform=ds.transform).round_offsets(op="floor").round_lengths(op="ceil")
                    r0, c0 = max(0, int(win.row_off) - 1), max(0, int(win.col_off) - 1)
                    r1 = min(ds.height, int(win.row_off + win.height) + 1)
                    c1 = min(ds.width, int(win.col_off + win.width) + 1)
                    if r0 >= r1 or c0 >= c1:
                        continue
                    data = ds.read(1, window=((r0, r1), (c0, c1)))
                    transform = tuple(ds.transform)[:6]
            except RasterioIOError as exc:
                raise DataFormatError(f"{f}: expected a readable GeoTIFF, found ({exc})") from None
            mapping = geographic_mapping(region, transform, slice(r0, r1), slice(c0, c1), supersample)
            yield Path(f).name, data, mapping

    return accumulate_month(region, year, month, sources())
