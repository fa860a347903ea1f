"""The direct chunk reader: the fast path of :func:`banet_ops.cube.reader.read_window`.

Chunks written by the cube (little-endian values in one Blosc frame, see :mod:`layout`) are
fetched straight from the Icechunk store in batches, many at a time; of each, only the Blosc
blocks holding the window's rows are decompressed into a per-thread scratch block, then scaled
into its place in the preallocated float32 output: no intermediate arrays the size of the window
and no NaN pre-fill.

This is the one module on private APIs (``zarr.core`` metadata and event loop; c-blosc's
``blosc_getitem`` through :mod:`banet_ops.cube.blosc_frames`).  It stays because it reads the
windows inference reads 2-5x faster than Zarr's public indexing (``benchmarks/cube.py``, "read
paths"); the reader falls back to the public path when this module cannot be imported or an array
has another encoding, and ``tests/cube/test_read_path.py`` checks that both paths read the same values.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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

from banet_ops.cube import layout as L
from banet_ops.cube.blosc_frames import decompress_items
from banet_ops.cube.storage import CubeLocation, get_array, icechunk_message, storage_error
from banet_ops.errors import StorageUnavailableError

# Decompression and scaling release the GIL: one thread per core does the CPU work.
DECODE_THREADS = max(1, min(8, os.cpu_count() or 1))
# Chunks are requested BATCH at a time and each batch is decoded in one hand-over to the decode
# threads: per-chunk event-loop and thread hand-overs cost more CPU than LZ4 decompression does.
BATCH = 16
# Batches in flight; each holds at most BATCH compressed chunks (< 0.5 MB each) until decoded.
BATCHES_IN_FLIGHT = 4


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


def read_direct(group: zarr.Group, store: Any, variables: Sequence[str], times: Sequence[int], i0: int, rs: slice, cs: slice,
                data: NDArray[np.float32], loc: CubeLocation) -> list[int]:
    """Decode the bands of ``variables`` whose arrays this reader understands into ``data``; the other band indexes."""
    jobs: list[ChunkJob] = []
    others: list[int] = []
    for band, name in enumerate(variables):
        arr = get_array(group, name, loc)
        shape = direct_chunk_shape(arr)
        if shape is not None and len(shape) == 3:
            jobs += chunk_jobs(arr, name, shape, times, i0, rs, cs, data[:, band])
        else:
            others.append(band)
    read_chunks(store, jobs, loc)
    return others
