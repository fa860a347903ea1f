"""Cube benchmark: write one PI day, read 64-day windows, bytes per cell-day (local disk).

    .venv/bin/python benchmarks/cube.py [--days 64] [--runs 3] [--sweep]

Each stage prints the median of ``--runs`` runs of ``banet_ops.cube`` beside a baseline measured in
the same process, runs interleaved so that both see the same machine load: the previous design
(layout 1: Blosc/Zstd level 1 chunks written by the same ``write_day``, read through Zarr's
indexing and decoded to float32 per variable, as ``read_window`` did before).  Times are wall
seconds with the process CPU seconds (all threads: Icechunk's I/O runtime included) beside them;
for our reads the CPU seconds of the decode threads are shown too.  ``--sweep`` also measures
alternative layouts (codecs, chunk shapes, sharding) with plain Icechunk + Zarr, each read with
both readers: the measurements behind the choices in ``docs/cube.md``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import contextlib
import datetime as dt
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from banet_ops.bands import CUBE_VARIABLES, MODEL_BANDS
from banet_ops.cube import direct as D
from banet_ops.cube import layout as L
from banet_ops.cube import read_window, write_day
from banet_ops.cube import reader as R
from banet_ops.cube.storage import CubeLocation, cube_location, open_repository, readonly_session, written_indexes
from banet_ops.daily_image import DailyImage
from banet_ops.regions import Region
from banet_ops.settings import Settings

PI = Region(name="PI", bbox=(-10, 36, 5, 44), pixel_size=0.01)
START = dt.date(2021, 7, 1)
TARGETS = {"write": 1.5, "read_full": 4.0, "read_tile": 0.3}
TILE = (slice(300, 428), slice(700, 828))  # a 128 x 128 window straddling a chunk boundary


def synthetic_day(region: Region, day: dt.date, k: int) -> DailyImage:
    """A plausible day: smooth fields + sensor noise, a swath gap, sparse fires."""
    rng = np.random.default_rng(k)
    h, w = region.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.15 + 0.1 * np.sin(xx / 97) * np.cos(yy / 61) + 0.05 * np.sin(xx / 13 + yy / 17)
    gap = (xx > (k * 137) % w) & (xx < (k * 137) % w + 150)
    v: dict[str, np.ndarray] = {}
    for name, (off, gain) in {"Red": (0, 1), "NIR": (0.1, 1.3), "MIR": (-0.05, 0.5), "M10": (0.05, 1.1)}.items():
        a = np.clip(base * gain + off + rng.normal(0, 0.01, (h, w)), 0, None).astype(np.float32)
        a[gap] = np.nan
        v[name] = a
    frp = np.zeros((h, w), np.float32)
    idx = rng.integers(0, h * w, 300)
    frp.flat[idx] = rng.gamma(2, 10, 300)
    v["FRP"] = frp
    v["n_obs"] = np.where(gap, 0, rng.integers(1, 4, (h, w))).astype(np.float32)
    v["sensor_zenith"] = np.where(gap, np.nan, np.abs(xx - 700) / 700 * 60 + rng.normal(0, 0.3, (h, w))).astype(np.float32)
    return DailyImage(region, day, v, granules=[f"synthetic-{k}"])


# --- timing ----------------------------------------------------------------------------------------
class Timing:
    """Wall and process-CPU seconds of repeated runs; ``decode`` = CPU of the decode threads."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.decode: list[float] = []

    def median(self) -> float:
        return statistics.median(self.wall)

    def text(self, with_decode: bool = False) -> str:
        s = f"{statistics.median(self.wall):6.3f} s ({statistics.median(self.cpu):6.3f} CPU"
        if with_decode and self.decode and max(self.decode) > 0:
            s += f", decode threads {statistics.median(self.decode):.3f}"
        return s + ")"


_decode_cpu = [0.0]
_decode_lock = threading.Lock()
_decode_chunk = D.decode_chunk


def _timed_decode_chunk(job: D.ChunkJob, raw: Any) -> None:
    t0 = time.thread_time()
    try:
        _decode_chunk(job, raw)
    finally:
        with _decode_lock:
            _decode_cpu[0] += time.thread_time() - t0


