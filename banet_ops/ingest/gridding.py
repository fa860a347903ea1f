"""Gridding of VIIRS swaths onto a region's 0.01° grid (nearest swath pixel per cell centre).

The 0.01° cells (≈ 0.8 × 1.1 km at mid-latitudes) are smaller than the M-band pixels away from
nadir (≈ 1.6 km at the scan edge), so dropping each pixel into the cell that holds its centre
leaves holes.  The method here is vectorised and needs no index structure:

1. Keep the swath pixels that are near the region (bbox + margin), observed in daylight
   (solar zenith < 85°) and hold data (finite M05 or M07).  Pixels with missing data (fill,
   bow-tie deleted) never feed a cell, so a neighbour pixel stands in for them.
2. **Binning.** Each kept pixel falls in one cell; a cell keeps its pixel nearest to the cell
   centre (``np.minimum.at`` on the distance, ties to any).
3. **Hole filling.** Each cell left empty looks at the kept pixels of the cells around it
   (offsets up to ``max_distance`` away) and takes the pixel nearest to its centre, if that pixel
   is within ``max_distance_km(sensor_zenith)`` of the centre: 1.2 km at nadir, growing as
   1/cos(sensor zenith) like the pixel footprint, at most 2.5 km.  Inside the swath footprint
   every cell therefore gets a pixel; beyond its edge cells stay empty after about one pixel.

Distances use a local equirectangular approximation (exact to < 0.1 % over a few km).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from banet_ops.ingest.composite import OBS_VARIABLES, Observations
from banet_ops.ingest.readers.viirs_l1b import SwathGranule
from banet_ops.regions import Region

KM_PER_DEG = 111.195
NADIR_MAX_DISTANCE_KM = 1.2
MAX_DISTANCE_CAP_KM = 2.5
MAX_SOLAR_ZENITH = 85.0
#: pixels kept around the region so that border cells see their true nearest pixel
PAD_CELLS = 3


def max_distance_km(sensor_zenith_deg: NDArray[np.floating]) -> NDArray[np.float32]:
    """Largest cell-centre to pixel-centre distance accepted for a pixel seen at this zenith."""
    cos = np.cos(np.radians(np.asarray(sensor_zenith_deg, dtype=np.float32)))
    with np.errstate(divide="ignore"):
        d = NADIR_MAX_DISTANCE_KM / np.maximum(cos, 1e-3)
    return np.minimum(d, MAX_DISTANCE_CAP_KM).astype(np.float32)


def _usable_pixels(granule: SwathGranule, region: Region, margin_cells: int) -> NDArray[np.int64]:
    lat = granule.geo["latitude"].ravel()
    lon = granule.geo["longitude"].ravel()
    m = margin_cells * region.pixel_size
    keep = (lat >= region.bottom - m) & (lat <= region.top + m) & (lon >= region.left - m) & (lon <= region.right + m)
    sza = granule.geo["solar_zenith"].ravel()
    keep &= sza < MAX_SOLAR_ZENITH
    keep &= np.isfinite(granule.geo["sensor_zenith"].ravel())
    if "M05" in granule.bands and "M07" in granule.bands:
        keep &= np.isfinite(granule.bands["M05"].ravel()) | np.isfinite(granule.bands["M07"].ravel())
    return np.flatnonzero(keep)


def assign_cells(
    lat: NDArray[np.floating],
    lon: NDArray[np.floating],
    sensor_zenith: NDArray[np.floating],
    region: Region,
    *,
    fill_holes: bool = True,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """For 1-D pixel arrays: (flat region cell indices, index of the pixel each of those cells takes)."""
    px = region.pixel_size
    rows_n, cols_n = region.shape
    lat64 = np.asarray(lat, np.float64)
    lon64 = np.asarray(lon, np.float64)
    row = np.floor((region.top - lat64) / px).astype(np.int64)
    col = np.floor((lon64 - region.left) / px).astype(np.int64)
    if row.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    # working window: the cells the pixels fall in, padded, clipped to the padded region
    r0 = max(int(row.min()), -PAD_CELLS)
    r1 = min(int(row.max()) + 1, rows_n + PAD_CELLS)
    c0 = max(int(col.min()), -PAD_CELLS)
    c1 = min(int(col.max()) + 1, cols_n + PAD_CELLS)
    inwin = (row >= r0) & (row < r1) & (col >= c0) & (col < c1)
    pix = np.flatnonzero(inwin)
    h, w = r1 - r0, c1 - c0
    if pix.size == 0 or h <= 0 or w <= 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    flat = (row[pix] - r0) * w + (col[pix] - c0)
    lat_c = region.top - (row[pix] + 0.5) * px
    lon_c = region.left + (col[pix] + 0.5) * px
    coslat = np.cos(np.radians(lat_c))
    d2 = ((lat64[pix] - lat_c) ** 2 + ((lon64[pix] - lon_c) * coslat) ** 2).astype(np.float32)
    best = np.full(h * w, np.inf, dtype=np.float32)
    np.minimum.at(best, flat, d2)
    win = d2 <= best[flat]
    cell_pix = np.full(h * w, -1, dtype=np.int64)
    cell_pix[flat[win]] = pix[win]

    if fill_holes:
        _fill_holes(cell_pix, h, w, r0, c0, lat64, lon64, np.asarray(sensor_zenith, np.float32), region)

    # crop the window to the region grid
    wr = np.arange(h) + r0
    wc = np.arange(w) + c0
    rsel = (wr >= 0) & (wr < rows_n)
    csel = (wc >= 0) & (wc < cols_n)
    grid = cell_pix.reshape(h, w)[np.ix_(rsel, csel)]
    rr, cc = np.nonzero(grid >= 0)
    cells = (wr[rsel][rr]) * cols_n + wc[csel][cc]
    return cells.astype(np.int64), grid[rr, cc]


def _fill_holes(
    cell_pix: NDArray[np.int64],
    h: int,
    w: int,
    r0: int,
    c0: int,
    lat: NDArray[np.float64],
    lon: NDArray[np.float64],
    sensor_zenith: NDArray[np.float32],
    region: Region,
) -> None:
    px = region.pixel_size
    filled = (cell_pix >= 0).reshape(h, w)
    if filled.all() or not filled.any():
        return
    min_cos = math.cos(math.radians(max(abs(region.top), abs(region.bottom))))
    dy_km = px * KM_PER_DEG
    dx_km = dy_km * max(min_cos, 0.1)
    k_row = math.ceil(MAX_DISTANCE_CAP_KM / dy_km)
    k_col = min(8, math.ceil(MAX_DISTANCE_CAP_KM / dx_km))
    # only holes with a filled cell within reach can be filled
    near = ndimage.maximum_filter(filled, size=(2 * k_row + 1, 2 * k_col + 1), mode="constant", cval=False)
    holes = np.flatnonzero(near.ravel() & ~filled.ravel())
    if holes.size == 0:
        return
    hr, hc = np.divmod(holes, w)
    lat_c = region.top - (hr + r0 + 0.5) * px
    lon_c = region.left + (hc + c0 + 0.5) * px
    coslat = np.cos(np.radians(lat_c))

    def lower_bound(o: tuple[int, int]) -> float:
        # no pixel of the cell at offset o can be closer to the hole centre than the cell's near edge
        return math.hypot(max(0.0, abs(o[0]) - 0.5) * dy_km, max(0.0, abs(o[1]) - 0.5) * dx_km)

    offsets = [(dr, dc) for dr in range(-k_row, k_row + 1) for dc in range(-k_col, k_col + 1) if (dr, dc) != (0, 0)]
    offsets = sorted((o for o in offsets if lower_bound(o) <= MAX_DISTANCE_CAP_KM), key=lower_bound)
    best_d = np.full(holes.size, np.inf, dtype=np.float32)
    choice = np.full(holes.size, -1, dtype=np.int64)
    dmax_pix = max_distance_km(sensor_zenith)
    active = np.arange(holes.size)
    bound = 0.0
    for dr, dc in offsets:
        lb = lower_bound((dr, dc))
        if lb > bound:
            # holes whose best pixel is nearer than anything the remaining offsets can offer are settled
            bound = lb
            active = active[best_d[active] > lb]
            if active.size == 0:
                break
        nr = hr[active] + dr
        nc = hc[active] + dc
        ok = (nr >= 0) & (nr < h) & (nc >= 0) & (nc < w)
        idx = active[ok]
        cand = cell_pix[nr[ok] * w + nc[ok]]
        has = cand >= 0
        idx, cand = idx[has], cand[has]
        if idx.size == 0:
            continue
        dy = (lat[cand] - lat_c[idx]) * KM_PER_DEG
        dx = (lon[cand] - lon_c[idx]) * coslat[idx] * KM_PER_DEG
        d = np.sqrt(dx * dx + dy * dy).astype(np.float32)
        better = (d < best_d[idx]) & (d <= dmax_pix[cand])
        best_d[idx[better]] = d[better]
        choice[idx[better]] = cand[better]
    cell_pix[holes] = choice


def grid_granule(granule: SwathGranule, region: Region, *, fill_holes: bool = True) -> Observations:
    """One swath granule as sparse observations on the region grid (see the module docstring)."""
    if granule.is_empty:
        return Observations(key=granule.key, cells=np.empty(0, np.int64), values={n: np.empty(0, np.float32) for n in OBS_VARIABLES})
    pix = _usable_pixels(granule, region, PAD_CELLS + 1)
    lat = granule.geo["latitude"].ravel()[pix]
    lon = granule.geo["longitude"].ravel()[pix]
    sz = granule.geo["sensor_zenith"].ravel()[pix]
    cells, which = assign_cells(lat, lon, sz, region, fill_holes=fill_holes)
    taken = pix[which]
    values: dict[str, NDArray[np.float32]] = {}
    for name in OBS_VARIABLES:
        source = granule.geo[name] if name in granule.geo else granule.bands[name]
        values[name] = source.ravel()[taken]
    return Observations(key=granule.key, cells=cells, values=values, files=[granule.l1b_path.name, granule.geo_path.name])


def bin_naive(granule: SwathGranule, region: Region) -> Observations:
    """Baseline: each pixel written into the cell holding its centre (last write wins, no hole filling)."""
    lat = granule.geo["latitude"].ravel()
    lon = granule.geo["longitude"].ravel()
    r, c, inside = region.rowcol(lon, lat)
    cells_all = r[inside] * region.shape[1] + c[inside]
    pix_all = np.flatnonzero(inside)
    n = region.shape[0] * region.shape[1]
    cell_pix = np.full(n, -1, np.int64)
    cell_pix[cells_all] = pix_all
    cells = np.flatnonzero(cell_pix >= 0)
    taken = cell_pix[cells]
    values = {name: (granule.geo[name] if name in granule.geo else granule.bands[name]).ravel()[taken] for name in OBS_VARIABLES}
    return Observations(key=granule.key, cells=cells, values=values)


def observations_from_grid(key: str, variables: dict[str, NDArray[np.float32]], files: list[str]) -> Observations:
    """Already-gridded layers (legacy files) as sparse observations: the cells with a sensor zenith."""
    sz = variables["sensor_zenith"].ravel()
    cells = np.flatnonzero(np.isfinite(sz))
    return Observations(key=key, cells=cells, values={n: variables[n].ravel()[cells] for n in OBS_VARIABLES}, files=files)
