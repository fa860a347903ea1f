"""Benchmark: publishing ~1,000,000 burned cells to PostGIS (target <= 10 s).

Starts a throw-away PostgreSQL + PostGIS cluster in a temp folder, applies the migrations, builds
a synthetic NRT product of fire-scar blobs (numpy) and times, as the median of --runs runs:

* the PostGIS publish (``postgis.write_product`` + ``finish_run`` + COMMIT), stage by stage:
  COPY into the staging table, set-based upsert into ``banet.burned_cell``, fire events
  (labelling + polygons in Python, then their insert), for a first publish into an empty table
  and for the next day's run (every cell re-estimated: ON CONFLICT DO UPDATE);
* baselines in the same process: ``executemany`` INSERT of the same rows (50k subset,
  extrapolated) and fire-event polygons by ``ST_Union`` of cell squares in PostGIS (subset,
  extrapolated);
* the whole ``publish_product`` (COGs + quicklook + STAC + PostGIS) to a local products root.

Run: ``.venv/bin/python benchmarks/publish.py [--cells 1000000] [--runs 3]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("GDAL_NUM_THREADS", "2")

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from banet_ops.db.engine import dispose_engines, get_engine
from banet_ops.db.migrate import upgrade
from banet_ops.localstack.postgres import LocalPostgres
from banet_ops.product import ModelRef, Product
from banet_ops.publish import postgis, publish_product
from banet_ops.publish.events import fire_events, label_events
from banet_ops.regions import Region
from banet_ops.settings import Settings

TARGET_S = 10.0
TARGET = dt.date(2021, 8, 31)


def blob_product(cells: int, *, seed: int = 0, target: dt.date = TARGET, shift_conf: float = 0.0) -> Product:
    """An NRT product of many overlapping disc-shaped burn scars with ~``cells`` burned cells."""
    side = int(np.ceil(np.sqrt(cells * 3.5)))
    region = Region(name="BENCH", bbox=(-10.0, 36.0, -10.0 + side * 0.01, 36.0 + side * 0.01), pixel_size=0.01)
    rng = np.random.default_rng(seed)
    ws = target - dt.timedelta(days=63)
    day = np.full((side, side), -1, dtype=np.int32)
    while int((day >= 0).sum()) < cells:
        for _ in range(200):
            r = float(np.clip(rng.lognormal(2.3, 0.9), 1.5, 120))
            cy, cx = int(rng.integers(0, side)), int(rng.integers(0, side))
            y0, y1, x0, x1 = max(0, int(cy - r) - 1), min(side, int(cy + r) + 2), max(0, int(cx - r) - 1), min(side, int(cx + r) + 2)
            yy, xx = np.ogrid[y0:y1, x0:x1]
            d = np.sqrt((yy - cy) ** 2 + rng.uniform(0.4, 1.6) * (xx - cx) ** 2)
            inside = d < r
            day[y0:y1, x0:x1][inside] = np.minimum(63, int(rng.integers(1, 50)) + (d[inside] / 6).astype(np.int32))
    burned = day >= 0
    conf = np.where(burned, rng.uniform(0.5, 1.0 - shift_conf, day.shape), rng.uniform(0, 0.5, day.shape)).astype(np.float32)
    dates = (np.datetime64(ws) + np.maximum(day, 1).astype("timedelta64[D]")).astype("datetime64[D]")
    dates[~burned] = np.datetime64("NaT")
    return Product(
        region=region, mode="nrt", target_date=target, window_start=ws, window_end=target, confidence=conf,
        burn_date=dates, burned=burned, threshold=0.5, models=[ModelRef(sha256="c" * 64, path="/w.pth")],
        cube_snapshot="bench",
    )  # fmt: skip


_TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a local process (the database backend)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def median_of(runs: int, fn: Callable[[], dict[str, float]]) -> dict[str, float]:
    samples = [fn() for _ in range(runs)]
    return {k: statistics.median(s[k] for s in samples) for k in samples[0]}


def db_publish(url: str, product: Product) -> dict[str, float]:
    """The PostGIS part of publishing, with its stages timed (wall s); commits.

    ``cpu: …`` entries are the CPU seconds of this process and of its database backend, which
    do not depend on how busy the machine is.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    t = time.perf_counter()
    events = fire_events(product)
    ev_py = time.perf_counter() - t
    raw = get_engine(url).raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
        b0 = _proc_cpu(pid)
        db = postgis.write_product(cur, product, events, started_at=dt.datetime.now(dt.UTC))
        counts = {"n_burned_cells": db.n_burned_cells, "burned_area_km2": db.burned_area_km2, "n_events": len(events)}
        postgis.finish_run(cur, db.run_id, timings=db.timings, counts=counts, outputs={}, version="bench")
        t = time.perf_counter()
        raw.commit()
        commit = time.perf_counter() - t
        backend = _proc_cpu(pid) - b0
    finally:
        raw.close()
    return {
        "copy": db.timings["db_copy"],
        "upsert": db.timings["db_upsert"],
        "events (label+polygons)": ev_py,
        "events (insert)": db.timings["db_events"],
        "run row + commit": db.timings["db_run"] + commit,
        "total": time.perf_counter() - t0,
        "cpu: client": time.process_time() - c0,
        "cpu: database backend": backend,
    }


