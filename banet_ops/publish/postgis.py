"""PostGIS side of publishing: run record, burned cells and fire events, in one transaction.

Cells travel by ``COPY … FROM STDIN (FORMAT binary)`` from an in-memory buffer that numpy builds
in one go (no per-row Python), into a TEMP staging table; set-based statements then apply them:

* NRT keeps the current estimate of each cell: NRT rows of the region whose burn date lies in
  the run's effective window and that the new product does not contain are deleted, the rest
  is ``INSERT … ON CONFLICT DO UPDATE`` (rows that did not change are not rewritten).
* Monthly replaces the region-month: delete its monthly rows, insert the new ones.

Cell polygons are built in SQL from row/col and the region grid (``ST_MakeEnvelope``); cell areas
come from :meth:`Region.row_cell_area_km2` (WGS84 ellipsoid).  Fire events of the same (region,
product, window) scope are replaced.  Callers own the transaction (:func:`write_product`
never commits), so a failure anywhere leaves the previous state.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from banet_ops.errors import DatabaseError, DatabaseUnavailableError, RegionError, SchemaError
from banet_ops.product import Product
from banet_ops.publish.events import FireEvent
from banet_ops.regions import Region, parse_region

PG_EPOCH = np.datetime64("2000-01-01", "D")
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)
# One tuple of the staging table in PostgreSQL's binary COPY layout: field count, then
# (length, value) per field, all big-endian.
_CELL_DTYPE = np.dtype(
    [
        ("nfields", ">i2"),
        ("l_row", ">i4"), ("row", ">i4"),
        ("l_col", ">i4"), ("col", ">i4"),
        ("l_date", ">i4"), ("date", ">i4"),
        ("l_conf", ">i4"), ("conf", ">f4"),
        ("l_area", ">i4"), ("area", ">f8"),
    ]
)  # fmt: skip


@dataclass(frozen=True)
class CellRows:
    """The burned cells of a product as columns (row-major order)."""

    row: np.ndarray
    col: np.ndarray
    burn_date: np.ndarray  # datetime64[D]
    confidence: np.ndarray  # float32
    area_km2: np.ndarray  # float64

    @property
    def n(self) -> int:
        return int(self.row.size)


def cell_rows(product: Product) -> CellRows:
    """Columns of the burned cells of ``product``."""
    rows, cols = np.nonzero(product.burned)
    return CellRows(
        row=rows.astype(np.int32),
        col=cols.astype(np.int32),
        burn_date=product.burn_date[rows, cols].astype("datetime64[D]"),
        confidence=product.confidence[rows, cols].astype(np.float32),
        area_km2=product.region.row_cell_area_km2()[rows],
    )


def binary_copy_buffer(cells: CellRows) -> io.BytesIO:
    """The cells as a binary COPY stream for (row, col, burn_date, confidence, area_km2)."""
    rec = np.empty(cells.n, dtype=_CELL_DTYPE)
    rec["nfields"] = 5
    rec["l_row"] = rec["l_col"] = rec["l_date"] = rec["l_conf"] = 4
    rec["l_area"] = 8
    rec["row"] = cells.row
    rec["col"] = cells.col
    rec["date"] = (cells.burn_date - PG_EPOCH).astype(np.int64)
    rec["conf"] = cells.confidence
    rec["area"] = cells.area_km2
    return io.BytesIO(_COPY_HEADER + rec.tobytes() + _COPY_TRAILER)


def effective_window(product: Product) -> tuple[dt.date, dt.date]:
    """The burn dates a product speaks for: NRT (start, end] (the first day is discarded), monthly its month."""
    if product.mode == "monthly":
        first = product.target_date.replace(day=1)
        nxt = (first + dt.timedelta(days=32)).replace(day=1)
        return first, nxt - dt.timedelta(days=1)
    return product.window_start + dt.timedelta(days=1), product.window_end


def model_key(product: Product) -> str:
    """sha256s of the ensemble, sorted, joined by ``+``."""
    return "+".join(sorted(m.sha256 for m in product.models))


# --- error mapping -----------------------------------------------------------------------


def wrap_db_error(exc: BaseException, what: str) -> Exception:
    """A project error for a psycopg2 error (retryable for connection losses, deadlocks, conflicts)."""
    import psycopg2
    from psycopg2 import errors as pgerr

    detail = " ".join(str(exc).split())[:400]
    if isinstance(exc, psycopg2.OperationalError | pgerr.SerializationFailure | pgerr.DeadlockDetected | pgerr.LockNotAvailable):
        return DatabaseUnavailableError(f"{what}: expected the database to complete it, found: {detail}", hint="retry the task")
    if isinstance(exc, pgerr.UndefinedTable | pgerr.UndefinedFunction | pgerr.UndefinedColumn | pgerr.InvalidSchemaName):
        return SchemaError(f"{what}: expected the banet schema, found: {detail}", hint="run `banet-ops db upgrade`")
    return DatabaseError(f"{what} failed: {detail}", hint="see the database log")


# --- statements --------------------------------------------------------------------------


def lock_scope(cur: Any, product: Product) -> None:
    """Serialise publishers of the same region and product (released at commit/rollback)."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtext('banet.publish'), hashtext(%s))", (f"{product.region.name}/{product.mode}",))


