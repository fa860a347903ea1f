"""The ``banet.run`` table (one row per published product) and the publishers' lock rows.

Functions take a psycopg cursor: the caller owns the transaction (the publish, or a recovery).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from psycopg import Cursor
from sqlalchemy.engine import Connection

from banet_ops.product import Product


def model_key(product: Product) -> str:
    """sha256s of the ensemble, sorted, joined by ``+``."""
    return "+".join(sorted(m.sha256 for m in product.models))


def set_lock_timeout(cur: Cursor[Any], timeout: str) -> None:
    """Bound every lock wait of the current transaction (then ``LockNotAvailable``)."""
    cur.execute("SELECT set_config('lock_timeout', %s, true)", (timeout,))


def lock_publish_scope(cur: Cursor[Any], scope: str, *, wait: bool = True) -> bool:
    """Lock the row of ``scope`` until the transaction ends; without ``wait``, False when another holds it.

    A row of ``banet.publish_lock`` that only writers may lock (migration 0008), not an advisory
    lock any login could hold.
    """
    cur.execute("INSERT INTO banet.publish_lock (scope) VALUES (%s) ON CONFLICT DO NOTHING", (scope,))
    cur.execute(f"SELECT scope FROM banet.publish_lock WHERE scope = %s FOR UPDATE{'' if wait else ' SKIP LOCKED'}", (scope,))
    return cur.fetchone() is not None


def upsert_run(cur: Cursor[Any], product: Product, *, started_at: dt.datetime) -> int:
    """Insert (or take over) the run row of this product's unique key, as 'running'; its id."""
    cur.execute(
        """
        INSERT INTO banet.run (region, product, target_date, window_start, window_end, model_key, model_ids,
                               cube_snapshot, status, started_at, finished_at, tiling, observed_days)
        VALUES (%(region)s, %(product)s, %(target)s, %(ws)s, %(we)s, %(key)s, %(ids)s, %(snap)s, 'running', %(started)s, NULL,
                %(tiling)s, %(observed)s)
        ON CONFLICT (region, product, target_date, model_key, cube_snapshot) DO UPDATE SET
            window_start = EXCLUDED.window_start, window_end = EXCLUDED.window_end, model_ids = EXCLUDED.model_ids,
            tiling = EXCLUDED.tiling, observed_days = EXCLUDED.observed_days,
            status = 'running', started_at = EXCLUDED.started_at, finished_at = NULL
        RETURNING id
        """,
        {
            "region": product.region.name, "product": product.mode, "target": product.target_date,
            "ws": product.window_start, "we": product.window_end, "key": model_key(product),
            "ids": sorted(m.model_id for m in product.models if m.model_id), "snap": product.cube_snapshot,
            "started": started_at, "tiling": product.tiling or None, "observed": product.observed_days,
        },
    )  # fmt: skip
    return _one(cur)


def finish_run(cur: Cursor[Any], run_id: int, *, timings: Mapping[str, float], counts: Mapping[str, Any], outputs: Mapping[str, str], version: str) -> None:
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


def record_publish_token(cur: Cursor[Any], run_id: int, token: str) -> None:
    """Tie the file transaction ``token`` to the run: committed with it, it says the files are current."""
    cur.execute("UPDATE banet.run SET publish_token = %s WHERE id = %s", (token, run_id))


def token_committed(cur: Cursor[Any], token: str) -> bool:
    """Whether a committed run carries the file transaction ``token``."""
    cur.execute("SELECT 1 FROM banet.run WHERE publish_token = %s", (token,))
    return cur.fetchone() is not None


def published_scopes(cur: Cursor[Any], region: str | None = None) -> list[tuple[str, str]]:
    """(region, product) pairs with a succeeded run (optionally of one region), sorted."""
    cur.execute(
        "SELECT DISTINCT region, product FROM banet.run WHERE status = 'succeeded' AND (%(r)s::text IS NULL OR region = %(r)s) ORDER BY 1, 2",
        {"r": region},
    )
    return [(str(r), str(p)) for r, p in cur.fetchall()]


def latest_succeeded_run(cur: Cursor[Any], region: str, product: str) -> int:
    """The id of the latest succeeded run of (region, product)."""
    cur.execute(
        "SELECT id FROM banet.run WHERE region = %s AND product = %s AND status = 'succeeded' ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT 1",
        (region, product),
    )
    return _one(cur)


def recorded_snapshots(conn: Connection, region: str) -> set[str]:
    """Cube snapshots that recorded runs of ``region`` read (``banet.run.cube_snapshot``)."""
    rows = conn.execute(sa.text("SELECT DISTINCT cube_snapshot FROM banet.run WHERE region = :r"), {"r": region}).scalars()
    return {str(s) for s in rows if s}


def succeeded_summary(conn: Connection, region: str, product: str) -> tuple[int, dt.date | None]:
    """How many runs of (region, product) succeeded, and the latest target date."""
    row = conn.execute(
        sa.text("SELECT count(*), max(target_date) FROM banet.run WHERE region = :r AND product = :p AND status = 'succeeded'"),
        {"r": region, "p": product},
    ).one()
    return int(row[0]), row[1]


def latest_outputs(conn: Connection, region: str, product: str) -> dict[str, str]:
    """The output files of the latest succeeded run of (region, product) (empty without one)."""
    outputs = conn.execute(
        sa.text("SELECT outputs FROM banet.run WHERE region = :r AND product = :p AND status = 'succeeded' ORDER BY target_date DESC, id DESC LIMIT 1"),
        {"r": region, "p": product},
    ).scalar()
    return {str(k): str(v) for k, v in dict(outputs or {}).items()}


def _one(cur: Cursor[Any]) -> int:
    row = cur.fetchone()
    if row is None:
        from banet_ops.errors import DatabaseError

        raise DatabaseError("expected a row of banet.run, found none")
    return int(row[0])
