"""Benchmark: publishing ~1,000,000 burned cells to PostGIS (target <= 10 s).

Starts a throw-away PostgreSQL + PostGIS cluster in a temp folder and builds a synthetic NRT
product of fire-scar blobs (numpy).  Times, as the median of --runs runs:

* the PostGIS publish (``postgis.write_product`` + ``finish_run`` + COMMIT) with the schema of
  all migrations, stage by stage, for a first publish into an empty table and for the next
  day's run (same scars, every confidence re-estimated, new run: 1M rows updated); then the
  summary of the new BRIN ranges (after the commit, a separate step);
* a polygon query (``sql/queries/burned_area_in_polygon.sql``) over the published cells;
* baselines in the same process: the previous design (schema of migrations 0001-0004 -- two
  per-row foreign keys, GiST on the cell polygons, B-trees on run_id and (region, row, col) --
  and its COPY-to-staging + ``INSERT … ON CONFLICT DO UPDATE``; --baseline-runs runs) in a
  second database of the same cluster, and ``executemany`` INSERT of the same rows (50k
  subset, extrapolated); fire-event polygons by ``ST_Union`` of cell squares (subset,
  extrapolated);
* the whole ``publish_product`` (COGs + quicklook + STAC + PostGIS) to a local products root.

CPU seconds of the database backend (from /proc) are printed beside wall times: on a shared
machine the wall times grow with the load, the CPU times much less.

Run: ``.venv/bin/python benchmarks/publish.py [--cells 1000000] [--runs 3] [--baseline-runs 1]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("GDAL_NUM_THREADS", "2")

import argparse
import datetime as dt
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from banet_ops.db import runs
from banet_ops.db.copy import copy_in
from banet_ops.db.engine import dispose_engines, get_engine
from banet_ops.db.migrate import migrations_dir, upgrade
from banet_ops.db.regions_repo import ensure_region
from banet_ops.localstack.postgres import LocalPostgres
from banet_ops.product import ModelRef, Product
from banet_ops.publish import postgis, publish_product
from banet_ops.publish.events import FireEvent, fire_events
from banet_ops.regions import Region
from banet_ops.settings import Settings

QUERY_FILE = Path(__file__).resolve().parents[1] / "sql" / "queries" / "burned_area_in_polygon.sql"
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
    dates = (np.datetime64(ws) + np.maximum(day, 2).astype("timedelta64[D]")).astype("datetime64[D]")  # in the next day's window too
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


def _one(cur: Any) -> int:
    row = cur.fetchone()
    if row is None:
        raise RuntimeError("expected a row, found none")
    return int(row[0])


def _backend(raw: Any) -> int:
    cur = raw.cursor()
    cur.execute("SELECT pg_backend_pid()")
    return _one(cur)


def db_publish(url: str, product: Product) -> dict[str, float]:
    """The PostGIS part of publishing with the current schema and code, stage by stage (wall s); commits.

    ``cpu: …`` entries are CPU seconds of this process and of its database backend.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    raw = get_engine(url).raw_connection()
    try:
        pid = _backend(raw)
        b0 = _proc_cpu(pid)
        cur = raw.cursor()
        db = postgis.write_product(cur, product, started_at=dt.datetime.now(dt.UTC))
        counts = {"n_burned_cells": db.n_burned_cells, "burned_area_km2": db.burned_area_km2, "n_events": db.n_events}
        runs.finish_run(cur, db.run_id, timings=db.timings, counts=counts, outputs={}, version="bench")
        t = time.perf_counter()
        raw.commit()
        commit = time.perf_counter() - t
        total, client, backend = time.perf_counter() - t0, time.process_time() - c0, _proc_cpu(pid) - b0
        b1 = _proc_cpu(pid)
        summarize = postgis.summarize_cells(raw, product)
        summarize_cpu = _proc_cpu(pid) - b1
    finally:
        raw.close()
    return {
        "read scope + plan": db.timings["db_read"],
        "delete gone cells": db.timings["db_delete"],
        "update changed cells": db.timings["db_update"],
        "insert new cells (COPY)": db.timings["db_insert"],
        "events (read cells, label, polygons, write)": db.timings["db_events"],
        "run row + commit": db.timings["db_run"] + commit,
        "total": total,
        "cpu: client": client,
        "cpu: database backend": backend,
        "BRIN summary (after commit)": summarize,
        "cpu: BRIN summary (backend)": summarize_cpu,
        "rows inserted": db.n_inserted,
        "rows updated": db.n_updated,
        "rows deleted": db.n_deleted,
    }


# --- the previous design (migrations 0001-0004 and the statements that went with them) --------


