"""Synthetic MCD64A1 tiles in the real HDF-EOS2 structure, made from known burn dates.

For tests and the demo: a synthetic scenario's true burn dates (region grid, ``datetime64[D]``)
are written as full 2400 × 2400 sinusoidal tiles (grid ``MOD_Grid_Monthly_500m_DB_BA``, SDS
``Burn Date`` int16, ``Burn Date Uncertainty`` uint8, ``QA`` uint8, ``First Day`` / ``Last Day``
int16, ``StructMetadata.0`` with the tile corners) into an archive mirror laid out like LAADS:
``{root}/61/MCD64A1/{YYYY}/{DDD}/MCD64A1.A{YYYYDDD}.hHHvVV.061.{prod}.hdf``.
Each 500 m pixel takes the value of the region cell that holds its centre.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from banet_ops.errors import ValidationError
from banet_ops.mcd64.reader import GRID_NAME, UNMAPPED, WATER, month_days, month_first_doy, read_hdf_tile
from banet_ops.mcd64.sinusoidal import TILE_PIXELS_500M, SinuTile, bbox_pixel_window, pixel_centres_lonlat, tiles_for_bbox
from banet_ops.regions import Region
from banet_ops.util import atomic_path

COLLECTION = "061"


def struct_metadata(tile: SinuTile) -> str:
    """The ``StructMetadata.0`` ODL text of an MCD64A1 tile (HDF-EOS2 grid definition)."""
    (ulx, uly), (lrx, lry) = tile.upper_left, tile.lower_right
    fields = [
        ("Burn Date", "DFNT_INT16"),
        ("Burn Date Uncertainty", "DFNT_UINT8"),
        ("QA", "DFNT_UINT8"),
        ("First Day", "DFNT_INT16"),
        ("Last Day", "DFNT_INT16"),
    ]
    data_fields = "".join(
        f'\t\t\tOBJECT=DataField_{i}\n\t\t\t\tDataFieldName="{n}"\n\t\t\t\tDataType={t}\n\t\t\t\tDimList=("YDim","XDim")\n\t\t\tEND_OBJECT=DataField_{i}\n'
        for i, (n, t) in enumerate(fields, start=1)
    )
    return (
        "GROUP=SwathStructure\nEND_GROUP=SwathStructure\nGROUP=GridStructure\n\tGROUP=GRID_1\n"
        f'\t\tGridName="{GRID_NAME}"\n\t\tXDim={TILE_PIXELS_500M}\n\t\tYDim={TILE_PIXELS_500M}\n'
        f"\t\tUpperLeftPointMtrs=({ulx:.6f},{uly:.6f})\n\t\tLowerRightMtrs=({lrx:.6f},{lry:.6f})\n"
        "\t\tProjection=GCTP_SNSOID\n\t\tProjParams=(6371007.181000,0,0,0,0,0,0,0,0,0,0,0,0)\n"
        "\t\tSphereCode=-1\n\t\tGridOrigin=HDFE_GD_UL\n\t\tGROUP=Dimension\n\t\tEND_GROUP=Dimension\n"
        f"\t\tGROUP=DataField\n{data_fields}\t\tEND_GROUP=DataField\n\t\tGROUP=MergedFields\n\t\tEND_GROUP=MergedFields\n"
        "\tEND_GROUP=GRID_1\nEND_GROUP=GridStructure\nGROUP=PointStructure\nEND_GROUP=PointStructure\nEND\n"
    )


def _core_metadata(tile: SinuTile, year: int, month: int) -> str:
    days = month_days(year, month)
    return (
        "GROUP=INVENTORYMETADATA\n\tGROUPTYPE=MASTERGROUP\n"
        '\tOBJECT=SHORTNAME\n\t\tVALUE="MCD64A1"\n\tEND_OBJECT=SHORTNAME\n'
        f'\tOBJECT=RANGEBEGINNINGDATE\n\t\tVALUE="{days[0].isoformat()}"\n\tEND_OBJECT=RANGEBEGINNINGDATE\n'
        f'\tOBJECT=RANGEENDINGDATE\n\t\tVALUE="{days[-1].isoformat()}"\n\tEND_OBJECT=RANGEENDINGDATE\n'
        f"\tOBJECT=HORIZONTALTILENUMBER\n\t\tVALUE={tile.h}\n\tEND_OBJECT=HORIZONTALTILENUMBER\n"
        f"\tOBJECT=VERTICALTILENUMBER\n\t\tVALUE={tile.v}\n\tEND_OBJECT=VERTICALTILENUMBER\n"
        "END_GROUP=INVENTORYMETADATA\nEND\n"
    )


def tile_arrays(
    region: Region,
    tile: SinuTile,
    year: int,
    month: int,
    burn_dates: NDArray[np.datetime64],
    water: NDArray[np.bool_] | None = None,
    unmapped: NDArray[np.bool_] | None = None,
    base_burn: NDArray[np.int16] | None = None,
) -> dict[str, NDArray[np.generic]]:
    """The five SDS of one tile-month: pixels inside the region copy their cell, the rest is unburned land.

    ``base_burn`` (a tile's "Burn Date") gives the pixels outside the region instead: how tiles
    shared by several regions keep what the others wrote.
    """
    n = TILE_PIXELS_500M
    doy0 = month_first_doy(year, month)
    doy_last = doy0 + len(month_days(year, month)) - 1
    burn = np.zeros((n, n), dtype=np.int16) if base_burn is None else np.array(base_burn, dtype=np.int16)
    if burn.shape != (n, n):
        raise ValidationError(f"base burn date: expected a {n}x{n} tile, found {burn.shape}")
    window = bbox_pixel_window(tile, region.bbox, margin=0)
    if window is not None:
        rows, cols = window
        lon, lat = pixel_centres_lonlat(tile, rows, cols)
        r, c, inside = region.rowcol(lon, lat)
        dates = burn_dates[r[inside], c[inside]]
        first = np.datetime64(dt.date(year, month, 1), "D")
        offset = (dates - first).astype("timedelta64[D]").astype(np.int64)
        ok = ~np.isnat(dates) & (offset >= 0) & (offset <= doy_last - doy0)
        vals = np.where(ok, offset + doy0, 0).astype(np.int16)
        if unmapped is not None:
            vals = np.where(unmapped[r[inside], c[inside]], np.int16(UNMAPPED), vals)
        if water is not None:
            vals = np.where(water[r[inside], c[inside]], np.int16(WATER), vals)
        burn[rows, cols][inside] = vals  # a view: pixels outside the region keep their value
    burned = burn > 0
    land = burn != WATER
    valid = land & (burn != UNMAPPED)
    uncertainty = np.where(burned, 1, 0).astype(np.uint8)
    qa = (land.astype(np.uint8) | (valid.astype(np.uint8) << 1)).astype(np.uint8)
    first_day = np.where(valid, np.where(burned, np.maximum(burn - 1, 1), doy0), 0).astype(np.int16)
    last_day = np.where(valid, np.where(burned, burn + 1, doy_last), 0).astype(np.int16)
    return {"Burn Date": burn, "Burn Date Uncertainty": uncertainty, "QA": qa, "First Day": first_day, "Last Day": last_day}


_SDS_ATTRS: dict[str, dict[str, object]] = {
    "Burn Date": {
        "long_name": "ordinal day of burn",
        "units": "day of year",
        "valid_range": [-2, 366],
        "_FillValue": -1,
        "water": -2,
        "unmapped": -1,
        "unburned": 0,
    },
    "Burn Date Uncertainty": {"long_name": "uncertainty in day of burn", "units": "days", "valid_range": [0, 100], "_FillValue": 0},
    "QA": {"long_name": "quality assurance indicators", "units": "bit field", "valid_range": [0, 255], "_FillValue": 0},
    "First Day": {"long_name": "first day of reliable change detection", "units": "day of year", "valid_range": [0, 366], "_FillValue": 0},
    "Last Day": {"long_name": "last day of reliable change detection", "units": "day of year", "valid_range": [0, 366], "_FillValue": 0},
}


def write_hdf_tile(path: str | Path, tile: SinuTile, year: int, month: int, arrays: dict[str, NDArray[np.generic]]) -> Path:
    """Write one MCD64A1 tile with pyhdf (deflate-compressed SDS), atomically (temp then rename)."""
    from pyhdf.SD import SD, SDC

    types = {np.dtype(np.int16): SDC.INT16, np.dtype(np.uint8): SDC.UINT8}
    attr_types = {np.dtype(np.int16): SDC.INT16, np.dtype(np.uint8): SDC.UINT8}
    p = Path(path)
    with atomic_path(p) as tmp:
        sd = SD(str(tmp), SDC.WRITE | SDC.CREATE | SDC.TRUNC)
        try:
            sd.attr("StructMetadata.0").set(SDC.CHAR8, struct_metadata(tile))
            sd.attr("CoreMetadata.0").set(SDC.CHAR8, _core_metadata(tile, year, month))
            for name, arr in arrays.items():
                dtype = np.dtype(arr.dtype)
                if arr.shape != (TILE_PIXELS_500M, TILE_PIXELS_500M) or dtype not in types:
                    raise ValidationError(f"SDS {name!r}: expected a 2400x2400 int16/uint8 array, found {arr.shape} {dtype}")
                sds = sd.create(name, types[dtype], arr.shape)
                sds.dim(0).setname(f"YDim:{GRID_NAME}")
                sds.dim(1).setname(f"XDim:{GRID_NAME}")
                sds.setcompress(SDC.COMP_DEFLATE, 4)
                for key, value in _SDS_ATTRS[name].items():
                    if isinstance(value, str):
                        sds.attr(key).set(SDC.CHAR8, value)
                    else:
                        sds.attr(key).set(attr_types[dtype], value if isinstance(value, list) else [value])
                sds[:] = arr
                sds.endaccess()
        finally:
            sd.end()
    return p


def tile_file_name(tile: SinuTile, year: int, month: int) -> str:
    """The file name of a synthetic tile (production time: the first day of the next month)."""
    doy = month_first_doy(year, month)
    nxt = (dt.date(year, month, 28) + dt.timedelta(days=4)).replace(day=1)
    prod = f"{nxt.year:04d}{nxt.timetuple().tm_yday:03d}000000"
    return f"MCD64A1.A{year:04d}{doy:03d}.{tile.name}.{COLLECTION}.{prod}.hdf"


def months_between(first: dt.date, last: dt.date) -> list[tuple[int, int]]:
    """(year, month) of every month from ``first`` to ``last`` inclusive."""
    out = []
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def month_burn_dates(burn_dates: NDArray[np.datetime64], year: int, month: int) -> NDArray[np.datetime64]:
    """One date per cell for a month's tile: a raster as it is, or of a stack the earliest burn in the month."""
    dates = burn_dates.astype("datetime64[D]")
    if dates.ndim == 2:
        return dates
    first = np.datetime64(dt.date(year, month, 1), "D")
    following = np.datetime64(dt.date(year + month // 12, month % 12 + 1, 1), "D")
    out = np.full(dates.shape[1:], np.datetime64("NaT"), dtype="datetime64[D]")
    for layer in dates[::-1]:  # earlier layers win
        inside = ~np.isnat(layer) & (layer >= first) & (layer < following)
        out[inside] = layer[inside]
    return out


def write_mcd64a1(
    root: str | Path,
    region: Region,
    burn_dates: NDArray[np.datetime64],
    months: Iterable[tuple[int, int]],
    *,
    water: NDArray[np.bool_] | None = None,
    unmapped: NDArray[np.bool_] | None = None,
) -> list[Path]:
    """Write the MCD64A1 tiles covering ``region`` for each (year, month) into an archive mirror.

    ``burn_dates`` is the truth on the region grid (``datetime64[D]``, NaT = unburned): one raster,
    or a stack ``(n, rows, cols)`` of every burn of each cell (cells burned twice), of which each
    month's tile takes the burn in that month (MCD64A1 maps one burn per pixel and month: the
    earliest of the month).  ``water`` / ``unmapped`` optional boolean rasters on the same grid.  A
    tile already in the mirror (another region on the same tile) keeps its pixels outside this
    region.  Returns the files written.
    """
    if burn_dates.shape[-2:] != region.shape or burn_dates.ndim not in (2, 3):
        raise ValidationError(f"burn dates: expected shape {region.shape} of region {region.name} (or a stack of them), found {burn_dates.shape}")
    out = []
    for year, month in months:
        folder = Path(root) / str(int(COLLECTION)) / "MCD64A1" / f"{year:04d}" / f"{month_first_doy(year, month):03d}"
        dates = month_burn_dates(burn_dates, year, month)
        for tile in tiles_for_bbox(region.bbox):
            path = folder / tile_file_name(tile, year, month)
            base = read_hdf_tile(path).burn_date if path.exists() else None
            arrays = tile_arrays(region, tile, year, month, dates, water, unmapped, base_burn=base)
            out.append(write_hdf_tile(path, tile, year, month, arrays))
    return out
