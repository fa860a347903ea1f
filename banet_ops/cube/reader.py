"""Reading windows of a region cube at a pinned snapshot.

Chunks written by the cube (little-endian values in one Blosc frame, see :mod:`layout`) are
fetched straight from the Icechunk store in batches, many at a time; of each, only the Blosc
blocks holding the window's rows are decompressed into a per-thread scratch block, then scaled
into its place in the preallocated float32 output: no intermediate arrays the size of the window
and no NaN pre-fill.  Only the days that were written are fetched.  Arrays with any other
encoding are read through Zarr's own indexing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import icechunk as ic
import numpy as np
import zarr
from numpy.typing import NDArray
from zarr.codecs import BloscCodec, BytesCodec
from zarr.codecs.bytes import Endian
from zarr.core.buffer import default_buffer_prototype
from zarr.core.chunk_grids import RegularChunkGrid
from zarr.core.metadata.v3 import ArrayV3Metadata
from zarr.core.sync import sync

from banet_ops.bands import CUBE_VARIABLES, MODEL_BANDS
from banet_ops.cube import layout as L
from banet_ops.cube.blosc_frames import decompress_items
from banet_ops.cube.storage import (
    BRANCH,
    CubeLocation,
    cube_location,
    get_array,
    icechunk_message,
    open_repository,
    open_root_group,
    readonly_session,
    storage_error,
    written_indexes,
)
from banet_ops.errors import StorageUnavailableError, ValidationError
from banet_ops.regions import Region
from banet_ops.settings import Settings

# Decompression and scaling release the GIL: one thread per core does the CPU work.
DECODE_THREADS = max(1, min(8, os.cpu_count() or 1))
# Chunks are requested BATCH at a time and each batch is decoded in one hand-over to the decode
# threads: per-chunk event-loop and thread hand-overs cost more CPU than LZ4 decompression does.
BATCH = 16
# Batches in flight; each holds at most BATCH compressed chunks (< 0.5 MB each) until decoded.
BATCHES_IN_FLIGHT = 4


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


# --- direct chunk decoding ---------------------------------------------------------------------


def direct_chunk_shape(arr: zarr.Array) -> tuple[int, ...] | None:
    """The chunk shape when ``arr``'s chunks are single Blosc frames of native-order values, else None."""
    md = arr.metadata
    if not isinstance(md, ArrayV3Metadata) or not isinstance(md.chunk_grid, RegularChunkGrid):
        return None
    codecs = md.codecs
    if len(codecs) != 2 or not isinstance(codecs[0], BytesCodec) or not isinstance(codecs[1], BloscCodec):
        return None
    if arr.dtype.itemsize > 1 and (codecs[0].endian != Endian.little or sys.byteorder != "little"):
        return None
    return tuple(int(n) for n in md.chunk_grid.chunk_shape)


@dataclass(frozen=True)
class ChunkJob:
    """One stored chunk and where its part of the window goes.

    ``items`` is the flat (C order) range of the chunk that holds ``src``: only that is decompressed.
    """

    key: str
    name: str
    chunk_shape: tuple[int, ...]
    dtype: np.dtype[Any]
    src: tuple[slice, ...]
    dst: NDArray[np.float32]
    items: tuple[int, int]