def legacy_database(url: str) -> str:
    """A second database of the cluster with only migrations 0001-0004 applied; its URL."""
    name = "banet_legacy"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    legacy = sa.make_url(url).set(database=name).render_as_string(hide_password=False)
    raw = get_engine(legacy).raw_connection()
    try:
        cur = raw.cursor()
        for path in sorted(migrations_dir().glob("000[1-4]_*.sql")):
            cur.execute(path.read_text())
        raw.commit()
    finally:
        raw.close()
    return legacy


def legacy_replace_events(cur: Any, product: Product, run_id: int, events: list[FireEvent]) -> None:
    """The previous events statements (no anchor columns before 0006): delete the window's events, insert the new ones."""
    cur.execute(
        "DELETE FROM banet.fire_event e USING banet.run r WHERE e.run_id = r.id AND r.region = %s AND r.product = %s "
        "AND r.window_start = %s AND r.window_end = %s",
        (product.region.name, product.mode, product.window_start, product.window_end),
    )
    cur.execute(
        "CREATE TEMP TABLE banet_stage_event (first_burn_date date, last_burn_date date, area_km2 double precision, "
        "n_cells integer, mean_confidence real, geojson text) ON COMMIT DROP"
    )
    rows = "".join(f"{e.first_burn_date}\t{e.last_burn_date}\t{e.area_km2!r}\t{e.n_cells}\t{e.mean_confidence!r}\t{e.geojson}\n" for e in events)
    copy_in(cur, "COPY banet_stage_event FROM STDIN", rows)
    cur.execute(
        "INSERT INTO banet.fire_event (run_id, region, product, geom, first_burn_date, last_burn_date, area_km2, n_cells, mean_confidence) "
        "SELECT %s, %s, %s, ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(geojson), 4326)), first_burn_date, last_burn_date, area_km2, "
        "n_cells, mean_confidence FROM banet_stage_event",
        (run_id, product.region.name, product.mode),
    )


def legacy_publish(url: str, product: Product) -> dict[str, float]:
    """The previous publish statements on the previous schema: COPY into a staging table, then
    DELETE of the window's vanished cells and ``INSERT … ON CONFLICT DO UPDATE`` (row by row
    foreign keys, GiST and three B-trees)."""
    t0 = time.perf_counter()
    events = fire_events(product)
    raw = get_engine(url).raw_connection()
    try:
        pid = _backend(raw)
        b0 = _proc_cpu(pid)
        cur = raw.cursor()
        postgis.lock_scope(cur, product)
        ensure_region(cur, product.region)
        run_id = runs.upsert_run(cur, product, started_at=dt.datetime.now(dt.UTC))
        first, last = postgis.effective_window(product)
        r = product.region
        cells = postgis.cell_rows(product)
        cur.execute(
            'CREATE TEMP TABLE banet_stage_cell (burn_date date NOT NULL, "row" integer NOT NULL, col integer NOT NULL, '
            "confidence real NOT NULL, area_km2 double precision NOT NULL) ON COMMIT DROP"
        )
        copy_in(cur, "COPY banet_stage_cell FROM STDIN WITH (FORMAT binary)", postgis.stage_copy_buffer(cells))
        cur.execute("ANALYZE banet_stage_cell")
        params = {"region": r.name, "product": product.mode, "first": first, "last": last, "left": r.left, "top": r.top, "px": r.pixel_size, "run_id": run_id}
        cur.execute("SELECT banet.ensure_burned_cell_partitions(%s, %s)", (first, last))
        cur.execute("SET LOCAL enable_nestloop = off")
        cur.execute(
            """
            DELETE FROM banet.burned_cell b
            WHERE b.region = %(region)s AND b.product = %(product)s AND b.burn_date BETWEEN %(first)s AND %(last)s
              AND NOT EXISTS (SELECT 1 FROM banet_stage_cell s WHERE s."row" = b."row" AND s.col = b.col AND s.burn_date = b.burn_date)
            """,
            params,
        )
        cur.execute("RESET enable_nestloop")
        cur.execute(
            """
            INSERT INTO banet.burned_cell AS b (region, product, burn_date, "row", col, geom, confidence, run_id, area_km2)
            SELECT %(region)s, %(product)s, s.burn_date, s."row", s.col,
                   ST_MakeEnvelope(%(left)s + s.col * %(px)s, %(top)s - (s."row" + 1) * %(px)s,
                                   %(left)s + (s.col + 1) * %(px)s, %(top)s - s."row" * %(px)s, 4326),
                   s.confidence, %(run_id)s, s.area_km2
            FROM banet_stage_cell s
            ON CONFLICT (region, product, burn_date, "row", col) DO UPDATE
            SET confidence = EXCLUDED.confidence, run_id = EXCLUDED.run_id, area_km2 = EXCLUDED.area_km2
            WHERE (b.confidence, b.run_id, b.area_km2) IS DISTINCT FROM (EXCLUDED.confidence, EXCLUDED.run_id, EXCLUDED.area_km2)
            """,
            params,
        )
        legacy_replace_events(cur, product, run_id, events)
        counts = {"n_burned_cells": cells.n, "burned_area_km2": float(cells.area_km2.sum()), "n_events": len(events)}
        runs.finish_run(cur, run_id, timings={}, counts=counts, outputs={}, version="bench")
        raw.commit()
        backend = _proc_cpu(pid) - b0
    finally:
        raw.close()
    return {"total": time.perf_counter() - t0, "cpu: database backend": backend}