def ensure_region(cur: Any, region: Region) -> None:
    """Insert the region row if missing; refuse a registered region whose grid differs."""
    rows, cols = region.shape
    cur.execute(
        """
        INSERT INTO banet.region (name, bbox, pixel_size, n_rows, n_cols, definition)
        VALUES (%(name)s, ST_MakeEnvelope(%(left)s, %(bottom)s, %(right)s, %(top)s, 4326), %(px)s, %(rows)s, %(cols)s, %(def)s::jsonb)
        ON CONFLICT (name) DO NOTHING
        """,
        {
            "name": region.name, "left": region.left, "bottom": region.bottom, "right": region.right, "top": region.top,
            "px": region.pixel_size, "rows": rows, "cols": cols, "def": json.dumps(region.to_file_dict()),
        },
    )  # fmt: skip
    cur.execute("SELECT definition FROM banet.region WHERE name = %s", (region.name,))
    registered = parse_region(cur.fetchone()[0], f"banet.region {region.name}")
    if registered != region:
        raise RegionError(
            f"region {region.name}: expected the product grid {list(region.bbox)} @ {region.pixel_size} to match the "
            f"registered one, found {list(registered.bbox)} @ {registered.pixel_size}",
            hint="publish with the registered region definition, or register the new grid under a new name",
        )


def upsert_run(cur: Any, product: Product, *, started_at: dt.datetime) -> int:
    """Insert (or take over) the run row of this product's unique key, as 'running'; its id."""
    cur.execute(
        """
        INSERT INTO banet.run (region, product, target_date, window_start, window_end, model_key, model_ids,
                               cube_snapshot, status, started_at, finished_at)
        VALUES (%(region)s, %(product)s, %(target)s, %(ws)s, %(we)s, %(key)s, %(ids)s, %(snap)s, 'running', %(started)s, NULL)
        ON CONFLICT (region, product, target_date, model_key, cube_snapshot) DO UPDATE SET
            window_start = EXCLUDED.window_start, window_end = EXCLUDED.window_end, model_ids = EXCLUDED.model_ids,
            status = 'running', started_at = EXCLUDED.started_at, finished_at = NULL
        RETURNING id
        """,
        {
            "region": product.region.name, "product": product.mode, "target": product.target_date,
            "ws": product.window_start, "we": product.window_end, "key": model_key(product),
            "ids": sorted(m.model_id for m in product.models if m.model_id), "snap": product.cube_snapshot,
            "started": started_at,
        },
    )  # fmt: skip
    return int(cur.fetchone()[0])


def finish_run(cur: Any, run_id: int, *, timings: Mapping[str, float], counts: Mapping[str, Any], outputs: Mapping[str, str], version: str) -> None:
    """Mark the run succeeded with its counts, timings and outputs."""
    cur.execute(
        """
        UPDATE banet.run SET status = 'succeeded', finished_at = greatest(clock_timestamp(), started_at),
               timings = %(timings)s::jsonb, n_burned_cells = %(n_cells)s, burned_area_km2 = %(area)s,
               n_events = %(n_events)s, software_version = %(version)s, outputs = %(outputs)s::jsonb
        WHERE id = %(id)s
        """,
        {
            "timings": json.dumps({k: round(float(v), 4) for k, v in timings.items()}, sort_keys=True),
            "n_cells": counts["n_burned_cells"], "area": counts["burned_area_km2"], "n_events": counts["n_events"],
            "version": version, "outputs": json.dumps(dict(outputs), sort_keys=True), "id": run_id,
        },
    )  # fmt: skip


def stage_cells(cur: Any, cells: CellRows) -> None:
    """COPY the cells into the TEMP table ``banet_stage_cell`` (dropped at commit)."""
    cur.execute(
        """
        CREATE TEMP TABLE banet_stage_cell (
            "row" integer NOT NULL, col integer NOT NULL, burn_date date NOT NULL,
            confidence real NOT NULL, area_km2 double precision NOT NULL
        ) ON COMMIT DROP
        """
    )
    cur.copy_expert('COPY banet_stage_cell ("row", col, burn_date, confidence, area_km2) FROM STDIN WITH (FORMAT binary)', binary_copy_buffer(cells))
    cur.execute("ANALYZE banet_stage_cell")


_INSERT_CELLS = """
INSERT INTO banet.burned_cell AS b (region, product, burn_date, "row", col, geom, confidence, run_id, area_km2)
SELECT %(region)s, %(product)s, s.burn_date, s."row", s.col,
       ST_MakeEnvelope(%(left)s + s.col * %(px)s, %(top)s - (s."row" + 1) * %(px)s,
                       %(left)s + (s.col + 1) * %(px)s, %(top)s - s."row" * %(px)s, 4326),
       s.confidence, %(run_id)s, s.area_km2
FROM banet_stage_cell s
"""


