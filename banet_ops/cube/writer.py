"""Writing one region-day into the cube: one Icechunk commit per day, safe under concurrency.

A write replaces the day's slice of every variable (all of its chunks, empty ones included, so a
rewrite never leaves a chunk of an older version behind) and its ``valid_fraction``; nothing else
is touched unless the day falls beyond the preallocated time axis (then the axis grows to the end
of that year in the same commit).  Commits rebase with :class:`icechunk.ConflictDetector`:
writers of different days touch disjoint chunks and rebase cleanly; a writer whose changes
overlap a concurrent commit (the same day, or a concurrent year growth) discards its session and
writes again on top of the new tip, so the result is always one complete version of the day.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

import icechunk as ic
import numpy as np
import zarr
from zarr.codecs import BloscCodec

from banet_ops import __version__
from banet_ops.bands import CUBE_VARIABLES
from banet_ops.cube import layout as L
from banet_ops.cube.layout import valid_fraction
from banet_ops.cube.storage import (
    BRANCH,
    CubeLocation,
    cube_location,
    get_array,
    open_repository,
    readonly_session,
    storage_errors,
    with_deadline,
    written_indexes,
)
from banet_ops.daily_image import DailyImage
from banet_ops.errors import CommitConflictError, LessCompleteError, ValidationError
from banet_ops.regions import Region
from banet_ops.settings import Settings, get_settings
from banet_ops.util import public_url

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
# Every chunk of a day is written, even all-missing ones: see the module docstring.
_WRITE_CONFIG: dict[str, Any] = {"write_empty_chunks": True}


def _compressors(itemsize: int) -> list[BloscCodec]:
    return [BloscCodec(cname=L.BLOSC_CODEC, clevel=L.BLOSC_LEVEL, shuffle="shuffle", typesize=itemsize)]


def _create_skeleton(group: zarr.Group, region: Region, time_len: int) -> None:
    """Arrays, coordinates and attributes of a new cube (metadata written once)."""
    rows, cols = region.shape
    group.attrs.update(L.region_attrs(region))
    t = group.create_array(
        "time", shape=(time_len,), chunks=(L.TIME_COORD_CHUNK,), dtype="int32", fill_value=-1,
        dimension_names=("time",), attributes=L.COORD_ATTRS["time"],
    )
    t[:] = np.arange(time_len, dtype=np.int32)
    lat = group.create_array(
        "lat", shape=(rows,), chunks=(rows,), dtype="float64", fill_value=np.nan, dimension_names=("lat",),
        attributes=L.COORD_ATTRS["lat"],
    )
    lat[:] = region.lat_centres()
    lon = group.create_array(
        "lon", shape=(cols,), chunks=(cols,), dtype="float64", fill_value=np.nan, dimension_names=("lon",),
        attributes=L.COORD_ATTRS["lon"],
    )
    lon[:] = region.lon_centres()
    crs = group.create_array("crs", shape=(), dtype="int32", fill_value=0, dimension_names=(), attributes=L.COORD_ATTRS["crs"])
    crs[...] = 0
    group.create_array(
        L.VALID_VARIABLE, shape=(time_len,), chunks=(1,), dtype="float32", fill_value=np.nan, compressors=None,
        dimension_names=("time",), attributes=L.COORD_ATTRS[L.VALID_VARIABLE],
    )
    chunks = (1, min(L.SPATIAL_CHUNKS[0], rows), min(L.SPATIAL_CHUNKS[1], cols))
    for name in CUBE_VARIABLES:
        enc = L.ENCODINGS[name]
        group.create_array(
            name, shape=(time_len, rows, cols), chunks=chunks, dtype=enc.dtype, fill_value=enc.fill,
            compressors=_compressors(enc.itemsize), dimension_names=("time", "lat", "lon"), attributes=L.variable_attrs(name),
        )


def check_region(group: zarr.Group, region: Region, loc: CubeLocation) -> None:
    """The cube must have been created for exactly this region definition."""
    stored = L.region_from_attrs(dict(group.attrs))
    if stored.to_file_dict() != region.to_file_dict():
        raise ValidationError(
            f"cube {loc.region} at {loc.url}: expected region {region.to_file_dict()}, found the cube was created for {stored.to_file_dict()}",
            hint="a region's grid cannot change; use a new region name or move the old cube away",
        )


def ensure_cube(repo: ic.Repository, loc: CubeLocation, region: Region, day: dt.date) -> None:
    """Create the cube's arrays in their own commit if the repository is still empty."""
    for attempt in range(MAX_ATTEMPTS):
        session = repo.writable_session(BRANCH)
        group = zarr.open_group(session.store, mode="a")
        if "Red" in group:
            check_region(group, region, loc)
            return
        _create_skeleton(group, region, L.time_length_for(day))
        with loc.commit_lock():
            try:
                session.commit(
                    f"create cube for region {region.name}",
                    metadata={"kind": "create", "region": region.to_file_dict(), "software": f"banet-ops {__version__}",
                              "layout": L.LAYOUT_VERSION},
                    rebase_with=ic.ConflictDetector(),
                )
                return
            except (ic.ConflictError, ic.RebaseFailedError):
                log.debug("cube %s: concurrent creation, retrying (attempt %d)", loc.region, attempt + 1)
        _backoff(attempt)
    raise CommitConflictError(f"cube {loc.region}: could not create the cube after {MAX_ATTEMPTS} attempts", hint="retry later")


