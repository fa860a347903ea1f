"""The label cube of a region: MCD64A1 per-day burned fraction on the region grid.

One Icechunk repository per region at ``BANET_CUBE_ROOT/<region>-labels`` (local folder or
``s3://bucket/prefix``), a Zarr group with dims (time, lat, lon):

* ``bafrac`` float32 — share of the cell's 500 m pixels that burned that day (NaN: no label);
* ``mask`` uint8 — 0 valid, 1 unmapped, 2 water, 3 no data (per day, the month's status);
* ``available`` bool (time,) — the day's month has been labelled;
* coordinates ``time`` (days since 2000-01-01, CF), ``lat``, ``lon`` (cell centres).

The time axis starts on 2000-01-01 (MCD64A1 starts in November 2000) and grows as months are
written.  Each month is one commit, so a crash leaves either the old or the new month.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from banet_ops.cube.storage import CubeLocation, cube_location, open_repository, readonly_session
from banet_ops.errors import CubeNotFoundError, DataFormatError, ValidationError
from banet_ops.mcd64.reader import MASK_NO_DATA, MonthLabels
from banet_ops.regions import Region
from banet_ops.settings import Settings

log = logging.getLogger(__name__)

TIME_ORIGIN = dt.date(2000, 1, 1)
TIME_CHUNK = 32
SPACE_CHUNK = 256


def label_cube_location(region_name: str, settings: Settings | None = None) -> CubeLocation:
    """The label cube's location: the region cube's, with ``-labels`` appended (``<root>/<region>-labels``)."""
    loc = cube_location(region_name, settings=settings)
    if loc.path is not None:
        return replace(loc, region=f"{region_name}-labels", path=loc.path.with_name(f"{region_name}-labels"))
    return replace(loc, region=f"{region_name}-labels", prefix=f"{loc.prefix}-labels")


def _open_repo(loc: CubeLocation, create: bool) -> Any:
    try:
        return open_repository(loc, create=create)
    except CubeNotFoundError:
        raise CubeNotFoundError(
            f"expected a label cube at {loc.url}, found none", hint="run `banet-ops labels --region R --month YYYY-MM` first"
        ) from None


def _arr(root: Any, name: str) -> Any:
    """The zarr array ``name`` of a label group (DataFormatError when it is missing or a group)."""
    import zarr

    node = root.get(name)
    if not isinstance(node, zarr.Array):
        raise DataFormatError(f"label cube: expected an array {name!r}, found {type(node).__name__}", hint="rebuild the label cube")
    return node


def _day_index(day: dt.date) -> int:
    return (day - TIME_ORIGIN).days


def write_month_labels(labels: MonthLabels, *, settings: Settings | None = None) -> str:
    """Store one region-month of labels in one commit; returns the snapshot id (re-running rewrites the same values)."""
    import zarr

    region = labels.region
    days = labels.days
    if days[0] < TIME_ORIGIN:
        raise ValidationError(f"labels {region.name}: expected a month from {TIME_ORIGIN:%Y-%m} on, found {labels.year}-{labels.month:02d}")
    loc = label_cube_location(region.name, settings)
    location = loc.url
    repo = _open_repo(loc, create=True)
    session = repo.writable_session("main")
    root = zarr.open_group(session.store, mode="a")
    rows, cols = region.shape
    i0, i1 = _day_index(days[0]), _day_index(days[-1]) + 1
    if "bafrac" not in root:
        region_doc: dict[str, Any] = {"name": region.name, "bbox": list(region.bbox), "pixel_size": region.pixel_size}
        root.attrs.update({"region": region_doc, "title": f"MCD64A1 burned fraction labels of region {region.name}", "Conventions": "CF-1.8"})
        chunks = (TIME_CHUNK, min(SPACE_CHUNK, rows), min(SPACE_CHUNK, cols))
        a = root.create_array("bafrac", shape=(i1, rows, cols), chunks=chunks, dtype="float32", fill_value=np.nan, dimension_names=("time", "lat", "lon"))
        a.attrs.update({"long_name": "fraction of the cell's MCD64A1 500 m pixels burned that day", "units": "1"})
        m = root.create_array("mask", shape=(i1, rows, cols), chunks=chunks, dtype="uint8", fill_value=MASK_NO_DATA, dimension_names=("time", "lat", "lon"))
        m.attrs.update({"long_name": "label status", "flag_values": [0, 1, 2, 3], "flag_meanings": "valid unmapped water no_data"})
        av = root.create_array("available", shape=(i1,), chunks=(4096,), dtype="bool", fill_value=False, dimension_names=("time",))
        av.attrs.update({"long_name": "the day's month has MCD64A1 labels"})
        t = root.create_array("time", shape=(i1,), chunks=(4096,), dtype="int32", fill_value=0, dimension_names=("time",))
        t.attrs.update({"units": f"days since {TIME_ORIGIN.isoformat()}", "calendar": "proleptic_gregorian", "standard_name": "time"})
        lat = root.create_array("lat", shape=(rows,), dtype="float64", dimension_names=("lat",))
        lat.attrs.update({"units": "degrees_north", "standard_name": "latitude"})
        lat[:] = region.lat_centres()
        lon = root.create_array("lon", shape=(cols,), dtype="float64", dimension_names=("lon",))
        lon.attrs.update({"units": "degrees_east", "standard_name": "longitude"})
        lon[:] = region.lon_centres()
        _arr(root, "time")[:] = np.arange(i1, dtype=np.int32)
    else:
        stored = Region.model_validate(root.attrs["region"])
        if stored != region:
            raise DataFormatError(
                f"{location}: expected labels of region {region.to_file_dict()}, found a cube of {stored.to_file_dict()}",
                hint="use a new cube root or region name",
            )
        n = _arr(root, "bafrac").shape[0]
        if i1 > n:
            for name in ("bafrac", "mask"):
                _arr(root, name).resize((i1, rows, cols))
            for name in ("available", "time"):
                _arr(root, name).resize((i1,))
            _arr(root, "time")[n:i1] = np.arange(n, i1, dtype=np.int32)
    _arr(root, "bafrac")[i0:i1] = labels.bafrac
    _arr(root, "mask")[i0:i1] = np.broadcast_to(labels.mask, (len(days), rows, cols))
    _arr(root, "available")[i0:i1] = True
    meta = {"month": f"{labels.year:04d}-{labels.month:02d}", "sources": labels.sources, "ignored_out_of_month": labels.ignored_out_of_month}
    with loc.commit_lock():
        snapshot = session.commit(f"labels {region.name} {labels.year:04d}-{labels.month:02d}", metadata=meta)
    log.info("labels %s %d-%02d committed as %s", region.name, labels.year, labels.month, snapshot)
    return str(snapshot)


@dataclass
class LabelWindow:
    """Labels of a block of a region over consecutive days: ``bafrac``/``mask`` ``(time, y, x)``."""

    days: list[dt.date]
    bafrac: NDArray[np.float32]
    mask: NDArray[np.uint8]
    available: NDArray[np.bool_]
    snapshot: str

    def valid(self) -> NDArray[np.bool_]:
        """Cell-days with a usable label (mapped land, labelled month)."""
        return (self.mask == 0) & np.isfinite(self.bafrac) & self.available[:, None, None]


def read_labels(
    region: Region,
    first_day: dt.date,
    last_day: dt.date,
    rows: slice | None = None,
    cols: slice | None = None,
    *,
    snapshot: str | None = None,
    settings: Settings | None = None,
) -> LabelWindow:
    """Labels of ``region`` for ``first_day..last_day`` (inclusive); days never labelled are NaN / no data."""
    import zarr

    if last_day < first_day:
        raise ValidationError(f"expected first_day <= last_day, found {first_day} > {last_day}")
    loc = label_cube_location(region.name, settings)
    location = loc.url
    session = readonly_session(_open_repo(loc, create=False), loc, snapshot)
    root = zarr.open_group(session.store, mode="r")
    if "bafrac" not in root:
        raise CubeNotFoundError(f"expected label arrays in {location}, found an empty repository", hint="run `banet-ops labels` first")
    rs = rows or slice(0, region.shape[0])
    cs = cols or slice(0, region.shape[1])
    n_days = (last_day - first_day).days + 1
    days = [first_day + dt.timedelta(days=i) for i in range(n_days)]
    shape = (n_days, rs.stop - rs.start, cs.stop - cs.start)
    bafrac = np.full(shape, np.nan, dtype=np.float32)
    mask = np.full(shape, MASK_NO_DATA, dtype=np.uint8)
    available = np.zeros(n_days, dtype=bool)
    i0, i1 = _day_index(first_day), _day_index(last_day) + 1
    n = _arr(root, "bafrac").shape[0]
    lo, hi = max(i0, 0), min(i1, n)
    if lo < hi:
        bafrac[lo - i0 : hi - i0] = _arr(root, "bafrac")[lo:hi, rs, cs]
        mask[lo - i0 : hi - i0] = _arr(root, "mask")[lo:hi, rs, cs]
        available[lo - i0 : hi - i0] = _arr(root, "available")[lo:hi]
    return LabelWindow(days, bafrac, mask, available, str(session.snapshot_id))


def labelled_months(region_name: str, *, settings: Settings | None = None) -> list[str]:
    """``YYYY-MM`` of every month with labels in the region's label cube (empty if none)."""
    import zarr

    try:
        repo = _open_repo(label_cube_location(region_name, settings), create=False)
    except CubeNotFoundError:
        return []
    root = zarr.open_group(repo.readonly_session(branch="main").store, mode="r")
    if "available" not in root:
        return []
    idx = np.nonzero(_arr(root, "available")[:])[0]
    return sorted({f"{(TIME_ORIGIN + dt.timedelta(days=int(i))):%Y-%m}" for i in idx})