def chunk_jobs(arr: zarr.Array, name: str, chunk_shape: tuple[int, ...], times: Sequence[int], i0: int, rs: slice, cs: slice,
               out: NDArray[np.float32]) -> list[ChunkJob]:
    """Jobs for the chunks of ``arr`` covering time indexes ``times`` × ``rs`` × ``cs``.

    ``out`` is the variable's ``(time, y, x)`` block of the window, time 0 = index ``i0``.
    """
    ct, cy, cx = chunk_shape
    i1 = i0 + out.shape[0]
    jobs = []
    for it in sorted({t // ct for t in times}):
        t_lo, t_hi = max(it * ct, i0), min((it + 1) * ct, i1)
        for iy in range(rs.start // cy, (rs.stop - 1) // cy + 1):
            y_lo, y_hi = max(iy * cy, rs.start), min((iy + 1) * cy, rs.stop)
            for ix in range(cs.start // cx, (cs.stop - 1) // cx + 1):
                x_lo, x_hi = max(ix * cx, cs.start), min((ix + 1) * cx, cs.stop)
                # whole rows from the first row of the first day to the last row of the last day
                ty, ty_hi = t_lo - it * ct, t_hi - 1 - it * ct
                items = ((ty * cy + y_lo - iy * cy) * cx, (ty_hi * cy + y_hi - iy * cy) * cx)
                jobs.append(ChunkJob(
                    key=f"{arr.path}/{arr.metadata.encode_chunk_key((it, iy, ix))}",
                    name=name, chunk_shape=chunk_shape, dtype=arr.dtype,
                    src=(slice(t_lo - it * ct, t_hi - it * ct), slice(y_lo - iy * cy, y_hi - iy * cy), slice(x_lo - ix * cx, x_hi - ix * cx)),
                    dst=out[t_lo - i0 : t_hi - i0, y_lo - rs.start : y_hi - rs.start, x_lo - cs.start : x_hi - cs.start],
                    items=items,
                ))
    return jobs


_scratch_local = threading.local()


def _scratch(shape: tuple[int, ...], dtype: np.dtype[Any]) -> NDArray[Any]:
    cache: dict[tuple[tuple[int, ...], str], NDArray[Any]] | None = getattr(_scratch_local, "blocks", None)
    if cache is None:
        cache = _scratch_local.blocks = {}
    key = (shape, dtype.str)
    if key not in cache:
        cache[key] = np.empty(shape, dtype)
    return cache[key]


def decode_chunk(job: ChunkJob, raw: NDArray[np.uint8] | None) -> None:
    """Decompress the rows of one chunk that ``job`` needs into this thread's scratch block and decode them into ``job.dst``."""
    if raw is None:  # never written: the fill value everywhere
        L.fill_decoded(job.name, job.dst)
        return
    block = _scratch(job.chunk_shape, job.dtype)
    decompress_items(raw, block, *job.items, key=job.key)
    L.decode_into(job.name, block[job.src], job.dst)


def _decode_batch(jobs: Sequence[ChunkJob], raws: Sequence[NDArray[np.uint8] | None]) -> None:
    for job, raw in zip(jobs, raws, strict=True):
        decode_chunk(job, raw)


async def _run_jobs(store: Any, jobs: list[ChunkJob]) -> None:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(BATCHES_IN_FLIGHT)
    prototype = default_buffer_prototype()
    batches = [jobs[k : k + BATCH] for k in range(0, len(jobs), BATCH)]
    with ThreadPoolExecutor(min(DECODE_THREADS, len(batches)), thread_name_prefix="cube-decode") as pool:

        async def one(batch: list[ChunkJob]) -> None:
            async with gate:  # held until decoded: bounds the compressed bytes held in memory
                bufs = await asyncio.gather(*(store.get(job.key, prototype) for job in batch))
                raws = [None if buf is None else buf.as_numpy_array() for buf in bufs]
                await loop.run_in_executor(pool, _decode_batch, batch, raws)

        async with asyncio.TaskGroup() as group:
            for batch in batches:
                group.create_task(one(batch))


def read_chunks(store: Any, jobs: list[ChunkJob], loc: CubeLocation | None = None) -> None:
    """Fetch and decode ``jobs`` concurrently (Icechunk requests overlap the decoding)."""
    if not jobs:
        return
    try:
        sync(_run_jobs(store, jobs))
    except BaseExceptionGroup as group:  # from the TaskGroup: report the first failure itself
        first: BaseException = group
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        if isinstance(first, ic.IcechunkError):
            if loc is not None:
                raise storage_error(first, loc, "reading chunks") from None
            raise StorageUnavailableError(f"cube: expected readable chunks, found: {icechunk_message(first)}", hint="retry later") from None
        raise first from None


def decode_window(group: zarr.Group, store: Any, variables: Sequence[str], written: Sequence[int], i0: int, n_days: int,
                  rs: slice, cs: slice, loc: CubeLocation) -> NDArray[np.float32]:
    """``variables`` over time indexes ``i0 .. i0 + n_days`` × ``rs`` × ``cs`` as float32 ``(time, band, y, x)``.

    Only the time indexes in ``written`` are read; the other days are NaN.
    """
    # np.empty: every cell of a written day is set by exactly one chunk, the other days below
    data = np.empty((n_days, len(variables), rs.stop - rs.start, cs.stop - cs.start), dtype=np.float32)
    times = sorted(t for t in written if i0 <= t < i0 + n_days)
    if times:
        jobs: list[ChunkJob] = []
        for band, name in enumerate(variables):
            arr = get_array(group, name, loc)
            shape = direct_chunk_shape(arr)
            if shape is not None and len(shape) == 3:
                jobs += chunk_jobs(arr, name, shape, times, i0, rs, cs, data[:, band])
            else:  # not a layout this reader decodes itself: Zarr's indexing, over the written span
                a0, a1 = times[0], times[-1] + 1
                L.decode_into(name, arr[a0:a1, rs, cs], data[a0 - i0 : a1 - i0, band])
        read_chunks(store, jobs, loc)
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