def _backoff(attempt: int) -> None:
    time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))  # noqa: S311 - jitter, not crypto


def commit_metadata(image: DailyImage, fraction: float, n_rejected: int = 0) -> dict[str, Any]:
    """What a day's commit records: the granules, sources and software that made it, and its status."""
    return {
        "kind": "day",
        "region": image.region.name,
        "day": image.day.isoformat(),
        "granules": sorted(str(g) for g in image.granules),
        "sources": {str(k): public_url(str(v)) for k, v in sorted(image.sources.items())},
        "valid_fraction": round(fraction, 6),
        "status": L.day_status(fraction, n_rejected),
        "rejected": int(n_rejected),
        "software": f"banet-ops {__version__}",
        "preprocessing": {
            "banet_ops": __version__,
            "cube_layout": L.LAYOUT_VERSION,
            "numpy": np.__version__,
            "zarr": zarr.__version__,
            "icechunk": ic.__version__,
        },
    }


def _grow(group: zarr.Group, needed: int, loc: CubeLocation) -> None:
    """Extend every time-dimensioned array to ``needed`` steps (the end of a year)."""
    time_arr = get_array(group, "time", loc)
    current = time_arr.shape[0]
    if needed <= current:
        return
    for name in (*CUBE_VARIABLES, L.VALID_VARIABLE, "time"):
        arr = get_array(group, name, loc)
        arr.resize((needed, *arr.shape[1:]))
    # re-open: the Array object fetched before the resize still has the old shape
    get_array(group, "time", loc)[current:needed] = np.arange(current, needed, dtype=np.int32)


@dataclass(frozen=True)
class StoredDay:
    """The version of a day the cube holds: the commit that wrote it, when, its status and valid fraction."""

    snapshot_id: str
    written_at: dt.datetime | None
    status: str
    valid_fraction: float
    granules: tuple[str, ...] | None = None  # None: no day commit of it in history (legacy import, expired)


@dataclass(frozen=True)
class DayCommit:
    """What :func:`commit_day` did: the snapshot holding the day, its status, and whether a commit was made."""

    snapshot: str
    status: str
    valid_fraction: float
    changed: bool
    written_at: dt.datetime | None