# An experiment, not a migration: what the contract schema costs per row.  The two foreign keys
# of banet.burned_cell are checked row by row (one SPI query each), and every row also enters a
# GiST index; this variant checks the keys once per statement (transition table) and indexes the
# cell polygons with BRIN (cells are inserted in raster order, so block ranges stay compact).
LEAN_SCHEMA_SQL = """
ALTER TABLE banet.burned_cell DROP CONSTRAINT IF EXISTS burned_cell_run_id_fkey;
ALTER TABLE banet.burned_cell DROP CONSTRAINT IF EXISTS burned_cell_region_fkey;
CREATE OR REPLACE FUNCTION banet.burned_cell_check_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM (SELECT DISTINCT region, run_id FROM new_rows) n
               WHERE NOT EXISTS (SELECT 1 FROM banet.run r WHERE r.id = n.run_id AND r.region = n.region)) THEN
        RAISE EXCEPTION 'burned_cell: run_id/region without a matching banet.run row' USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER burned_cell_run_ins AFTER INSERT ON banet.burned_cell REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION banet.burned_cell_check_run();
CREATE TRIGGER burned_cell_run_upd AFTER UPDATE ON banet.burned_cell REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION banet.burned_cell_check_run();
DROP INDEX IF EXISTS banet.burned_cell_geom_gist;
CREATE INDEX burned_cell_geom_brin ON banet.burned_cell USING brin (geom);
"""


def clear(url: str) -> None:
    raw = get_engine(url).raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("TRUNCATE banet.burned_cell, banet.fire_event, banet.run CASCADE")
        raw.commit()
    finally:
        raw.close()


def baseline_executemany(url: str, product: Product, n: int) -> float:
    """Seconds for a per-row executemany INSERT of ``n`` cells (into a scratch region/product)."""
    cells = postgis.cell_rows(product)
    r = product.region
    rows = [
        (int(cells.row[i]), int(cells.col[i]), cells.burn_date[i].astype(dt.date), float(cells.confidence[i]), float(cells.area_km2[i]))
        for i in range(min(n, cells.n))
    ]
    raw = get_engine(url).raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("SELECT id FROM banet.run LIMIT 1")
        run_id = cur.fetchone()[0]
        t = time.perf_counter()
        cur.executemany(
            """
            INSERT INTO banet.burned_cell (region, product, burn_date, "row", col, geom, confidence, run_id, area_km2)
            VALUES (%(region)s, 'monthly', %(d)s, %(r)s, %(c)s,
                    ST_MakeEnvelope(%(left)s + %(c)s * %(px)s, %(top)s - (%(r)s + 1) * %(px)s,
                                    %(left)s + (%(c)s + 1) * %(px)s, %(top)s - %(r)s * %(px)s, 4326),
                    %(conf)s, %(run)s, %(area)s)
            """,
            [
                {"region": r.name, "d": d, "r": rr, "c": cc, "left": r.left, "top": r.top, "px": r.pixel_size, "conf": cf, "run": run_id, "area": a}
                for rr, cc, d, cf, a in rows
            ],
        )
        elapsed = time.perf_counter() - t
        raw.rollback()
    finally:
        raw.close()
    return elapsed * cells.n / len(rows)


