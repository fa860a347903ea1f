"""The ``banet.burned_cell`` table: its yearly partitions, the scope's rows out and the cells in, by binary ``COPY``.

Functions take a psycopg cursor inside the publish transaction; the streams are built and
parsed by :mod:`banet_ops.publish.cells` (numpy), the plan lives in :mod:`banet_ops.publish.postgis`.
A scope is the (region, product) rows whose burn date lies in [first, last].
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from psycopg import Cursor
from sqlalchemy.engine import Connection

from banet_ops.db.copy import copy_in, copy_out
from banet_ops.errors import DatabaseError, SchemaError

CELL_COLUMNS = '(region, product, burn_date, "row", col, geom, confidence, run_id, area_km2)'
CELL_COLUMNS_EVENT = '(region, product, burn_date, "row", col, geom, confidence, run_id, area_km2, event_id)'
_IN_SCOPE = "b.region = %(region)s AND b.product = %(product)s AND b.burn_date BETWEEN %(first)s AND %(last)s"


def scope_copy(cur: Cursor[Any], region: str, product: str, first: dt.date, last: dt.date) -> bytearray:
    """The scope's rows as a binary COPY stream of (burn_date, row, col, confidence, run_id, area_km2, event_id or 0)."""
    return copy_out(
        cur,
        """
        COPY (SELECT burn_date, "row", col, confidence, run_id, area_km2, coalesce(event_id, 0) FROM banet.burned_cell
              WHERE region = %s AND product = %s AND burn_date BETWEEN %s AND %s) TO STDOUT WITH (FORMAT binary)
        """,
        (region, product, first, last),
    )


def ensure_partitions(cur: Cursor[Any], first: dt.date, last: dt.date) -> None:
    """Create the yearly partitions [first, last] needs (``banet.ensure_burned_cell_partitions``)."""
    cur.execute("SELECT banet.ensure_burned_cell_partitions(%s, %s)", (first, last))


def partition(cur: Cursor[Any], year: int) -> str:
    """The yearly partition of ``banet.burned_cell`` for ``year`` (made by :func:`ensure_partitions`)."""
    name = f"banet_internal.burned_cell_y{year:04d}"
    cur.execute("SELECT to_regclass(%s)", (name,))
    row = cur.fetchone()
    if row is None or row[0] is None:
        raise SchemaError(f"expected the partition {name} of banet.burned_cell, found none", hint="run `banet-ops db upgrade`")
    return name


def planner_settings(cur: Cursor[Any]) -> tuple[str, str]:
    """The transaction's (work_mem, enable_nestloop), to restore after the set-based statements."""
    cur.execute("SELECT current_setting('work_mem'), current_setting('enable_nestloop')")
    row = cur.fetchone()
    if row is None:
        raise DatabaseError("reading the planner settings: expected one row, found none")
    return str(row[0]), str(row[1])


def set_planner(cur: Cursor[Any], work_mem: str, nestloop: str) -> None:
    """Set work_mem and enable_nestloop until the transaction ends."""
    cur.execute("SELECT set_config('work_mem', %s, true), set_config('enable_nestloop', %s, true)", (work_mem, nestloop))


def stage(cur: Cursor[Any], table: str, data: bytes | bytearray) -> None:
    """A temporary table of (burn_date, row, col, confidence, area_km2, event_id) filled from a binary COPY stream."""
    cur.execute(
        f"""
        CREATE TEMP TABLE {table} (burn_date date NOT NULL, "row" integer NOT NULL, col integer NOT NULL,
                                   confidence real NOT NULL, area_km2 double precision NOT NULL, event_id bigint NOT NULL) ON COMMIT DROP
        """
    )
    copy_in(cur, f"COPY {table} FROM STDIN WITH (FORMAT binary)", data)
    cur.execute(f"ANALYZE {table}")


def delete_staged(cur: Cursor[Any], table: str, region: str, product: str, first: dt.date, last: dt.date) -> int:
    """Delete the scope's rows whose keys are in the staged ``table``; rows deleted."""
    cur.execute(
        f'DELETE FROM banet.burned_cell b USING {table} g WHERE {_IN_SCOPE} AND b.burn_date = g.burn_date AND b."row" = g."row" AND b.col = g.col',
        {"region": region, "product": product, "first": first, "last": last},
    )
    return cur.rowcount


def update_staged(cur: Cursor[Any], table: str, region: str, product: str, window: tuple[dt.date, dt.date], run_id: int, *, events: bool) -> int:
    """Update confidence, area, run (and event, with ``events``) of the scope's rows staged in ``table``; rows updated."""
    cur.execute(
        f"""
        UPDATE banet.burned_cell b SET confidence = s.confidence, run_id = %(run_id)s, area_km2 = s.area_km2,
               event_id = {"NULLIF(s.event_id, 0)" if events else "b.event_id"}
        FROM {table} s
        WHERE {_IN_SCOPE} AND b.burn_date = s.burn_date AND b."row" = s."row" AND b.col = s.col
        """,
        {"region": region, "product": product, "first": window[0], "last": window[1], "run_id": run_id},
    )
    return cur.rowcount


def copy_cells(cur: Cursor[Any], partition_name: str, data: bytes | bytearray, *, events: bool) -> None:
    """Binary COPY of full rows (:data:`CELL_COLUMNS`, or :data:`CELL_COLUMNS_EVENT` with ``events``) into a partition."""
    copy_in(cur, f"COPY {partition_name} {CELL_COLUMNS_EVENT if events else CELL_COLUMNS} FROM STDIN WITH (FORMAT binary)", data)


def summarize(cur: Cursor[Any], first: dt.date, last: dt.date) -> None:
    """Summarise the new BRIN block ranges of the partitions of [first, last], waiting at most 10 s for a lock."""
    cur.execute("SET LOCAL lock_timeout = '10s'")  # it waits for VACUUM or another summary of the partition
    cur.execute("SELECT banet.summarize_burned_cell(%s, %s)", (first, last))


def burn_date_range(cur: Cursor[Any], region: str, product: str) -> tuple[dt.date | None, dt.date | None]:
    """The first and last burn date of the (region, product) cells (None, None without cells)."""
    cur.execute("SELECT min(burn_date), max(burn_date) FROM banet.burned_cell WHERE region = %s AND product = %s", (region, product))
    row = cur.fetchone()
    return (None, None) if row is None else (row[0], row[1])


def burned_area_per_day(conn: Connection, region: str, product: str) -> list[tuple[dt.date, int, float]]:
    """(burn date, cells, km²) of the (region, product) cells, by burn date."""
    rows = conn.execute(
        sa.text("SELECT burn_date, count(*), sum(area_km2) FROM banet.burned_cell WHERE region = :r AND product = :p GROUP BY burn_date ORDER BY burn_date"),
        {"r": region, "p": product},
    ).all()
    return [(r[0], int(r[1]), float(r[2])) for r in rows]
