"""Reading windows of a region cube at a pinned snapshot.

Only the days that were written are read.  Two paths read the same values: the direct chunk
decoder of :mod:`banet_ops.cube.direct` (on private Zarr and c-blosc APIs, 2-5x faster on the
windows inference reads) and Zarr's public indexing, the fallback for any array the direct path
does not understand and for a Zarr whose internals it cannot import.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import zarr
from numpy.typing import NDArray

from banet_ops.bands import CUBE_VARIABLES, MODEL_BANDS
from banet_ops.cube import layout as L
from banet_ops.cube.storage import (
    BRANCH,
    CubeLocation,
    cube_location,
    get_array,
    open_repository,
    open_root_group,
    readonly_session,
    written_indexes,
)
from banet_ops.errors import ValidationError
from banet_ops.regions import Region
from banet_ops.settings import Settings


def _direct_reader() -> ModuleType | None:
    try:
        from banet_ops.cube import direct
    except ImportError:  # a Zarr whose internals moved: the public path reads everything
        return None
    return direct


DIRECT: ModuleType | None = _direct_reader()


@dataclass
class CubeWindow:
    """A block of the cube: ``data`` float32 ``(time, band, y, x)`` with NaN where missing.

    ``available[t]`` is True when day ``days[t]`` was written; ``snapshot`` is the snapshot read
    (record it to reproduce the read).
    """

    data: NDArray[np.float32]
    available: NDArray[np.bool_]
    days: list[dt.date]
    snapshot: str
    variables: tuple[str, ...] = MODEL_BANDS
    rows: slice = field(default_factory=lambda: slice(None))
    cols: slice = field(default_factory=lambda: slice(None))


def _region_name(region: Region | str) -> str:
    return region.name if isinstance(region, Region) else region


def _check_slice(s: slice | None, size: int, what: str) -> slice:
    if s is None:
        return slice(0, size)
    if not isinstance(s, slice) or s.step not in (None, 1):
        raise ValidationError(f"expected {what} as a slice with step 1, found {s!r}")
    start, stop, _ = s.indices(size)
    if (s.start is not None and not 0 <= s.start < size) or (s.stop is not None and not 0 < s.stop <= size) or stop <= start:
        raise ValidationError(f"expected {what} within [0, {size}) and non-empty, found {s!r}", hint=f"the region grid has {size} {what}")
    return slice(start, stop)


def latest_snapshot(region: Region | str, *, settings: Settings | None = None) -> str:
    """Id of the newest snapshot of the region's cube (what inference pins)."""
    loc = cube_location(_region_name(region), settings=settings)
    repo = open_repository(loc)
    return str(repo.lookup_branch(BRANCH))


def open_group(region: Region | str, snapshot: str | None = None, *, settings: Settings | None = None) -> tuple[zarr.Group, str, CubeLocation]:
    """The cube's root group at ``snapshot`` (default: latest), the snapshot id and the location."""
    loc = cube_location(_region_name(region), settings=settings)
    repo = open_repository(loc)
    session = readonly_session(repo, loc, snapshot)
    group = open_root_group(session, loc)
    return group, str(session.snapshot_id), loc


def open_dataset(region: Region | str, snapshot: str | None = None, *, settings: Settings | None = None) -> Any:
    """The cube as a lazy :class:`xarray.Dataset` (CF-decoded) at ``snapshot``."""
    import xarray as xr

    loc = cube_location(_region_name(region), settings=settings)
    repo = open_repository(loc)
    session = readonly_session(repo, loc, snapshot)
    return xr.open_zarr(session.store, consolidated=False, zarr_format=3)