D.decode_chunk = _timed_decode_chunk  # per-thread CPU of the decode work (called by name in the direct reader)


def timed(fn: Callable[[], object], into: Timing) -> None:
    _decode_cpu[0] = 0.0
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    into.wall.append(time.perf_counter() - t0)
    into.cpu.append(time.process_time() - c0)
    into.decode.append(_decode_cpu[0])


def interleaved(fns: Sequence[Callable[[], object]], runs: int) -> list[Timing]:
    """Run each function ``runs`` times, alternating, so that all see the same load drift."""
    out = [Timing() for _ in fns]
    for _ in range(runs):
        for fn, t in zip(fns, out, strict=True):
            timed(fn, t)
    return out


def folder_bytes(path: Path, sub: str | None = None) -> int:
    root = path / sub if sub else path
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


@contextlib.contextmanager
def layout_1() -> Iterator[None]:
    """write_day as before: Blosc/Zstd level 1 (layout 1)."""
    saved = L.BLOSC_CODEC, L.BLOSC_LEVEL
    L.BLOSC_CODEC, L.BLOSC_LEVEL = "zstd", 1  # type: ignore[misc]
    try:
        yield
    finally:
        L.BLOSC_CODEC, L.BLOSC_LEVEL = saved  # type: ignore[misc]


# --- the previous reader: Zarr indexing, per variable ----------------------------------------------
def zarr_indexing_read(group: Any, written: list[int], i0: int, n_days: int, rows: slice, cols: slice,
                       variables: Sequence[str] = MODEL_BANDS) -> np.ndarray:
    h, w = rows.stop - rows.start, cols.stop - cols.start
    data = np.full((n_days, len(variables), h, w), np.nan, dtype=np.float32)
    a0, a1 = min(written), max(written) + 1

    def load(item: tuple[int, str]) -> None:
        band, name = item
        L.decode_into(name, group[name][a0:a1, rows, cols], data[a0 - i0 : a1 - i0, band])

    with ThreadPoolExecutor(max_workers=len(variables)) as pool:
        list(pool.map(load, enumerate(variables)))
    return data


def cube_reader(settings: Settings, first: dt.date, last: dt.date) -> Callable[[slice, slice], np.ndarray]:
    def read(rows: slice, cols: slice) -> np.ndarray:
        w = read_window(PI, first, last, rows=rows, cols=cols, settings=settings)
        if not w.available.all():
            raise RuntimeError("benchmark window incomplete")
        return w.data

    return read


def previous_reader(settings: Settings, first: dt.date, last: dt.date) -> Callable[[slice, slice], np.ndarray]:
    import zarr

    def read(rows: slice, cols: slice) -> np.ndarray:
        loc = cube_location("PI", settings=settings)
        session = readonly_session(open_repository(loc), loc, None)
        i0 = L.day_index(first)
        written = [t for t in written_indexes(session) if i0 <= t <= L.day_index(last)]
        return zarr_indexing_read(zarr.open_group(session.store, mode="r"), written, i0, (last - first).days + 1, rows, cols)

    return read


# --- layout sweep ----------------------------------------------------------------------------------
SWEEP: list[tuple[str, str, int, tuple[int, int, int], tuple[int, int, int] | None]] = [
    ("zstd-1 (1,400,500)  [layout 1]", "zstd", 1, (1, 400, 500), None),
    ("lz4hc-2 (1,400,500) [layout 2]", "lz4hc", 2, (1, 400, 500), None),
    ("lz4hc-5 (1,400,500)", "lz4hc", 5, (1, 400, 500), None),
    ("lz4-5 (1,400,500)", "lz4", 5, (1, 400, 500), None),
    ("lz4hc-2 (1,200,250)", "lz4hc", 2, (1, 200, 250), None),
    ("lz4hc-2 (1,800,1500)", "lz4hc", 2, (1, 800, 1500), None),
    ("lz4hc-2 shard (1,400,500)/(1,100,125)", "lz4hc", 2, (1, 100, 125), (1, 400, 500)),
]


