"""Cube benchmark: write one PI day, read 64-day windows, bytes per cell-day (local disk).

    .venv/bin/python benchmarks/cube.py [--days 64] [--runs 3] [--sweep]

Each stage prints the median of ``--runs`` runs of ``banet_ops.cube`` beside a baseline measured in
the same process: the same arrays and encodings in a plain Zarr v3 directory store (no Icechunk,
no transactions).  ``--sweep`` also measures alternative layouts (float32 storage, other chunk
shapes) with plain Icechunk + Zarr, the measurements behind the choices in ``docs/cube.md``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import datetime as dt
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from banet_ops.bands import CUBE_VARIABLES, MODEL_BANDS
from banet_ops.cube import layout as L
from banet_ops.cube import read_window, write_day
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


def median_time(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def folder_bytes(path: Path, sub: str | None = None) -> int:
    root = path / sub if sub else path
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


# --- baseline: the same layout in a plain Zarr directory store ------------------------------------
class PlainZarr:
    def __init__(self, path: Path, region: Region, time_len: int, chunks: tuple[int, int, int], encodings: dict[str, L.Encoding]) -> None:
        import zarr
        from zarr.codecs import BloscCodec

        self.encodings = encodings
        self.group = zarr.open_group(str(path), mode="w")
        for name in CUBE_VARIABLES:
            enc = encodings[name]
            self.group.create_array(
                name, shape=(time_len, *region.shape), chunks=chunks, dtype=enc.dtype, fill_value=enc.fill,
                compressors=[BloscCodec(cname="zstd", clevel=L.BLOSC_LEVEL, shuffle="shuffle", typesize=enc.itemsize)],
                dimension_names=("time", "lat", "lon"), config={"write_empty_chunks": True},
            )

    def write(self, index: int, image: DailyImage) -> None:
        for name in CUBE_VARIABLES:
            self.group[name][index] = L.encode(name, image.variables[name]) if self.encodings is L.ENCODINGS else image.variables[name]

    def read(self, t0: int, t1: int, rows: slice, cols: slice) -> np.ndarray:
        h = len(range(*rows.indices(PI.shape[0])))
        w = len(range(*cols.indices(PI.shape[1])))
        out = np.empty((t1 - t0, len(MODEL_BANDS), h, w), np.float32)
        for b, name in enumerate(MODEL_BANDS):
            stored = self.group[name][t0:t1, rows, cols]
            if self.encodings is L.ENCODINGS:
                L.decode_into(name, stored, out[:, b])
            else:
                out[:, b] = stored
        return out


def sweep(days: list[DailyImage], runs: int, workdir: Path) -> None:
    """Alternative layouts with Icechunk + Zarr directly (what write_day does, minus bookkeeping)."""
    import icechunk as ic
    import zarr
    from zarr.codecs import BloscCodec

    f32 = {name: L.Encoding("float32", None, float("nan")) for name in CUBE_VARIABLES}
    layouts = [
        ("int16 scaled, (1, 400, 500)  [chosen]", L.ENCODINGS, (1, 400, 500)),
        ("float32,      (1, 400, 500)", f32, (1, 400, 500)),
        ("int16 scaled, (1, 200, 250)", L.ENCODINGS, (1, 200, 250)),
        ("int16 scaled, (1, 800, 1500)", L.ENCODINGS, (1, 800, 1500)),
        ("int16 scaled, (64, 128, 128)", L.ENCODINGS, (64, 128, 128)),
    ]
    n = len(days)
    print(f"\nlayout sweep ({n} days, Icechunk + Zarr; medians of {runs})")
    print(f"{'layout':<40} {'write day s':>11} {'B/cell-day':>10} {'read PI s':>9} {'read 128 s':>10}")
    for label, encs, chunks in layouts:
        path = workdir / f"sweep-{chunks[0]}-{chunks[1]}-{encs['Red'].dtype}"
        repo = ic.Repository.create(ic.local_filesystem_storage(str(path)))
        session = repo.writable_session("main")
        group = zarr.open_group(session.store, mode="w")
        for name in CUBE_VARIABLES:
            enc = encs[name]
            group.create_array(
                name, shape=(366, *PI.shape), chunks=chunks, dtype=enc.dtype, fill_value=enc.fill,
                compressors=[BloscCodec(cname="zstd", clevel=L.BLOSC_LEVEL, shuffle="shuffle", typesize=enc.itemsize)],
                dimension_names=("time", "lat", "lon"),
            )
        session.commit("create")

        def encoded(name: str, image: DailyImage, encs: dict[str, L.Encoding] = encs) -> np.ndarray:
            return L.encode(name, image.variables[name]) if encs is L.ENCODINGS else image.variables[name]

        if chunks[0] == 1:
            write_times = []
            for i, image in enumerate(days):
                t0 = time.perf_counter()
                session = repo.writable_session("main")
                group = zarr.open_group(session.store, mode="r+")
                for name in CUBE_VARIABLES:
                    group[name][i] = encoded(name, image)
                session.commit(f"day {i}")
                write_times.append(time.perf_counter() - t0)
            write_s = f"{statistics.median(write_times):>11.3f}"
        else:  # a day in a 64-day chunk means rewriting 64 days: write them all at once, once
            session = repo.writable_session("main")
            group = zarr.open_group(session.store, mode="r+")
            for name in CUBE_VARIABLES:
                group[name][0:n] = np.stack([encoded(name, image) for image in days])
            session.commit("all days")
            write_s = f"{'(64 days)':>11}"
        per_cell_day = folder_bytes(path, "chunks") / (n * PI.shape[0] * PI.shape[1])

        def read(rows: slice, cols: slice, repo: ic.Repository = repo) -> None:
            group = zarr.open_group(repo.readonly_session("main").store, mode="r")
            for name in MODEL_BANDS:
                group[name][0:n, rows, cols]

        full = median_time(lambda: read(slice(None), slice(None)), runs)
        tile = median_time(lambda: read(*TILE), runs)
        print(f"{label:<40} {write_s} {per_cell_day:>10.2f} {full:>9.2f} {tile:>10.3f}", flush=True)
        shutil.rmtree(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--distinct", type=int, default=8, help="distinct synthetic days, cycled")
    parser.add_argument("--sweep", action="store_true", help="also measure alternative layouts")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    runs = max(3, args.runs)
    workdir = Path(tempfile.mkdtemp(prefix="banet-cube-bench-", dir=args.workdir))
    try:
        print(f"cube benchmark: region PI {PI.shape[0]} x {PI.shape[1]}, {args.days} days, {len(CUBE_VARIABLES)} variables, "
              f"local disk {workdir}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f}")
        t0 = time.perf_counter()
        distinct = [synthetic_day(PI, START, k) for k in range(args.distinct)]
        images = [DailyImage(PI, START + dt.timedelta(days=i), distinct[i % len(distinct)].variables, [f"synthetic-{i}"])
                  for i in range(args.days)]
        print(f"(generated {len(distinct)} distinct days in {time.perf_counter() - t0:.1f} s)")

        settings = Settings(cube_root=str(workdir / "cube"))
        plain = PlainZarr(workdir / "plain.zarr", PI, L.time_length_for(START), (1, *L.SPATIAL_CHUNKS), L.ENCODINGS)
        i0 = L.day_index(START)

        # fill the window; the first write creates the cube and is not timed
        write_day(images[0], settings=settings)
        plain.write(i0, images[0])
        cube_w, plain_w = [], []
        for i, image in enumerate(images[1:], start=1):
            t = time.perf_counter()
            write_day(image, settings=settings)
            cube_w.append(time.perf_counter() - t)
            t = time.perf_counter()
            plain.write(i0 + i, image)
            plain_w.append(time.perf_counter() - t)
        from banet_ops.cube.info import _chunk_bytes
        from banet_ops.cube.storage import cube_location, open_repository

        cube_bytes = _chunk_bytes(open_repository(cube_location("PI", settings=settings)))
        plain_bytes = folder_bytes(workdir / "plain.zarr")
        # timed re-writes of an existing day (what a re-run does)
        rewrite = median_time(lambda: write_day(images[1], settings=settings), runs)
        last = START + dt.timedelta(days=args.days - 1)

        def cube_read(rows: slice | None, cols: slice | None) -> None:
            w = read_window(PI, START, last, rows=rows, cols=cols, settings=settings)
            if not w.available.all():
                raise RuntimeError("benchmark window incomplete")

        full_c = median_time(lambda: cube_read(None, None), runs)
        full_p = median_time(lambda: plain.read(i0, i0 + args.days, slice(None), slice(None)), runs)
        tile_c = median_time(lambda: cube_read(*TILE), runs)
        tile_p = median_time(lambda: plain.read(i0, i0 + args.days, *TILE), runs)

        cells = args.days * PI.shape[0] * PI.shape[1]
        raw_all = 4 * len(CUBE_VARIABLES)

        def row(stage: str, ours: float, base: float, target: float) -> None:
            ok = "ok" if ours <= target else "MISSED"
            print(f"{stage:<40} {ours:>8.3f} s   baseline {base:>8.3f} s   target <= {target:.1f} s  {ok}")

        print(f"\nmedians of {runs} runs (baseline: same layout, plain Zarr directory store)")
        row("write one PI day (7 variables)", statistics.median(cube_w), statistics.median(plain_w), TARGETS["write"])
        row("re-write an existing PI day", rewrite, statistics.median(plain_w), TARGETS["write"])
        row(f"read {args.days}-day PI window (4 bands)", full_c, full_p, TARGETS["read_full"])
        row(f"read {args.days}-day 128 x 128 window", tile_c, tile_p, TARGETS["read_tile"])
        print(f"{'stored bytes per cell-day (7 variables)':<40} {cube_bytes / cells:>8.2f} B   baseline {plain_bytes / cells:>8.2f} B"
              f"   raw float32 {raw_all} B  ({raw_all / (cube_bytes / cells):.1f}x smaller)")
        if args.sweep:
            sweep(images, runs, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