# --- polygon query -----------------------------------------------------------------------------


def polygon_query(url: str, polygon: str, first: dt.date, last: dt.date, runs: int) -> tuple[float, int]:
    """Median seconds of sql/queries/burned_area_in_polygon.sql (its statement, psql variables bound), and its cell count."""
    text = QUERY_FILE.read_text()
    sql = text[text.rindex("\\endif") + len("\\endif") :]
    sql = re.sub(r":'(\w+)'", r"%(\1)s", sql).strip().rstrip(";")
    params = {"polygon": polygon, "first_day": first, "last_day": last, "product": "nrt"}
    raw = get_engine(url).raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("ANALYZE banet.burned_cell")
        raw.commit()
        cur.execute(sql, params)  # warm the catalog caches of this session
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            cur.execute(sql, params)
            rows = cur.fetchall()
            times.append(time.perf_counter() - t)
        raw.rollback()
    finally:
        raw.close()
    return statistics.median(times), sum(int(r[1]) for r in rows)


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
        run_id = _one(cur)
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
    from scipy import ndimage

    labels, _n = ndimage.label(product.burned, structure=np.ones((3, 3), dtype=bool))
    rows, cols = np.nonzero(product.burned)
    lab = labels[rows, cols]
    counts = np.bincount(lab)
    keep_labels = np.nonzero(np.cumsum(counts) <= max_cells)[0]
    sel = np.isin(lab, keep_labels[keep_labels > 0])
    raw = get_engine(url).raw_connection()
    try:
        cur = raw.cursor()

        cur.execute('CREATE TEMP TABLE lab ("row" int, col int, label int) ON COMMIT DROP')
        copy_in(cur, "COPY lab FROM STDIN", "".join(f"{r}\t{c}\t{v}\n" for r, c, v in zip(rows[sel], cols[sel], lab[sel])))
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


