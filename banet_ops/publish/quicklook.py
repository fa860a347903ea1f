"""Quicklook PNG: burn dates on a fixed colour scale over a grey NIR background, with coordinates.

Colours mean the same date in every quicklook of a fire year: the scale spans the region's *fire
year* (1 January – 31 December; 1 July – 30 June for regions south of the equator, whose season
straddles the new year), like the day-of-year scale of MCD64A1 browse images, plus the three
months before it, so that every 64-day window of the fire year fits (the colours change once a
year, at the fire-year boundary, in the off-season).  Cells without a valid observation in the window are white (listed in the
legend), unburned cells show the NIR reflectance in grey.  Axes carry longitude and latitude;
a scale bar gives kilometres; the subtitle gives the burned area in km² (WGS84 ellipsoid).

The map is one RGB array (one ``imshow``); the PNG size depends only on the region shape
(:func:`quicklook_size`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from banet_ops.errors import StorageError
from banet_ops.product import Product
from banet_ops.regions import Region

MAP_WIDTH_PX = 1000  # width of the map area; height follows the region's aspect ratio
MAX_MAP_HEIGHT_PX = 1400
DPI = 100
COLORMAP = "turbo"
LEAD_MONTHS = 3  # months before the fire year on the scale: every window of the year fits
UNOBSERVED_COLOUR = (1.0, 1.0, 1.0)
NO_DATA_GREY = 0.85
MARGIN_TOP_PX = 70
MARGIN_BOTTOM_PX = 150  # longitude labels, horizontal colorbar and its date labels, legend
MARGIN_LEFT_PX = 80  # latitude labels
MARGIN_RIGHT_PX = 30
_NICE_KM = (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def _map_size(shape: tuple[int, int]) -> tuple[int, int]:
    rows, cols = shape
    width = MAP_WIDTH_PX
    height = max(1, round(width * rows / cols))
    if height > MAX_MAP_HEIGHT_PX:
        height = MAX_MAP_HEIGHT_PX
        width = max(1, round(height * cols / rows))
    return width, height


def quicklook_size(shape: tuple[int, int]) -> tuple[int, int]:
    """(width, height) in pixels of the quicklook of a region of ``shape`` (rows, cols)."""
    width, height = _map_size(shape)
    return width + MARGIN_LEFT_PX + MARGIN_RIGHT_PX, height + MARGIN_TOP_PX + MARGIN_BOTTOM_PX


def fire_year(region: Region, day: dt.date) -> tuple[dt.date, dt.date]:
    """First and last day of the fire year holding ``day``: the calendar year, or July–June south of the equator."""
    if (region.top + region.bottom) / 2 >= 0:
        return dt.date(day.year, 1, 1), dt.date(day.year, 12, 31)
    start = dt.date(day.year if day.month >= 7 else day.year - 1, 7, 1)
    return start, dt.date(start.year + 1, 6, 30)


def _add_months(day: dt.date, months: int) -> dt.date:
    m = day.year * 12 + day.month - 1 + months
    return dt.date(m // 12, m % 12 + 1, 1)


def colour_scale(region: Region, window_end: dt.date) -> tuple[dt.date, dt.date]:
    """First and last date of the colour scale: the fire year of ``window_end`` and the :data:`LEAD_MONTHS` before it."""
    start, end = fire_year(region, window_end)
    return _add_months(start, -LEAD_MONTHS), end


def _grey_background(nir: NDArray[np.float32] | None, shape: tuple[int, int]) -> NDArray[np.float32]:
    if nir is None:
        return np.full(shape, NO_DATA_GREY, dtype=np.float32)
    finite = np.isfinite(nir)
    if not finite.any():
        return np.full(shape, NO_DATA_GREY, dtype=np.float32)
    lo, hi = np.percentile(nir[finite], [2, 98])
    scale = float(hi - lo) or 1.0
    grey = np.clip((nir - lo) / scale, 0, 1) * 0.6 + 0.2  # keep the background mid-grey so colours stand out
    return np.where(finite, grey, NO_DATA_GREY).astype(np.float32)


def _rgba(product: Product, norm: Any, cmap: Any) -> NDArray[np.uint8]:
    shape = product.region.shape
    rgb = np.repeat(_grey_background(product.nir, shape)[:, :, None], 3, axis=2)
    burned = product.burned
    if burned.any():
        ordinal = product.burn_date[burned].astype("datetime64[D]").astype(np.int64) + dt.date(1970, 1, 1).toordinal()
        rgb[burned] = cmap(norm(ordinal))[:, :3]
    rgb[~product.observed_mask] = UNOBSERVED_COLOUR
    rgba = np.empty((*shape, 4), dtype=np.uint8)  # uint8 RGBA skips matplotlib's float conversions
    rgba[..., :3] = np.round(rgb * 255)
    rgba[..., 3] = 255
    return rgba


def _degrees(value: float, positive: str, negative: str) -> str:
    return f"{abs(value):g}°{positive if value >= 0 else negative}"


def _coordinates(ax: Any, region: Region) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.set_xlim(region.left, region.right)
    ax.set_ylim(region.bottom, region.top)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _degrees(round(v, 4), "E", "W")))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _degrees(round(v, 4), "N", "S")))
    ax.tick_params(labelsize=8)
    ax.grid(color="white", linewidth=0.4, alpha=0.5)


def _scale_bar(ax: Any, region: Region) -> None:
    """A bar of a round number of km, about a fifth of the map wide, at the bottom left."""
    lat = (region.top + region.bottom) / 2
    km_per_degree = 111.320 * np.cos(np.radians(lat))
    width_km = (region.right - region.left) * km_per_degree
    km = max([k for k in _NICE_KM if k <= width_km / 5] or [_NICE_KM[0]])
    x0 = region.left + 0.04 * (region.right - region.left)
    y0 = region.bottom + 0.04 * (region.top - region.bottom)
    x1 = x0 + km / km_per_degree
    ax.plot([x0, x1], [y0, y0], color="black", linewidth=4, solid_capstyle="butt")
    ax.plot([x0, x1], [y0, y0], color="white", linewidth=2, solid_capstyle="butt")
    ax.text((x0 + x1) / 2, y0 + 0.015 * (region.top - region.bottom), f"{km:g} km", ha="center", va="bottom", fontsize=8,
            bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1})  # fmt: skip


def render_quicklook(path: Path, product: Product) -> None:
    """Write the quicklook PNG of ``product`` to ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    r = product.region
    map_w, map_h = _map_size(r.shape)
    fig_w, fig_h = quicklook_size(r.shape)
    season = colour_scale(r, product.window_end)
    cmap = colormaps[COLORMAP]
    norm = Normalize(vmin=season[0].toordinal(), vmax=season[1].toordinal())

    fig = Figure(figsize=(fig_w / DPI, fig_h / DPI), dpi=DPI)
    ax = fig.add_axes((MARGIN_LEFT_PX / fig_w, MARGIN_BOTTOM_PX / fig_h, map_w / fig_w, map_h / fig_h))
    ax.imshow(_rgba(product, norm, cmap), extent=(r.left, r.right, r.bottom, r.top), interpolation="nearest", aspect="auto")
    _coordinates(ax, r)
    _scale_bar(ax, r)
    when = product.target_date.strftime("%Y-%m") if product.mode == "monthly" else product.target_date.isoformat()
    area = float(r.row_cell_area_km2()[np.nonzero(product.burned)[0]].sum())
    fig.text(0.5, 1 - 22 / fig_h, f"BA-Net {product.mode.upper()} burned area — region {r.name} — {when}", ha="center", va="center",
             fontsize=13, weight="bold")  # fmt: skip
    fig.text(0.5, 1 - 46 / fig_h, f"{area:,.2f} km² burned ({product.n_burned:,} cells of 0.01°); window {product.window_start} to "
             f"{product.window_end}; EPSG:4326", ha="center", va="center", fontsize=9)  # fmt: skip

    cax = fig.add_axes((0.12, 50 / fig_h, 0.6, 16 / fig_h))
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax, orientation="horizontal")
    ticks = [_add_months(season[0], m) for m in range(0, 12 + LEAD_MONTHS, 3)]
    bar.set_ticks([t.toordinal() for t in ticks])
    bar.set_ticklabels([t.strftime("%d %b %Y") for t in ticks], fontsize=8)
    for edge in (product.window_start, product.window_end):  # the product's window on the season's scale
        if season[0] <= edge <= season[1]:
            cax.axvline(edge.toordinal(), color="black", linewidth=1.5)
    year = fire_year(r, product.window_end)
    bar.set_label(f"burn date — fire year {year[0]:%d %b %Y} to {year[1]:%d %b %Y} and {LEAD_MONTHS} months before; black: this window", fontsize=9)
    legend = [Patch(facecolor=UNOBSERVED_COLOUR, edgecolor="black", label="no observation"),
              Patch(facecolor=(0.5, 0.5, 0.5), edgecolor="black", label="not burned (NIR)")]  # fmt: skip
    fig.legend(handles=legend, loc="lower right", bbox_to_anchor=(1 - 8 / fig_w, 36 / fig_h), fontsize=8, frameon=False)
    try:
        fig.savefig(path, dpi=DPI, format="png")
    except OSError as exc:
        raise StorageError(f"could not write the quicklook {path}: {exc}", hint="check the folder is writable and has space") from exc
