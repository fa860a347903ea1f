"""``banet.cube_day``: one row per region-day the cube holds (the cube is the truth; this is its index).

The one writer of the table: ingestion (:func:`banet_ops.ingest.stages.record_day`),
``record_cube_day`` and ``cube sync`` (:mod:`banet_ops.cube.db`) all upsert through :func:`upsert`.
A row is only replaced by the record of a commit at least as recent, unless ``force`` (a sync
makes the table equal to the cube).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

_UPSERT = sa.text(
    """
    INSERT INTO banet.cube_day (region, day, snapshot_id, granules, valid_fraction, status, committed_at)
    VALUES (:region, :day, :snapshot_id, :granules, :valid_fraction, :status, COALESCE(:committed_at, now()))
    ON CONFLICT (region, day) DO UPDATE SET
        snapshot_id = EXCLUDED.snapshot_id, granules = EXCLUDED.granules, valid_fraction = EXCLUDED.valid_fraction,
        status = EXCLUDED.status, committed_at = EXCLUDED.committed_at
    WHERE :force OR banet.cube_day.committed_at <= EXCLUDED.committed_at
    """
)


def row(
    region: str, day: dt.date, snapshot_id: str, granules: Sequence[str], valid_fraction: float, status: str, committed_at: dt.datetime | None
) -> dict[str, Any]:
    """The parameters of one row (the valid fraction clipped to [0, 1]; no commit time: now)."""
    return {
        "region": region, "day": day, "snapshot_id": snapshot_id, "granules": list(granules),
        "valid_fraction": float(min(1.0, max(0.0, valid_fraction))), "status": status, "committed_at": committed_at,
    }  # fmt: skip


def upsert(conn: Connection, rows: Sequence[dict[str, Any]], *, force: bool = False) -> None:
    """Insert or update rows made by :func:`row` in the caller's transaction."""
    if rows:
        conn.execute(_UPSERT, [{**r, "force": force} for r in rows])


def snapshot_of(conn: Connection, region: str, day: dt.date) -> str | None:
    """The snapshot the row of ``region``/``day`` names (None: no row)."""
    found = conn.execute(sa.text("SELECT snapshot_id FROM banet.cube_day WHERE region = :r AND day = :d"), {"r": region, "d": day}).first()
    return None if found is None else str(found[0])


def existing(conn: Connection, region: str) -> dict[dt.date, Any]:
    """The rows of ``region`` by day (locked for update until the transaction ends)."""
    rows = conn.execute(sa.text("SELECT day, snapshot_id, granules, committed_at FROM banet.cube_day WHERE region = :r FOR UPDATE"), {"r": region})
    return {r.day: r for r in rows}


def delete_other_days(conn: Connection, region: str, days: Sequence[dt.date]) -> int:
    """Delete the rows of ``region`` whose day is not in ``days``; how many."""
    result = conn.execute(sa.text("DELETE FROM banet.cube_day WHERE region = :r AND NOT (day = ANY(:days))"), {"r": region, "days": list(days)})
    return int(result.rowcount or 0)


def day_span(conn: Connection, region: str) -> tuple[int, dt.date | None, dt.date | None]:
    """How many days of ``region`` the cube holds, and the first and last."""
    row = conn.execute(sa.text("SELECT count(*), min(day), max(day) FROM banet.cube_day WHERE region = :r"), {"r": region}).one()
    return int(row[0]), row[1], row[2]