def _table(title: str, columns: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    names = list(columns)
    print(f"{'stage':<30}" + "".join(f"{n:>18}" for n in names))
    for k in columns[names[0]]:
        fmt = "{:>18,.0f}" if k.startswith("rows") else "{:>18.2f}"
        print(f"{k:<30}" + "".join(fmt.format(columns[n][k]) for n in names))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-runs", type=int, default=1, help="runs of the previous design (~2 min each on a loaded 2-core machine)")
    parser.add_argument("--baseline-cells", type=int, default=50_000)
    parser.add_argument("--skip-whole", action="store_true", help="skip the whole publish_product timing")
    args = parser.parse_args()

    t = time.perf_counter()
    product = blob_product(args.cells)
    next_day = blob_product(args.cells, shift_conf=0.01)  # same scars, every confidence re-estimated
    next_day.target_date, next_day.window_end = TARGET + dt.timedelta(days=1), TARGET + dt.timedelta(days=1)
    next_day.window_start = product.window_start + dt.timedelta(days=1)
    r = product.region
    rows, cols = np.nonzero(product.burned)
    mid = rows.size // 2  # a 0.5 x 0.5 degree square (50 x 50 cells) around a burned cell near the middle
    cx, cy = r.left + (cols[mid] + 0.5) * r.pixel_size - 0.25, r.top - (rows[mid] + 0.5) * r.pixel_size - 0.25
    polygon = f"POLYGON(({cx} {cy},{cx + 0.5} {cy},{cx + 0.5} {cy + 0.5},{cx} {cy + 0.5},{cx} {cy}))"
    q_first, q_last = product.window_start, next_day.window_end
    print(f"product: region {r.shape[0]}x{r.shape[1]}, {product.n_burned:,} burned cells, "
          f"{len(fire_events(product)):,} events (built in {time.perf_counter() - t:.1f} s)")  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="banet-bench-") as tmp:
        Path(tmp).chmod(0o755)  # the cluster runs as the 'postgres' user when we are root
        cluster = LocalPostgres(Path(tmp) / "pg")
        url = cluster.start()
        try:
            upgrade(url)

            def first_then_next_day(publish: Callable[[str, Product], dict[str, float]], db: str) -> Callable[[], dict[str, float]]:
                def run() -> dict[str, float]:
                    clear(db)
                    first = publish(db, product)
                    update = publish(db, next_day)
                    return {**{f"first|{k}": v for k, v in first.items()}, **{f"update|{k}": v for k, v in update.items()}}

                return run

            def split(res: dict[str, float]) -> dict[str, dict[str, float]]:
                return {
                    "first publish": {k.split("|", 1)[1]: v for k, v in res.items() if k.startswith("first|")},
                    "next-day update": {k.split("|", 1)[1]: v for k, v in res.items() if k.startswith("update|")},
                }

            ours = split(median_of(args.runs, first_then_next_day(db_publish, url)))
            rerun = db_publish(url, next_day)  # the same product again: nothing to write
            query_s, query_cells = polygon_query(url, polygon, q_first, q_last, max(args.runs, 5))

            legacy_url = legacy_database(url)
            legacy = split(median_of(args.baseline_runs, first_then_next_day(legacy_publish, legacy_url)))
            legacy_query_s, legacy_query_cells = polygon_query(legacy_url, polygon, q_first, q_last, max(args.runs, 5))
            many = baseline_executemany(url, product, args.baseline_cells)
            union_s, union_cells = baseline_st_union(url, product, args.baseline_cells)

            whole: dict[str, float] = {}
            if not args.skip_whole:
                settings = Settings(home=Path(tmp), database_url=url, products_root=str(Path(tmp) / "products"))

                def full() -> dict[str, float]:
                    clear(url)
                    res = publish_product(product, settings=settings)
                    return {k: res.timings[k] for k in ("cog", "quicklook", "db_cells", "db_events", "files", "total", "db_summarize")}

                whole = median_of(args.runs, full)
        finally:
            dispose_engines()
            cluster.destroy()

    n = product.n_burned
    print(f"\nmachine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end (wall times grow with it; CPU times much less)")
    _table(f"PostGIS publish of {n:,} cells, current schema and code, median of {args.runs} runs (s):", ours)
    print(f"re-publishing the same product: {rerun['total']:.2f} s wall, {rerun['cpu: database backend']:.2f} s backend CPU, "
          f"{rerun['rows inserted'] + rerun['rows updated'] + rerun['rows deleted']:.0f} rows written")  # fmt: skip
    _table(f"baseline: previous design (migrations 0001-0004, ON CONFLICT upsert), median of {args.baseline_runs} run(s) (s):", legacy)
    for case in ("first publish", "next-day update"):
        a, b = ours[case], legacy[case]
        print(f"{case}: {a['total']:.1f} s wall / {a['cpu: database backend']:.1f} s backend CPU vs baseline {b['total']:.1f} s / "
              f"{b['cpu: database backend']:.1f} s -> {b['total'] / a['total']:.1f}x wall, "
              f"{b['cpu: database backend'] / a['cpu: database backend']:.1f}x CPU")  # fmt: skip
    print(f"polygon query (sql/queries/burned_area_in_polygon.sql, 0.5 x 0.5 degree, {query_cells} cells): BRIN {query_s * 1000:.0f} ms, "
          f"baseline GiST {legacy_query_s * 1000:.0f} ms ({legacy_query_cells} cells)")  # fmt: skip
    first = ours["first publish"]
    print(f"baseline executemany INSERT: {many:.1f} s for {n:,} cells (measured on {args.baseline_cells:,}, extrapolated) "
          f"-> first publish {first['total']:.1f} s is {many / first['total']:.0f}x faster")  # fmt: skip
    ev_ours = first["events (read cells, label, polygons, write)"]
    print(f"baseline ST_Union event outlines in PostGIS: {union_s:.1f} s (measured on {union_cells:,} cells, extrapolated) "
          f"vs reading, labelling in space and time, polygonizing and writing {ev_ours:.2f} s")  # fmt: skip
    if whole:
        print("\nwhole publish_product (COGs, quicklook, STAC, PostGIS), median (s): " + ", ".join(f"{k} {v:.2f}" for k, v in whole.items()))
    update = ours["next-day update"]
    ok = first["total"] <= TARGET_S and update["total"] <= TARGET_S
    cpu_ok = first["cpu: database backend"] <= TARGET_S and update["cpu: database backend"] <= TARGET_S
    print(f"\ntarget: PostGIS publish of 1,000,000 cells <= {TARGET_S:.0f} s -> wall: first {first['total']:.2f} s, update {update['total']:.2f} s: "
          f"{'PASS' if ok else 'FAIL'}; database CPU: first {first['cpu: database backend']:.2f} s, update "
          f"{update['cpu: database backend']:.2f} s: {'PASS' if cpu_ok else 'FAIL'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