def read_public(group: zarr.Group, variables: Sequence[str], bands: Sequence[int], times: Sequence[int], i0: int, rs: slice, cs: slice,
                data: NDArray[np.float32], loc: CubeLocation) -> None:
    """Decode ``variables`` (into ``bands`` of ``data``) over the written span of ``times`` through Zarr's indexing."""
    a0, a1 = times[0], times[-1] + 1

    def one(item: tuple[int, str]) -> None:
        band, name = item
        L.decode_into(name, get_array(group, name, loc)[a0:a1, rs, cs], data[a0 - i0 : a1 - i0, band])

    with ThreadPoolExecutor(len(variables), thread_name_prefix="cube-read") as pool:
        list(pool.map(one, zip(bands, variables, strict=True)))


def decode_window(group: zarr.Group, store: Any, variables: Sequence[str], written: Sequence[int], i0: int, n_days: int,
                  rs: slice, cs: slice, loc: CubeLocation, direct: bool = True) -> NDArray[np.float32]:
    """``variables`` over time indexes ``i0 .. i0 + n_days`` × ``rs`` × ``cs`` as float32 ``(time, band, y, x)``.

    Only the time indexes in ``written`` are read; the other days are NaN.  The direct reader
    decodes what it can (unless ``direct`` is False); Zarr's indexing reads the rest.
    """
    # np.empty: every cell of a written day is set by exactly one chunk, the other days below
    data = np.empty((n_days, len(variables), rs.stop - rs.start, cs.stop - cs.start), dtype=np.float32)
    times = sorted(t for t in written if i0 <= t < i0 + n_days)
    if times:
        bands = list(range(len(variables)))
        if direct and DIRECT is not None:
            bands = DIRECT.read_direct(group, store, variables, times, i0, rs, cs, data, loc)
        if bands:
            read_public(group, [variables[b] for b in bands], bands, times, i0, rs, cs, data, loc)
    missing = np.ones(n_days, dtype=bool)
    missing[[t - i0 for t in times]] = False
    data[missing] = np.nan
    return data


def read_window(
    region: Region | str,
    first_day: dt.date,
    last_day: dt.date,
    rows: slice | None = None,
    cols: slice | None = None,
    snapshot: str | None = None,
    variables: Sequence[str] = MODEL_BANDS,
    *,
    settings: Settings | None = None,
) -> CubeWindow:
    """Days ``first_day..last_day`` (inclusive) of ``variables`` over ``rows`` × ``cols``.

    Days never written are NaN and not ``available``.  ``snapshot`` pins the version read
    (default: the latest); :class:`SnapshotNotFoundError` when it does not exist.
    """
    variables = tuple(variables)
    unknown = [v for v in variables if v not in CUBE_VARIABLES]
    if unknown or not variables:
        raise ValidationError(f"expected variables among {list(CUBE_VARIABLES)}, found {list(variables)}")
    if last_day < first_day:
        raise ValidationError(f"expected first_day <= last_day, found {first_day} > {last_day}")
    i0, i1 = L.day_index(first_day), L.day_index(last_day) + 1
    loc = cube_location(_region_name(region), settings=settings)
    session = readonly_session(open_repository(loc), loc, snapshot)
    group = open_root_group(session, loc)
    snap = str(session.snapshot_id)
    stored_region = L.region_from_attrs(dict(group.attrs))
    if isinstance(region, Region) and region.to_file_dict() != stored_region.to_file_dict():
        raise ValidationError(
            f"cube {loc.region}: expected region {region.to_file_dict()}, found the cube holds {stored_region.to_file_dict()}"
        )
    n_rows, n_cols = stored_region.shape
    rs, cs = _check_slice(rows, n_rows, "rows"), _check_slice(cols, n_cols, "cols")
    n_days = i1 - i0
    # written days from the chunk manifest of valid_fraction (no chunk reads)
    written = [index for index in written_indexes(session) if i0 <= index < i1]
    available = np.zeros(n_days, dtype=bool)
    available[[index - i0 for index in written]] = True
    data = decode_window(group, session.store, variables, written, i0, n_days, rs, cs, loc)
    days = [first_day + dt.timedelta(days=k) for k in range(n_days)]
    return CubeWindow(data=data, available=available, days=days, snapshot=snap, variables=variables, rows=rs, cols=cs)