def sweep_layout(label: str, cname: str, clevel: int, chunks: tuple[int, int, int], shards: tuple[int, int, int] | None,
                 images: list[DailyImage], runs: int, workdir: Path, tiles: list[tuple[slice, slice]]) -> None:
    """One layout with Icechunk + Zarr directly (what write_day does, minus bookkeeping)."""
    import icechunk as ic
    import zarr
    from zarr.codecs import BloscCodec

    from banet_ops.cube.storage import repository_config

    n = len(images)
    path = workdir / f"sweep-{cname}{clevel}-{chunks[1]}-{chunks[2]}-{'s' if shards else 'c'}"
    loc = CubeLocation(region="PI", root=str(workdir), path=path)
    repo = ic.Repository.create(ic.local_filesystem_storage(str(path)))
    session = repo.writable_session("main")
    group = zarr.open_group(session.store, mode="w")
    for name in CUBE_VARIABLES:
        enc = L.ENCODINGS[name]
        group.create_array(
            name, shape=(366, *PI.shape), chunks=chunks, shards=shards, dtype=enc.dtype, fill_value=enc.fill,
            compressors=[BloscCodec(cname=cname, clevel=clevel, shuffle="shuffle", typesize=enc.itemsize)],
            dimension_names=("time", "lat", "lon"), config={"write_empty_chunks": True},
        )
    session.commit("create")

    def write_one(i: int, encoded: dict[str, np.ndarray]) -> None:
        session = repo.writable_session("main")
        group = zarr.open_group(session.store, mode="r+")

        def put(name: str) -> None:
            group[name][i] = encoded[name]

        with ThreadPoolExecutor(len(CUBE_VARIABLES)) as pool:
            list(pool.map(put, CUBE_VARIABLES))
        session.commit(f"day {i}")

    write = Timing()
    for i, image in enumerate(images):
        encoded = {name: L.encode(name, image.variables[name]) for name in CUBE_VARIABLES}
        timed(lambda i=i, encoded=encoded: write_one(i, encoded), write)
    per_cell_day = folder_bytes(path, "chunks") / (n * PI.shape[0] * PI.shape[1])
    repo = ic.Repository.open(ic.local_filesystem_storage(str(path)), config=repository_config(loc))
    group = zarr.open_group(repo.readonly_session("main").store, mode="r")
    written = list(range(n))

    def direct(rows: slice, cols: slice) -> np.ndarray:
        return R.decode_window(group, repo.readonly_session("main").store, MODEL_BANDS, written, 0, n, rows, cols, loc)

    def indexing(rows: slice, cols: slice) -> np.ndarray:
        return zarr_indexing_read(group, written, 0, n, rows, cols)

    full = slice(0, PI.shape[0]), slice(0, PI.shape[1])
    fd, fz = interleaved([lambda: direct(*full), lambda: indexing(*full)], runs)
    td, tz = interleaved([lambda: direct(*TILE), lambda: indexing(*TILE)], runs)
    some = Timing()
    for rows, cols in tiles:
        timed(lambda rows=rows, cols=cols: direct(rows, cols), some)
    print(f"{label:<40} write {write.text()}  {per_cell_day:5.2f} B/cell-day  load {os.getloadavg()[0]:.1f}\n"
          f"{'':<8}PI: direct {fd.text(True)}  zarr {fz.text()}\n"
          f"{'':<8}128 x 128: direct {td.text(True)}  zarr {tz.text()}   8 tiles: direct {some.text()}", flush=True)
    if "[layout 2]" in label:  # reader settings: Icechunk's default request splitting, decode threads
        plain = ic.Repository.open(ic.local_filesystem_storage(str(path)))

        def unsplit(rows: slice, cols: slice) -> np.ndarray:
            return R.decode_window(group, plain.readonly_session("main").store, MODEL_BANDS, written, 0, n, rows, cols, loc)

        def threads(k: int, rows: slice, cols: slice) -> np.ndarray:
            saved, D.DECODE_THREADS = D.DECODE_THREADS, k
            try:
                return direct(rows, cols)
            finally:
                D.DECODE_THREADS = saved

        for what, window in (("PI", full), ("128 x 128", TILE)):
            res = interleaved([lambda w=window: direct(*w), lambda w=window: unsplit(*w), lambda w=window: threads(1, *w),
                               lambda w=window: threads(4, *w)], runs)
            print(f"{'':<8}{what}: split requests, {D.DECODE_THREADS} threads {res[0].text(True)}   Icechunk default requests "
                  f"{res[1].text(True)}   1 thread {res[2].text(True)}   4 threads {res[3].text(True)}", flush=True)
    shutil.rmtree(path)