def stored_day(repo: ic.Repository, loc: CubeLocation, day: dt.date, session: ic.Session | None = None) -> StoredDay | None:
    """The day's version at the tip (or ``session``): None when the day was never written.

    The snapshot is the last commit of that day (``kind: day``); a day written otherwise (a
    legacy import) or whose commit expired gets the read snapshot and the status of its valid
    fraction.
    """
    session = session or readonly_session(repo, loc, None)
    index = L.day_index(day)
    if index not in written_indexes(session):
        return None
    group = zarr.open_group(session.store, mode="r")
    fraction = float(get_array(group, L.VALID_VARIABLE, loc)[index])
    for snap in repo.ancestry(snapshot_id=session.snapshot_id):
        meta = snap.metadata or {}
        if meta.get("kind") == "day" and meta.get("day") == day.isoformat():
            status = str(meta.get("status") or L.day_status(fraction))
            granules = tuple(sorted(str(g) for g in meta.get("granules", [])))
            return StoredDay(str(snap.id), snap.written_at, status if status in L.STATUS_RANK else L.day_status(fraction), fraction, granules)
    return StoredDay(str(session.snapshot_id), None, L.day_status(fraction), fraction)


def unchanged_day(
    repo: ic.Repository, loc: CubeLocation, index: int, encoded: dict[str, np.ndarray], fraction: float, granules: list[str]
) -> StoredDay | None:
    """The stored day when the tip already holds exactly this version (same encoded values and granules), else None.

    Re-ingesting a day that did not change (a re-run, a ``reprocess_behavior=completed``
    backfill) then makes no new commit, and the cube and ``banet.cube_day`` keep naming the
    commit that wrote the day (not the tip).  The same values from other granules are a new
    version (its provenance differs).
    """
    session = readonly_session(repo, loc, None)
    if index not in written_indexes(session):
        return None
    group = zarr.open_group(session.store, mode="r")
    stored_fraction = get_array(group, L.VALID_VARIABLE, loc)[index]
    if np.float32(stored_fraction) != np.float32(fraction):
        return None
    for name in CUBE_VARIABLES:
        if not np.array_equal(get_array(group, name, loc)[index], encoded[name], equal_nan=True):
            return None
    stored = stored_day(repo, loc, L.index_day(index), session)
    if stored is None or (stored.granules is not None and stored.granules != tuple(sorted(str(g) for g in granules))):
        return None
    return stored


def check_replacement(repo: ic.Repository, loc: CubeLocation, day: dt.date, status: str, fraction: float) -> None:
    """Raise :class:`LessCompleteError` when the stored version of ``day`` is more complete than (status, fraction)."""
    old = stored_day(repo, loc, day)
    if old is None or L.at_least_as_complete((status, fraction), (old.status, old.valid_fraction)):
        return
    raise LessCompleteError(
        f"cube {loc.region} {day}: expected a version at least as complete as the stored one ({old.status}, "
        f"{old.valid_fraction:.1%} observed, snapshot {old.snapshot_id}), found {status} with {fraction:.1%} observed; the stored day is kept",
        hint="fix or re-fetch the rejected files, or force the replacement (banet-ops ingest --force)",
    )


class CommitOptions(TypedDict, total=False):
    """The keyword arguments of :func:`commit_day`, for :func:`write_day` to pass on."""

    settings: Settings | None
    before_commit: Callable[[], None] | None
    max_attempts: int
    n_rejected: int
    force: bool


def write_day(image: DailyImage, **options: Unpack[CommitOptions]) -> str:
    """Commit one region-day to its cube and return the snapshot holding it (see :func:`commit_day`)."""
    return commit_day(image, **options).snapshot


def commit_day(
    image: DailyImage,
    *,
    settings: Settings | None = None,
    before_commit: Callable[[], None] | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    n_rejected: int = 0,
    force: bool = False,
) -> DayCommit:
    """Commit one region-day to its cube: the snapshot, the day's status and whether a commit was made.

    Replaces that day's slice and nothing else (re-running is idempotent on the data); when the
    cube already holds exactly this version of the day (:func:`unchanged_day`), no commit is
    made and the commit that wrote the day is returned (``changed`` False).
    ``n_rejected`` (input files of the day that could not be read) enters the day's status
    (:func:`banet_ops.cube.layout.day_status`); a day is only replaced by a version at least as
    complete (:class:`LessCompleteError` otherwise, the stored day kept) unless ``force``.
    ``before_commit`` is called after the data is written and before the commit (tests use it to
    simulate a crash).  Raises :class:`CommitConflictError` (retryable) when concurrent writers
    kept winning for ``max_attempts`` rounds.
    """
    if not isinstance(image, DailyImage):
        raise ValidationError(f"expected a DailyImage, found {type(image).__name__}")
    settings = settings or get_settings()
    loc = cube_location(image.region.name, settings=settings)
    with storage_errors(loc, f"writing {image.day}"):
        return with_deadline(
            lambda: _commit_day(image, loc, before_commit=before_commit, max_attempts=max_attempts, n_rejected=n_rejected, force=force),
            loc, f"writing {image.day}", settings.storage_timeout_s,
        )  # fmt: skip