def baseline_st_union(url: str, product: Product, max_cells: int) -> tuple[float, int]:
    """Seconds for ST_Union-per-event outlines of the first events totalling ~``max_cells`` cells, extrapolated."""
    labels, _n = label_events(product.burned)
    rows, cols = np.nonzero(product.burned)
    lab = labels[rows, cols]
    counts = np.bincount(lab)
    keep_labels = np.nonzero(np.cumsum(counts) <= max_cells)[0]
    sel = np.isin(lab, keep_labels[keep_labels > 0])
    raw = get_engine(url).raw_connection()
    try:
        cur = raw.cursor()
        import io

        cur.execute('CREATE TEMP TABLE lab ("row" int, col int, label int) ON COMMIT DROP')
        buf = io.StringIO("".join(f"{r}\t{c}\t{v}\n" for r, c, v in zip(rows[sel], cols[sel], lab[sel])))
        cur.copy_expert("COPY lab FROM STDIN", buf)
        r = product.region
        t = time.perf_counter()
        cur.execute(
            """
            SELECT label, ST_Multi(ST_Union(ST_MakeEnvelope(%(left)s + col * %(px)s, %(top)s - ("row" + 1) * %(px)s,
                                                          %(left)s + (col + 1) * %(px)s, %(top)s - "row" * %(px)s, 4326)))
            FROM lab GROUP BY label
            """,
            {"left": r.left, "top": r.top, "px": r.pixel_size},
        )
        cur.fetchall()
        elapsed = time.perf_counter() - t
        raw.rollback()
    finally:
        raw.close()
    done = int(sel.sum())
    return elapsed * len(rows) / max(done, 1), done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-cells", type=int, default=50_000)
    parser.add_argument("--lean", action="store_true", help="also measure the lean-schema experiment (statement-level key checks, BRIN geometry index)")
    args = parser.parse_args()

    t = time.perf_counter()
    product = blob_product(args.cells)
    next_day = blob_product(args.cells, shift_conf=0.01)  # same scars, every confidence re-estimated
    next_day.target_date, next_day.window_end = TARGET + dt.timedelta(days=1), TARGET + dt.timedelta(days=1)
    next_day.window_start = product.window_start + dt.timedelta(days=1)
    print(f"product: region {product.region.shape[0]}x{product.region.shape[1]}, {product.n_burned:,} burned cells, "
          f"{len(fire_events(product)):,} events (built in {time.perf_counter() - t:.1f} s)")  # fmt: skip

    results: dict[str, tuple[dict[str, float], dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="banet-bench-") as tmp:
        Path(tmp).chmod(0o755)  # the cluster runs as the 'postgres' user when we are root
        cluster = LocalPostgres(Path(tmp) / "pg")
        url = cluster.start()
        try:
            upgrade(url)

            def first_then_next_day() -> dict[str, float]:
                clear(url)
                first = db_publish(url, product)
                update = db_publish(url, next_day)
                return {**{f"first|{k}": v for k, v in first.items()}, **{f"update|{k}": v for k, v in update.items()}}

            def split(res: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
                first = {k.split("|", 1)[1]: v for k, v in res.items() if k.startswith("first|")}
                update = {k.split("|", 1)[1]: v for k, v in res.items() if k.startswith("update|")}
                return first, update

            results["contract schema"] = split(median_of(args.runs, first_then_next_day))
            many = baseline_executemany(url, product, args.baseline_cells)
            union_s, union_cells = baseline_st_union(url, product, args.baseline_cells)

            settings = Settings(home=Path(tmp), database_url=url, products_root=str(Path(tmp) / "products"))

            def full() -> dict[str, float]:
                clear(url)
                res = publish_product(product, settings=settings)
                return {k: res.timings[k] for k in ("cog", "quicklook", "events", "db_copy", "db_upsert", "db_events", "files", "total")}

            whole = median_of(args.runs, full)
            if args.lean:
                raw = get_engine(url).raw_connection()
                try:
                    raw.cursor().execute(LEAN_SCHEMA_SQL)
                    raw.commit()
                finally:
                    raw.close()
                results["lean variant (experiment)"] = split(median_of(args.runs, first_then_next_day))
        finally:
            dispose_engines()
            cluster.destroy()

    n = product.n_burned
    load = os.getloadavg()[0]
    print(f"\nmachine: {os.cpu_count()} CPUs, load average {load:.1f} at the end (wall times grow with it; CPU times do not)")
    for name, (first, update) in results.items():
        print(f"\nPostGIS publish of {n:,} cells, {name}, median of {args.runs} runs (s):")
        print(f"{'stage':<26}{'first publish':>15}{'next-day update':>17}")
        for k in first:
            print(f"{k:<26}{first[k]:>15.2f}{update[k]:>17.2f}")
    first, update = results["contract schema"]
    print(f"\nbaseline executemany INSERT: {many:.1f} s for {n:,} cells (measured on {args.baseline_cells:,}, extrapolated) "
          f"-> COPY + set-based upsert ({first['copy'] + first['upsert']:.1f} s) is {many / (first['copy'] + first['upsert']):.0f}x faster")  # fmt: skip
    ev_ours = first["events (label+polygons)"] + first["events (insert)"]
    print(f"baseline ST_Union event outlines in PostGIS: {union_s:.1f} s (measured on {union_cells:,} cells, extrapolated) "
          f"vs labelling + polygonize + insert {ev_ours:.2f} s")  # fmt: skip
    print("\nwhole publish_product (COGs, quicklook, STAC, PostGIS), median (s): " + ", ".join(f"{k} {v:.2f}" for k, v in whole.items()))
    ok = first["total"] <= TARGET_S and update["total"] <= TARGET_S
    print(f"\ntarget: PostGIS publish of 1,000,000 cells <= {TARGET_S:.0f} s -> contract schema: first {first['total']:.2f} s, "
          f"update {update['total']:.2f} s: {'PASS' if ok else 'FAIL'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