def sweep(images: list[DailyImage], runs: int, workdir: Path, only: str | None) -> None:
    rng = np.random.default_rng(0)
    tiles = [(slice(int(r), int(r) + 128), slice(int(c), int(c) + 128))
             for r, c in zip(rng.integers(0, 800 - 128, 8), rng.integers(0, 1500 - 128, 8), strict=True)]
    print(f"\nlayout sweep ({len(images)} days, Icechunk + Zarr; medians of {runs}; wall s (process CPU s); 'direct' = read_window's "
          "reader, 'zarr' = Zarr indexing; '8 tiles' = median of 8 random 128 x 128 windows)")
    for label, cname, clevel, chunks, shards in SWEEP:
        if only is None or only in label:
            sweep_layout(label, cname, clevel, chunks, shards, images, runs, workdir, tiles)


def compare(images: list[DailyImage], distinct: list[DailyImage], runs: int, workdir: Path) -> None:
    """write_day / read_window against the previous design, in the same process."""
    ours = Settings(cube_root=str(workdir / "cube"))
    before = Settings(cube_root=str(workdir / "cube-layout1"))
    # fill the window; the first write creates the cube and is not timed
    write_day(images[0], settings=ours)
    with layout_1():
        write_day(images[0], settings=before)
    w_ours, w_before = Timing(), Timing()
    for image in images[1:]:
        timed(lambda image=image: write_day(image, settings=ours), w_ours)
        with layout_1():
            timed(lambda image=image: write_day(image, settings=before), w_before)
    from banet_ops.cube.info import _chunk_bytes

    bytes_ours = _chunk_bytes(open_repository(cube_location("PI", settings=ours)))
    bytes_before = _chunk_bytes(open_repository(cube_location("PI", settings=before)))
    # re-writes of an existing day with new values (what a reprocessing does)
    changed = [DailyImage(PI, images[1].day, distinct[(k + 2) % len(distinct)].variables, ["re"]) for k in range(runs)]
    rw_ours, rw_before = Timing(), Timing()
    for image in changed:
        timed(lambda image=image: write_day(image, settings=ours), rw_ours)
        with layout_1():
            timed(lambda image=image: write_day(image, settings=before), rw_before)

    last = START + dt.timedelta(days=len(images) - 1)
    read_ours, read_before = cube_reader(ours, START, last), previous_reader(before, START, last)
    full = slice(0, PI.shape[0]), slice(0, PI.shape[1])
    if not np.array_equal(read_ours(*TILE), read_before(*TILE), equal_nan=True):
        raise RuntimeError("the two designs decode different values")
    full_o, full_b = interleaved([lambda: read_ours(*full), lambda: read_before(*full)], runs)
    tile_o, tile_b = interleaved([lambda: read_ours(*TILE), lambda: read_before(*TILE)], runs)

    cells = len(images) * PI.shape[0] * PI.shape[1]
    raw_all = 4 * len(CUBE_VARIABLES)

    def row(stage: str, a: Timing, b: Timing, target: float) -> None:
        ok = "ok" if a.median() <= target else "MISSED"
        print(f"{stage:<38} {a.text(True):<48} previous {b.text():<28} target <= {target:.1f} s  {ok}")

    print(f"\nmedians of {runs} runs: wall s (process CPU s); previous = layout 1 (zstd-1) + Zarr-indexing reader; "
          f"load average now {os.getloadavg()[0]:.1f}")
    row("write one PI day (7 variables)", w_ours, w_before, TARGETS["write"])
    row("re-write an existing PI day", rw_ours, rw_before, TARGETS["write"])
    row(f"read {len(images)}-day PI window (4 bands)", full_o, full_b, TARGETS["read_full"])
    row(f"read {len(images)}-day 128 x 128 window", tile_o, tile_b, TARGETS["read_tile"])
    print(f"{'stored bytes per cell-day (7 variables)':<38} {bytes_ours / cells:6.2f} B{'':<40} previous {bytes_before / cells:6.2f} B"
          f"{'':<20} raw float32 {raw_all} B ({raw_all / (bytes_ours / cells):.1f}x smaller)")


