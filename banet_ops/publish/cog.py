"""Cloud-Optimised GeoTIFFs of a product: confidence and burn date, NoData = not observed.

* confidence: float32 in [0, 1]; NaN (NoData) where the window had no valid observation.
* burn date: int32 ``YYYYDDD`` (year * 1000 + day of year, as in MODIS granule names: 2024204 is
  2024-07-22); 0 = observed and not burned; -1 (NoData) = not observed.  MCD64A1's ``Burn Date``
  stores the day of year alone (1-366, 0 unburned, -1 unmapped, -2 water) and takes the year from
  the file's month; a 64-day window can cross a new year, so the year is in every value here.

GDAL's COG driver (rasterio wheels ship GDAL >= 3.1) lays out tiles, overviews and the header
in the order the COG specification asks for; we pass the region grid (EPSG:4326) unchanged.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from banet_ops import __version__
from banet_ops.errors import StorageError
from banet_ops.product import NO_BURN, UNOBSERVED, Product
from banet_ops.regions import Region

BLOCKSIZE = 512
COMPRESS = "DEFLATE"


def write_cog(
    path: Path,
    data: NDArray[np.generic],
    region: Region,
    *,
    nodata: float,
    resampling: str,
    tags: dict[str, str],
    description: str,
) -> None:
    """Write one band ``data`` (region shape) to ``path`` as a COG with internal overviews."""
    import rasterio
    from rasterio.errors import RasterioError

    predictor = 3 if np.issubdtype(data.dtype, np.floating) else 2
    profile = {
        "driver": "COG",
        "width": region.shape[1],
        "height": region.shape[0],
        "count": 1,
        "dtype": data.dtype.name,
        "crs": "EPSG:4326",
        "transform": region.affine(),
        "nodata": nodata,
        "compress": COMPRESS,
        "predictor": predictor,
        "blocksize": BLOCKSIZE,
        "overview_resampling": resampling,
        "resampling": resampling,
        "bigtiff": "IF_SAFER",
        "num_threads": "ALL_CPUS",
    }
    try:
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data, 1)
            dst.update_tags(**tags)
            dst.set_band_description(1, description)
    except RasterioError as exc:
        raise StorageError(f"could not write the COG {path}: {exc}", hint="check the folder is writable and has space") from exc


def _common_tags(product: Product) -> dict[str, str]:
    return {
        "BANET_REGION": product.region.name,
        "BANET_PRODUCT": product.mode,
        "BANET_TARGET_DATE": product.target_date.isoformat(),
        "BANET_WINDOW": f"{product.window_start.isoformat()}/{product.window_end.isoformat()}",
        "BANET_MODELS": "+".join(sorted(m.sha256 for m in product.models)),
        "BANET_CUBE_SNAPSHOT": product.cube_snapshot,
        "BANET_THRESHOLD": f"{product.threshold:g}",
        "BANET_TILING": product.tiling,
        "BANET_OBSERVED_DAYS": "" if product.observed_days is None else str(product.observed_days),
        "SOFTWARE": f"banet-ops {__version__}",
    }


def write_confidence_cog(path: Path, product: Product) -> None:
    """Confidence in [0, 1] for every observed cell, NaN (NoData) where the window saw nothing."""
    data = np.where(product.observed_mask, product.confidence, np.nan).astype(np.float32)
    tags = _common_tags(product) | {
        "UNITS": "1",
        "DESCRIPTION": "BA-Net confidence that the cell burned in the window; NoData (NaN) = no valid observation in the window",
    }
    write_cog(path, data, product.region, nodata=float("nan"), resampling="average", tags=tags, description="confidence")


def write_burn_date_cog(path: Path, product: Product) -> None:
    """Burn date as ``YYYYDDD`` (int32), 0 where observed and unburned, -1 (NoData) where not observed."""
    first, last = _first_last(product)
    tags = _common_tags(product) | {
        "UNITS": "YYYYDDD (year * 1000 + day of year)",
        "DESCRIPTION": f"burn date as year * 1000 + day of year (2024204 = 2024-07-22); {NO_BURN} = observed, not burned; "
        f"{UNOBSERVED} (NoData) = no valid observation in the window",
        "ENCODING": "YYYYDDD",
        "FIRST_BURN_DATE": first,
        "LAST_BURN_DATE": last,
    }
    write_cog(path, product.burn_yyyyddd, product.region, nodata=UNOBSERVED, resampling="nearest", tags=tags, description="burn_date_yyyyddd")


def _first_last(product: Product) -> tuple[str, str]:
    dates = product.burn_date[product.burned]
    if dates.size == 0:
        return "", ""
    return str(dt.date.fromisoformat(str(dates.min()))), str(dt.date.fromisoformat(str(dates.max())))