def apply_cells(cur: Any, product: Product, run_id: int) -> dict[str, int]:
    """Apply the staged cells to ``banet.burned_cell``; counts of deleted and written rows."""
    first, last = effective_window(product)
    r = product.region
    params = {"region": r.name, "product": product.mode, "first": first, "last": last, "left": r.left, "top": r.top, "px": r.pixel_size, "run_id": run_id}
    cur.execute("SELECT banet.ensure_burned_cell_partitions(%s, %s)", (first, last))
    if product.mode == "nrt":
        # A partition filled moments ago has no statistics yet, and the planner then picks a
        # nested-loop anti-join over the staging table (quadratic).  The set-based plan is always
        # right here: a hash or merge anti-join.
        cur.execute("SET LOCAL enable_nestloop = off")
        cur.execute(
            """
            DELETE FROM banet.burned_cell b
            WHERE b.region = %(region)s AND b.product = 'nrt' AND b.burn_date BETWEEN %(first)s AND %(last)s
              AND NOT EXISTS (SELECT 1 FROM banet_stage_cell s
                              WHERE s."row" = b."row" AND s.col = b.col AND s.burn_date = b.burn_date)
            """,
            params,
        )
        deleted = cur.rowcount
        cur.execute("RESET enable_nestloop")
        cur.execute(
            _INSERT_CELLS
            + """
            ON CONFLICT (region, product, burn_date, "row", col) DO UPDATE
            SET confidence = EXCLUDED.confidence, run_id = EXCLUDED.run_id, area_km2 = EXCLUDED.area_km2
            WHERE (b.confidence, b.run_id, b.area_km2) IS DISTINCT FROM (EXCLUDED.confidence, EXCLUDED.run_id, EXCLUDED.area_km2)
            """,
            params,
        )
    else:
        cur.execute(
            "DELETE FROM banet.burned_cell WHERE region = %(region)s AND product = 'monthly' AND burn_date BETWEEN %(first)s AND %(last)s",
            params,
        )
        deleted = cur.rowcount
        cur.execute(_INSERT_CELLS, params)
    return {"deleted": int(deleted), "written": int(cur.rowcount)}


def replace_events(cur: Any, product: Product, run_id: int, events: Sequence[FireEvent]) -> None:
    """Replace the fire events of the (region, product, window) scope by ``events`` of this run."""
    cur.execute(
        """
        DELETE FROM banet.fire_event e USING banet.run r
        WHERE e.run_id = r.id AND r.region = %(region)s AND r.product = %(product)s
          AND r.window_start = %(ws)s AND r.window_end = %(we)s
        """,
        {"region": product.region.name, "product": product.mode, "ws": product.window_start, "we": product.window_end},
    )
    if not events:
        return
    cur.execute(
        """
        CREATE TEMP TABLE banet_stage_event (
            label integer, first_burn_date date, last_burn_date date, area_km2 double precision,
            n_cells integer, mean_confidence real, geojson text
        ) ON COMMIT DROP
        """
    )
    buf = io.StringIO()
    for e in events:
        buf.write(f"{e.label}\t{e.first_burn_date}\t{e.last_burn_date}\t{e.area_km2!r}\t{e.n_cells}\t{e.mean_confidence!r}\t{e.geojson}\n")
    buf.seek(0)
    cur.copy_expert("COPY banet_stage_event FROM STDIN", buf)
    cur.execute(
        """
        INSERT INTO banet.fire_event (run_id, region, product, geom, first_burn_date, last_burn_date, area_km2, n_cells, mean_confidence)
        SELECT %(run_id)s, %(region)s, %(product)s, ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(geojson), 4326)),
               first_burn_date, last_burn_date, area_km2, n_cells, mean_confidence
        FROM banet_stage_event ORDER BY label
        """,
        {"run_id": run_id, "region": product.region.name, "product": product.mode},
    )


@dataclass
class DbWrite:
    """What :func:`write_product` did."""

    run_id: int
    n_burned_cells: int
    burned_area_km2: float
    n_deleted: int
    timings: dict[str, float]


def write_product(cur: Any, product: Product, events: Sequence[FireEvent], *, started_at: dt.datetime) -> DbWrite:
    """Region row, run row ('running'), cells and events of ``product``; the caller commits.

    Call :func:`finish_run` afterwards (still inside the transaction) to mark the run succeeded.
    """
    timings: dict[str, float] = {}
    t = time.perf_counter()
    lock_scope(cur, product)
    ensure_region(cur, product.region)
    run_id = upsert_run(cur, product, started_at=started_at)
    timings["db_run"] = time.perf_counter() - t

    t = time.perf_counter()
    cells = cell_rows(product)
    stage_cells(cur, cells)
    timings["db_copy"] = time.perf_counter() - t

    t = time.perf_counter()
    counts = apply_cells(cur, product, run_id)
    timings["db_upsert"] = time.perf_counter() - t

    t = time.perf_counter()
    replace_events(cur, product, run_id, events)
    timings["db_events"] = time.perf_counter() - t
    return DbWrite(
        run_id=run_id,
        n_burned_cells=cells.n,
        burned_area_km2=float(cells.area_km2.sum()),
        n_deleted=counts["deleted"],
        timings=timings,
    )
