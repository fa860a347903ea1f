"""The fire-event tables: ``banet.fire_event``, its history ``banet.fire_event_version``, and the cells' ``event_id``.

Functions take a psycopg cursor inside the publish (or rebuild) transaction; the events are
computed by :mod:`banet_ops.publish.event_db`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from psycopg import Cursor
from sqlalchemy.engine import Connection, Row

from banet_ops.db.copy import copy_in, copy_out
from banet_ops.errors import DatabaseUnavailableError

_EVENT_COLUMNS = "first_burn_date, last_burn_date, area_km2, n_cells, mean_confidence, daily_area_km2, geom"
_STAGED_COLUMNS = ", ".join(f"s.{c.strip()}" for c in _EVENT_COLUMNS.split(","))


def events_near(cur: Cursor[Any], region: str, product: str, lo: dt.date, hi: dt.date) -> tuple[dt.date | None, dt.date | None, list[int]]:
    """The burn-date span and ids of the stored events that touch [lo, hi]."""
    cur.execute(
        """
        SELECT min(first_burn_date), max(last_burn_date), coalesce(array_agg(id ORDER BY id), '{}')
        FROM banet.fire_event
        WHERE region = %s AND product = %s AND last_burn_date >= %s AND first_burn_date <= %s
        """,
        (region, product, lo, hi),
    )
    row = cur.fetchone()
    if row is None:
        return None, None, []
    return row[0], row[1], [int(i) for i in row[2]]


def cells_copy(cur: Cursor[Any], region: str, product: str, lo: dt.date, hi: dt.date, skip: tuple[dt.date, dt.date]) -> bytearray:
    """The stored cells of [lo, hi] less those of ``skip``, as a binary COPY stream of
    (burn_date, row, col, confidence, area_km2, event_id or 0)."""
    return copy_out(
        cur,
        """
        COPY (SELECT burn_date, "row", col, confidence, area_km2, coalesce(event_id, 0) FROM banet.burned_cell
              WHERE region = %s AND product = %s AND burn_date BETWEEN %s AND %s AND NOT (burn_date BETWEEN %s AND %s))
        TO STDOUT WITH (FORMAT binary)
        """,
        (region, product, lo, hi, skip[0], skip[1]),
    )


def next_event_ids(cur: Cursor[Any], n: int) -> list[int]:
    """``n`` fresh ids from the event sequence."""
    cur.execute("SELECT nextval('banet.fire_event_id_seq') FROM generate_series(1, %s)", (n,))
    return [int(r[0]) for r in cur.fetchall()]


def stage_events(cur: Cursor[Any], rows: str) -> None:
    """The temporary table ``banet_stage_event`` filled from text COPY rows
    (id, first and last burn date, area, cells, mean confidence, daily areas as JSON, GeoJSON polygon)."""
    cur.execute(
        """
        CREATE TEMP TABLE banet_stage_event (
            id bigint PRIMARY KEY, first_burn_date date, last_burn_date date, area_km2 double precision, n_cells integer,
            mean_confidence real, daily_area_km2 jsonb, geom geometry(MultiPolygon, 4326)
        ) ON COMMIT DROP
        """
    )
    cur.execute("CREATE TEMP TABLE banet_stage_event_raw (LIKE banet_stage_event) ON COMMIT DROP")
    cur.execute("ALTER TABLE banet_stage_event_raw ALTER COLUMN geom TYPE text")
    copy_in(cur, "COPY banet_stage_event_raw FROM STDIN", rows)
    cur.execute(
        "INSERT INTO banet_stage_event SELECT id, first_burn_date, last_burn_date, area_km2, n_cells, mean_confidence, daily_area_km2, "
        "ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(geom), 4326)) FROM banet_stage_event_raw"
    )


_VERSION_CONFLICT = """
    ON CONFLICT (event_id, run_id) DO UPDATE SET
        change = CASE WHEN banet.fire_event_version.change = 'created' AND EXCLUDED.change = 'updated' THEN 'created' ELSE EXCLUDED.change END,
        merged_into = EXCLUDED.merged_into, geom = EXCLUDED.geom, first_burn_date = EXCLUDED.first_burn_date,
        last_burn_date = EXCLUDED.last_burn_date, area_km2 = EXCLUDED.area_km2, n_cells = EXCLUDED.n_cells,
        mean_confidence = EXCLUDED.mean_confidence, daily_area_km2 = EXCLUDED.daily_area_km2, recorded_at = now()
