"""The foreign keys of banet.burned_cell, enforced by statement triggers (migration 0005), both sides."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors as pgerr

from banet_ops.db.engine import get_engine

CELL_SQL = (
    'INSERT INTO {table} (region, product, burn_date, "row", col, geom, confidence, run_id, area_km2) '
    "VALUES (%s, 'nrt', %s, %s, 1, ST_MakeEnvelope(0, 0, 0.01, 0.01, 4326), 0.5, %s, 1.0)"
)


def _connection(db_url: str) -> Iterator[Any]:
    raw = get_engine(db_url).raw_connection()
    try:
        yield raw
    finally:
        raw.rollback()
        raw.close()


@pytest.fixture
def conn(db_url: str) -> Iterator[Any]:
    yield from _connection(db_url)


@pytest.fixture
def other(db_url: str) -> Iterator[Any]:
    """A second connection, for the concurrent cases."""
    yield from _connection(db_url)


def _region(cur: Any) -> str:
    name = f"K{uuid.uuid4().hex[:10]}"
    cur.execute(
        "INSERT INTO banet.region (name, bbox, pixel_size, n_rows, n_cols, definition) VALUES (%s, ST_MakeEnvelope(0, 0, 1, 1, 4326), 0.01, 100, 100, '{}')",
        (name,),
    )
    return name


def _run(cur: Any, region: str, snapshot: str = "s") -> int:
    cur.execute(
        "INSERT INTO banet.run (region, product, target_date, window_start, window_end, model_key, cube_snapshot) "
        "VALUES (%s, 'nrt', '2023-08-31', '2023-06-29', '2023-08-31', 'k', %s) RETURNING id",
        (region, snapshot),
    )
    return int(cur.fetchone()[0])


def _cells(cur: Any, region: str, run: int, n: int = 3, day: dt.date = dt.date(2023, 8, 5), table: str = "banet.burned_cell") -> None:
    for r in range(n):
        cur.execute(CELL_SQL.format(table=table), (region, day, r, run))


def _count(cur: Any, sql: str, *params: Any) -> int:
    cur.execute(sql, params)
    return int(cur.fetchone()[0])


def _fails(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> psycopg.Error:
    cur = conn.cursor()
    cur.execute("SAVEPOINT t")
    try:
        cur.execute(sql, params)
    except psycopg.Error as exc:
        cur.execute("ROLLBACK TO SAVEPOINT t")
        return exc
    raise AssertionError(f"accepted: {sql} {params}")


@pytest.mark.parametrize("table", ["banet.burned_cell", "banet_internal.burned_cell_y2023", "banet_internal.burned_cell_default"])
def test_rows_need_their_region_and_run(conn: Any, table: str) -> None:
    cur = conn.cursor()
    region = _region(cur)
    run = _run(cur, region)
    day = dt.date(2023, 8, 5) if not table.endswith("default") else dt.date(1990, 1, 1)  # no partition for 1990
    _cells(cur, region, run, table=table, day=day)
    bad_run = _fails(conn, CELL_SQL.format(table=table), (region, day, 50, run + 10_000))
    assert isinstance(bad_run, pgerr.ForeignKeyViolation)
    assert bad_run.diag.constraint_name == "burned_cell_run_id_fkey" and 'is not present in table "run"' in str(bad_run)
    bad_region = _fails(conn, CELL_SQL.format(table=table), ("NOSUCHREGION", day, 50, run))
    assert isinstance(bad_region, pgerr.ForeignKeyViolation) and bad_region.diag.constraint_name == "burned_cell_region_fkey"
    # one bad row among good ones fails the whole statement
    multi = f"{CELL_SQL.format(table=table)}, (%s, 'nrt', %s, 61, 1, ST_MakeEnvelope(0, 0, 0.01, 0.01, 4326), 0.5, %s, 1.0)"
    assert isinstance(_fails(conn, multi, (region, day, 60, run, region, day, -1)), pgerr.ForeignKeyViolation)
    bad_update = _fails(conn, f"UPDATE {table} SET run_id = run_id + 10000 WHERE region = %s", (region,))
    assert isinstance(bad_update, pgerr.ForeignKeyViolation)
    assert _count(cur, "SELECT count(*) FROM banet.burned_cell WHERE region = %s", region) == 3


def test_new_partitions_get_the_key_triggers(conn: Any) -> None:
    cur = conn.cursor()
    region = _region(cur)
    run = _run(cur, region)
    cur.execute("SELECT banet.ensure_burned_cell_partitions('2071-01-01', '2071-12-31')")
    cur.execute("SELECT reloptions FROM pg_class WHERE oid = 'banet_internal.burned_cell_y2071'::regclass")
    assert cur.fetchone()[0] == ["fillfactor=50"]
    err = _fails(conn, CELL_SQL.format(table="banet_internal.burned_cell_y2071"), (region, dt.date(2071, 5, 1), 1, run + 10_000))
    assert isinstance(err, pgerr.ForeignKeyViolation)
    _cells(cur, region, run, table="banet_internal.burned_cell_y2071", day=dt.date(2071, 5, 1))


def test_deleting_a_run_cascades_to_its_cells_only(conn: Any) -> None:
    cur = conn.cursor()
    region = _region(cur)
    old, new = _run(cur, region, "s1"), _run(cur, region, "s2")
    _cells(cur, region, old, n=2, day=dt.date(2023, 8, 5))
    _cells(cur, region, old, n=2, day=dt.date(2024, 1, 5))  # another partition
    _cells(cur, region, new, n=4, day=dt.date(2023, 8, 6))
    cur.execute("DELETE FROM banet.run WHERE id = %s", (old,))
    cur.execute("SELECT run_id, count(*) FROM banet.burned_cell WHERE region = %s GROUP BY run_id", (region,))
    assert cur.fetchall() == [(new, 4)]


def test_referenced_regions_and_run_ids_stay(conn: Any) -> None:
    cur = conn.cursor()
    region = _region(cur)
    run = _run(cur, region)
    _cells(cur, region, run)
    # deleting the region is refused while cells reference it (its run row refuses too: delete that first)
    cur.execute("ALTER TABLE banet.run DISABLE TRIGGER burned_cell_run_delete")  # keep the cells, drop the run
    cur.execute("DELETE FROM banet.run WHERE id = %s", (run,))
    cur.execute("ALTER TABLE banet.run ENABLE TRIGGER burned_cell_run_delete")
    err = _fails(conn, "DELETE FROM banet.region WHERE name = %s", (region,))
    assert isinstance(err, pgerr.ForeignKeyViolation) and err.diag.constraint_name == "burned_cell_region_fkey"


def test_changing_a_referenced_run_id_is_refused_and_renames_cascade(conn: Any) -> None:
    cur = conn.cursor()
    region = _region(cur)
    run = _run(cur, region)
    _cells(cur, region, run)
    err = _fails(conn, "UPDATE banet.run SET id = id + 100000 WHERE id = %s", (run,))
    assert isinstance(err, pgerr.ForeignKeyViolation) and err.diag.constraint_name == "burned_cell_run_id_fkey"
    cur.execute("UPDATE banet.run SET status = 'failed' WHERE id = %s", (run,))  # other columns: fine
    renamed = region + "R"
    cur.execute("UPDATE banet.region SET name = %s WHERE name = %s", (renamed, region))
    assert _count(cur, "SELECT count(*) FROM banet.burned_cell WHERE region = %s AND run_id = %s", renamed, run) == 3
    assert _count(cur, "SELECT count(*) FROM banet.burned_cell WHERE region = %s", region) == 0


def test_truncating_runs_or_regions_needs_the_cells_too(conn: Any) -> None:
    cur = conn.cursor()
    region = _region(cur)
    _cells(cur, region, _run(cur, region))
    cur.execute("SET LOCAL lock_timeout = '5s'")
    err = _fails(conn, "TRUNCATE banet.run, banet.fire_event, banet.fire_event_version")
    assert 'cannot truncate table "run"' in str(err)
    err = _fails(conn, "TRUNCATE banet.region, banet.run, banet.fire_event, banet.fire_event_version, banet.cube_day")
    assert "cannot truncate table" in str(err)
    cur.execute("SAVEPOINT t")
    cur.execute("TRUNCATE banet.region, banet.run, banet.fire_event, banet.fire_event_version, banet.cube_day, banet.burned_cell")
    cur.execute("ROLLBACK TO SAVEPOINT t")  # the fixture rolls back the rest


def _blocked(target: Any, *args: Any) -> tuple[threading.Thread, list[BaseException | None]]:
    out: list[BaseException | None] = []

    def work() -> None:
        try:
            target(*args)
            out.append(None)
        except BaseException as exc:  # reported to the test thread
            out.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    time.sleep(1.0)
    return thread, out


def test_concurrent_run_delete_waits_for_the_cells_and_cascades(conn: Any, other: Any) -> None:
    writer, deleter = conn, other
    cur = writer.cursor()
    region = _region(cur)
    run = _run(cur, region)
    writer.commit()
    _cells(cur, region, run)  # locks the run row FOR KEY SHARE until commit

    def delete() -> None:
        c = deleter.cursor()
        c.execute("SET lock_timeout = '20s'")
        c.execute("DELETE FROM banet.run WHERE id = %s", (run,))
        deleter.commit()

    thread, out = _blocked(delete)
    assert thread.is_alive()  # waiting for the writer
    writer.commit()
    thread.join(30)
    assert out == [None]
    assert _count(cur, "SELECT count(*) FROM banet.burned_cell WHERE region = %s", region) == 0  # cascaded, no orphans
    writer.commit()


def test_cells_for_a_run_deleted_concurrently_are_refused(conn: Any, other: Any) -> None:
    writer, deleter = conn, other
    cur = writer.cursor()
    region = _region(cur)
    run = _run(cur, region)
    writer.commit()
    deleter.cursor().execute("DELETE FROM banet.run WHERE id = %s", (run,))  # not committed yet

    def insert() -> None:
        c = writer.cursor()
        c.execute("SET lock_timeout = '20s'")
        _cells(c, region, run)

    thread, out = _blocked(insert)
    assert thread.is_alive()  # waiting for the deleter
    deleter.commit()
    thread.join(30)
    assert len(out) == 1 and isinstance(out[0], pgerr.ForeignKeyViolation)