def _commit_day(
    image: DailyImage, loc: CubeLocation, *, before_commit: Callable[[], None] | None, max_attempts: int, n_rejected: int, force: bool
) -> DayCommit:
    index = L.day_index(image.day)
    repo = open_repository(loc, create=True)
    ensure_cube(repo, loc, image.region, image.day)

    encoded = {name: L.encode(name, image.variables[name]) for name in CUBE_VARIABLES}
    fraction = valid_fraction(image)
    metadata = commit_metadata(image, fraction, n_rejected)
    same = unchanged_day(repo, loc, index, encoded, fraction, image.granules)
    # the same values with a higher status (a FIRMS file whose malformed rows were fixed, outside
    # the region) are a new version of the day, so that its record says so; with a lower one (a
    # day stored before files with malformed rows counted) the stored version stays, unchanged
    if same is not None and L.at_least_as_complete((same.status, same.valid_fraction), (metadata["status"], fraction)):
        log.info("cube %s %s: unchanged, keeping snapshot %s", loc.region, image.day, same.snapshot_id)
        return DayCommit(same.snapshot_id, same.status, same.valid_fraction, False, same.written_at)
    if not force:
        check_replacement(repo, loc, image.day, metadata["status"], fraction)
    snapshot = _commit_slices(repo, loc, image, encoded, metadata, before_commit, max_attempts)
    return DayCommit(snapshot, metadata["status"], fraction, True, repo.lookup_snapshot(snapshot).written_at)


def _commit_slices(
    repo: ic.Repository, loc: CubeLocation, image: DailyImage, encoded: dict[str, np.ndarray], metadata: dict[str, Any],
    before_commit: Callable[[], None] | None, max_attempts: int,
) -> str:  # fmt: skip
    """Write the day's slices and commit them, writing again on top of a concurrent commit that conflicts."""
    index, fraction = L.day_index(image.day), metadata["valid_fraction"]
    message = f"{image.region.name} {image.day.isoformat()}: {len(image.granules)} granules, valid {fraction:.1%}"
    needed = L.time_length_for(image.day)
    last_error: Exception | None = None
    for attempt in range(max_attempts):
        session = repo.writable_session(BRANCH)
        group = zarr.open_group(session.store, mode="r+")
        check_region(group, image.region, loc)
        _grow(group, needed, loc)

        def put(name: str, grp: zarr.Group = group) -> None:
            get_array(grp, name, loc).with_config(_WRITE_CONFIG)[index] = encoded[name]

        with ThreadPoolExecutor(max_workers=len(CUBE_VARIABLES)) as pool:
            list(pool.map(put, CUBE_VARIABLES))
        get_array(group, L.VALID_VARIABLE, loc)[index] = np.float32(valid_fraction(image))
        if before_commit is not None:
            before_commit()
        with loc.commit_lock():
            try:
                snapshot = session.commit(message, metadata=metadata, rebase_with=ic.ConflictDetector(), rebase_tries=100)
            except (ic.ConflictError, ic.RebaseFailedError) as exc:
                last_error = exc
                log.info("cube %s %s: concurrent commit touched the same data, writing again (attempt %d)",
                         loc.region, image.day, attempt + 1)
            else:
                log.info("cube %s %s: committed %s", loc.region, image.day, snapshot)
                return str(snapshot)
        _backoff(attempt)
    raise CommitConflictError(
        f"cube {loc.region} {image.day}: expected to commit within {max_attempts} attempts, found concurrent commits "
        f"conflicting every time ({type(last_error).__name__})",
        hint="retry the task; another writer keeps updating the same day or growing the time axis",
    )