def read_paths(images: list[DailyImage], runs: int, workdir: Path) -> None:
    """read_window's direct chunk decoding against Zarr's public indexing, on the same cube (issue #14)."""
    ours = Settings(cube_root=str(workdir / "cube-paths"))
    for image in images:
        write_day(image, settings=ours)
    last = START + dt.timedelta(days=len(images) - 1)
    i0, n = L.day_index(START), (last - START).days + 1

    def reader(direct: bool) -> Callable[[slice, slice], np.ndarray]:
        def read(rows: slice, cols: slice) -> np.ndarray:
            loc = cube_location("PI", settings=ours)
            session = readonly_session(open_repository(loc), loc, None)
            import zarr

            written = [t for t in written_indexes(session) if i0 <= t < i0 + n]
            return R.decode_window(zarr.open_group(session.store, mode="r"), session.store, MODEL_BANDS, written, i0, n, rows, cols, loc,
                                   direct=direct)

        return read

    direct, public = reader(True), reader(False)
    full = slice(0, PI.shape[0]), slice(0, PI.shape[1])
    for window in (full, TILE):
        if not np.array_equal(direct(*window), public(*window), equal_nan=True):
            raise RuntimeError("the direct and the public reader decode different values")
    print(f"\nread paths on one cube ({len(images)} days; medians of {runs}; wall s (process CPU s)); load {os.getloadavg()[0]:.1f}")
    for what, window in ((f"{len(images)}-day PI window (4 bands)", full), (f"{len(images)}-day 128 x 128 tile", TILE)):
        d, p = interleaved([lambda w=window: direct(*w), lambda w=window: public(*w)], runs)
        print(f"{what:<34} direct {d.text(True):<44} public (Zarr indexing) {p.text():<26} public/direct {p.median() / d.median():4.2f}x",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--distinct", type=int, default=8, help="distinct synthetic days, cycled")
    parser.add_argument("--sweep", action="store_true", help="also measure alternative layouts")
    parser.add_argument("--only", default=None, help="sweep only the layouts whose label contains this")
    parser.add_argument("--sweep-only", action="store_true", help="skip the main comparison")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--paths-only", action="store_true", help="only compare the direct and the public read paths on one cube")
    args = parser.parse_args()
    runs = max(3, args.runs)
    workdir = Path(tempfile.mkdtemp(prefix="banet-cube-bench-", dir=args.workdir))
    try:
        print(f"cube benchmark: region PI {PI.shape[0]} x {PI.shape[1]}, {args.days} days, {len(CUBE_VARIABLES)} variables, "
              f"local disk {workdir}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, {os.cpu_count()} CPUs, "
              f"decode threads {D.DECODE_THREADS}, load average {os.getloadavg()[0]:.1f}")
        t0 = time.perf_counter()
        distinct = [synthetic_day(PI, START, k) for k in range(args.distinct)]
        images = [DailyImage(PI, START + dt.timedelta(days=i), distinct[i % len(distinct)].variables, [f"synthetic-{i}"])
                  for i in range(args.days)]
        print(f"(generated {len(distinct)} distinct days in {time.perf_counter() - t0:.1f} s)")

        if args.paths_only:
            read_paths(images, runs, workdir)
            return
        if not args.sweep_only:
            compare(images, distinct, runs, workdir)
            read_paths(images, runs, workdir)
        if args.sweep or args.sweep_only:
            sweep(images, runs, workdir, args.only)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