@dataclass
class LabelsResult:
    """What :func:`make_month_labels` did."""

    region: str
    month: str
    snapshot: str
    sources: list[str]
    missing_tiles: list[str]
    burned_cells: int
    burned_area_km2: float
    valid_fraction: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def make_month_labels(
    region: Region,
    year: int,
    month: int,
    *,
    source: str = "hdf",
    umd_dir: str | None = None,
    supersample: int = 2,
    settings: Settings | None = None,
) -> LabelsResult:
    """Read MCD64A1 for a region-month (HDF4 tiles from the archive, or UMD windows), grid it, commit it to the label cube."""
    from banet_ops.mcd64.reader import fetch_month_tiles, find_umd_windows, labels_from_hdf, labels_from_umd

    missing: list[str] = []
    if source == "hdf":
        files, missing_tiles = fetch_month_tiles(region, year, month, settings=settings)
        missing = [t.name for t in missing_tiles]
        labels = labels_from_hdf(region, year, month, files, supersample=supersample)
    elif source == "umd":
        if umd_dir is None:
            raise ValidationError("source 'umd': expected a folder of UMD burndate.tif windows, found none", hint="pass --umd-dir")
        labels = labels_from_umd(region, year, month, find_umd_windows(umd_dir, region, year, month), supersample=max(1, supersample // 2))
    else:
        raise ValidationError(f"expected source 'hdf' or 'umd', found {source!r}")
    snapshot = write_month_labels(labels, settings=settings)
    burned = np.nan_to_num(labels.bafrac).sum(axis=0)
    return LabelsResult(
        region=region.name,
        month=f"{year:04d}-{month:02d}",
        snapshot=snapshot,
        sources=labels.sources,
        missing_tiles=missing,
        burned_cells=int((burned >= 0.5).sum()),
        burned_area_km2=round(labels.burned_area_km2(), 3),
        valid_fraction=round(float((labels.mask == 0).mean()), 4),
    )