"""


def write_staged_events(cur: Cursor[Any], p: dict[str, Any], retired: dict[int, int]) -> dict[str, int]:
    """Rows of banet.fire_event and their versions from the staged events (``p``: region, product, run); counts by change.

    ``retired``: stored event id -> the id it merged into (0: gone).
    """
    cur.execute("CREATE TEMP TABLE banet_retired_event (id bigint PRIMARY KEY, merged_into bigint) ON COMMIT DROP")
    if retired:
        cur.execute("INSERT INTO banet_retired_event SELECT * FROM unnest(%s::bigint[], %s::bigint[])",
                    (list(retired), [v or None for v in retired.values()]))  # fmt: skip
    cur.execute(
        f"""
        WITH gone AS (DELETE FROM banet.fire_event e USING banet_retired_event r WHERE e.id = r.id
                      RETURNING e.*, r.merged_into)
        INSERT INTO banet.fire_event_version (event_id, run_id, change, merged_into, region, product, {_EVENT_COLUMNS})
        SELECT id, %(run)s, CASE WHEN merged_into IS NULL THEN 'gone' ELSE 'merged' END, merged_into, region, product, {_EVENT_COLUMNS}
        FROM gone {_VERSION_CONFLICT}
        """,
        p,
    )
    n_retired = cur.rowcount
    cur.execute(
        f"""
        WITH upd AS (
            UPDATE banet.fire_event e SET run_id = %(run)s, first_burn_date = s.first_burn_date, last_burn_date = s.last_burn_date,
                   area_km2 = s.area_km2, n_cells = s.n_cells, mean_confidence = s.mean_confidence,
                   daily_area_km2 = s.daily_area_km2, geom = s.geom, updated_at = now()
            FROM banet_stage_event s
            WHERE e.id = s.id AND ((e.first_burn_date, e.last_burn_date, e.area_km2, e.n_cells, e.mean_confidence, e.daily_area_km2)
                                   IS DISTINCT FROM (s.first_burn_date, s.last_burn_date, s.area_km2, s.n_cells, s.mean_confidence, s.daily_area_km2)
                                   OR NOT ST_OrderingEquals(e.geom, s.geom))
            RETURNING e.id
        )
        INSERT INTO banet.fire_event_version (event_id, run_id, change, region, product, {_EVENT_COLUMNS})
        SELECT s.id, %(run)s, 'updated', %(region)s, %(product)s, {_STAGED_COLUMNS}
        FROM banet_stage_event s JOIN upd USING (id) {_VERSION_CONFLICT}
        """,
        p,
    )
    n_updated = cur.rowcount
    cur.execute(
        f"""
        WITH ins AS (
            INSERT INTO banet.fire_event (id, run_id, first_run_id, region, product, {_EVENT_COLUMNS})
            SELECT s.id, %(run)s, %(run)s, %(region)s, %(product)s, {_STAGED_COLUMNS}
            FROM banet_stage_event s WHERE NOT EXISTS (SELECT 1 FROM banet.fire_event e WHERE e.id = s.id)
            ORDER BY s.id
            RETURNING id
        )
        INSERT INTO banet.fire_event_version (event_id, run_id, change, region, product, {_EVENT_COLUMNS})
        SELECT s.id, %(run)s, 'created', %(region)s, %(product)s, {_STAGED_COLUMNS}
        FROM banet_stage_event s JOIN ins USING (id) {_VERSION_CONFLICT}
        """,
        p,
    )
    return {"created": cur.rowcount, "updated": n_updated, "retired": n_retired}


def set_cell_events(cur: Cursor[Any], p: dict[str, Any], rows: str, expected: int) -> None:
    """Set ``event_id`` of the cells in text COPY ``rows`` (burn_date, row, col, event_id) within [p lo, p hi]."""
    cur.execute('CREATE TEMP TABLE banet_cell_event (burn_date date, "row" integer, col integer, event_id bigint) ON COMMIT DROP')
    copy_in(cur, "COPY banet_cell_event FROM STDIN", rows)
    cur.execute(
        """
        UPDATE banet.burned_cell b SET event_id = s.event_id FROM banet_cell_event s
        WHERE b.region = %(region)s AND b.product = %(product)s AND b.burn_date BETWEEN %(lo)s AND %(hi)s
          AND b.burn_date = s.burn_date AND b."row" = s."row" AND b.col = s.col
        """,
        p,
    )
    if cur.rowcount != expected:
        raise DatabaseUnavailableError(
            f"setting the events of {p['region']} {p['product']} cells: expected {expected} rows, found {cur.rowcount}: "
            "the cells were changed concurrently by another writer",
            hint="retry the task",
        )


def largest_events(conn: Connection, region: str, product: str, limit: int = 5) -> list[Row[Any]]:
    """The ``limit`` largest fire events of (region, product): id, first_burn_date, last_burn_date, area_km2, n_cells, mean_confidence."""
    return list(
        conn.execute(
            sa.text(
                "SELECT id, first_burn_date, last_burn_date, area_km2, n_cells, mean_confidence FROM banet.fire_event "
                "WHERE region = :r AND product = :p ORDER BY area_km2 DESC LIMIT :n"
            ),
            {"r": region, "p": product, "n": limit},
        ).all()
    )
