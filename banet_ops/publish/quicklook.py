"""Quicklook PNG: burn dates in a sequential colormap over a grey NIR background.

The picture is composed as one RGB array (one ``imshow``), which keeps an 800 × 1500 region well
under a second; a colorbar labelled with calendar dates and a title naming the region, product
and date complete it.  The PNG size depends only on the region shape (:func:`quicklook_size`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from banet_ops.errors import StorageError
from banet_ops.product import Product

MAP_WIDTH_PX = 1000  # width of the map area; height follows the region's aspect ratio
MAX_MAP_HEIGHT_PX = 1400
DPI = 100
COLORMAP = "plasma"
NO_DATA_GREY = 0.85
MARGIN_TOP_PX = 60
MARGIN_BOTTOM_PX = 110  # horizontal colorbar and its date labels
MARGIN_SIDE_PX = 30


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
    return width + 2 * MARGIN_SIDE_PX, height + MARGIN_TOP_PX + MARGIN_BOTTOM_PX


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


def render_quicklook(path: Path, product: Product) -> None:
    """Write the quicklook PNG of ``product`` to ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    shape = product.region.shape
    map_w, map_h = _map_size(shape)
    fig_w, fig_h = quicklook_size(shape)
    rgb = np.repeat(_grey_background(product.nir, shape)[:, :, None], 3, axis=2)
    rgba = np.empty((*shape, 4), dtype=np.uint8)  # uint8 RGBA skips matplotlib's float conversions

    ordinal = np.zeros(shape, dtype=np.float64)
    burned = product.burned
    start, end = product.window_start.toordinal(), product.window_end.toordinal()
    if burned.any():
        days = product.burn_date[burned].astype("datetime64[D]").astype(np.int64)  # days since 1970-01-01
        ordinal[burned] = days + dt.date(1970, 1, 1).toordinal()
        start, end = int(ordinal[burned].min()), int(ordinal[burned].max())
    if end <= start:
        end = start + 1
    cmap = colormaps[COLORMAP]
    norm = Normalize(vmin=start, vmax=end)
    if burned.any():
        rgb[burned] = cmap(norm(ordinal[burned]))[:, :3]
    rgba[..., :3] = np.round(rgb * 255)
    rgba[..., 3] = 255

    fig = Figure(figsize=(fig_w / DPI, fig_h / DPI), dpi=DPI)
    ax = fig.add_axes((MARGIN_SIDE_PX / fig_w, MARGIN_BOTTOM_PX / fig_h, map_w / fig_w, map_h / fig_h))
    r = product.region
    ax.imshow(rgba, extent=(r.left, r.right, r.bottom, r.top), interpolation="nearest", aspect="auto")
    ax.set_axis_off()
    when = product.target_date.strftime("%Y-%m") if product.mode == "monthly" else product.target_date.isoformat()
    title = f"BA-Net {product.mode.upper()} burned area — region {r.name} — {when}"
    subtitle = (
        f"{product.n_burned:,} burned cells; window {product.window_start} to {product.window_end}; "
        f"bbox {r.left:g}, {r.bottom:g}, {r.right:g}, {r.top:g} (EPSG:4326)"
    )
    fig.text(0.5, 1 - 22 / fig_h, title, ha="center", va="center", fontsize=13, weight="bold")
    fig.text(0.5, 1 - 45 / fig_h, subtitle, ha="center", va="center", fontsize=9)

    cax = fig.add_axes((0.15, 40 / fig_h, 0.7, 18 / fig_h))
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax, orientation="horizontal")
    ticks = np.unique(np.linspace(start, end, num=min(6, end - start + 1)).round().astype(int))
    bar.set_ticks(ticks.tolist())
    bar.set_ticklabels([dt.date.fromordinal(int(t)).isoformat() for t in ticks], fontsize=8)
    bar.set_label("burn date", fontsize=9)
    try:
        fig.savefig(path, dpi=DPI, format="png")
    except OSError as exc:
        raise StorageError(f"could not write the quicklook {path}: {exc}", hint="check the folder is writable and has space") from exc
