"""The banet schema: migrations, the contract's tables and keys, constraints, partitions, roles, views."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError, ProgrammingError

from banet_ops.db.engine import require_schema
from banet_ops.db.migrate import current_version, migration_ids, pending_ids, upgrade
from banet_ops.errors import SchemaError

from .seed import PT, insert_cell, insert_event, insert_region, insert_run, seed

CONTRACT_COLUMNS = {
    "region": {"id", "name", "bbox", "pixel_size", "n_rows", "n_cols", "definition"},
    "granule": {"id", "file_name", "product", "day", "size_bytes", "checksum", "source_url", "status", "message", "updated_at"},
    "cube_day": {"region", "day", "snapshot_id", "granules", "valid_fraction", "status", "committed_at"},
    "model": {"id", "name", "sha256", "weights_uri", "status", "config", "data_window", "metrics", "created_at", "promoted_at", "promotion_reason"},
    "run": {"id", "region", "product", "target_date", "window_start", "window_end", "model_key", "model_ids", "cube_snapshot", "status",
            "started_at", "finished_at", "timings", "n_burned_cells", "burned_area_km2", "n_events", "software_version", "outputs"},
    "burned_cell": {"region", "product", "burn_date", "row", "col", "geom", "confidence", "run_id", "area_km2", "event_id"},
    "fire_event": {"id", "run_id", "region", "product", "geom", "first_burn_date", "last_burn_date", "area_km2", "n_cells", "mean_confidence",
                   "duration_days", "daily_area_km2", "first_run_id", "updated_at"},
    "fire_event_version": {"id", "event_id", "run_id", "change", "merged_into", "region", "product", "geom", "first_burn_date", "last_burn_date",
                           "area_km2", "n_cells", "mean_confidence", "daily_area_km2", "recorded_at"},
}
PRIMARY_KEYS = {
    "region": ["id"],  # the integer key GIS clients use (0011); name is UNIQUE and what other tables reference
    "granule": ["id"],
    "cube_day": ["region", "day"],
    "model": ["id"],
    "run": ["id"],
    "burned_cell": ["region", "product", "burn_date", "row", "col"],
    "fire_event": ["id"],
    "fire_event_version": ["id"],
}
# burned_cell's keys (region -> region, run_id -> run) are enforced by statement-level triggers
# since migration 0005 (one set-based check per statement instead of one query per row).
FOREIGN_KEYS = {
    ("run", "region", "region"),
    ("cube_day", "region", "region"),
    ("fire_event", "run_id", "run"),
    ("fire_event", "region", "region"),
    ("fire_event_version", "run_id", "run"),
}


# --- migrations -------------------------------------------------------------------------------


def test_upgrade_twice_is_a_no_op(db_url: str) -> None:
    assert upgrade(db_url) == []
    assert upgrade(db_url) == []
    assert current_version(db_url) == migration_ids()[-1]
    assert pending_ids(db_url) == []


def test_fresh_database_lifecycle(make_database: Callable[[], str]) -> None:
    url = make_database()
    engine = sa.create_engine(url)
    with pytest.raises(SchemaError, match=r"found these tables missing: region, .*banet-ops db upgrade"):
        require_schema(engine)
    assert current_version(url) is None
    assert pending_ids(url) == migration_ids()

    assert upgrade(url) == migration_ids() == ["0001_base_schema", "0002_burned_cell_partitions", "0003_views", "0004_roles",
                                                   "0005_burned_cell_fast_publish", "0006_fire_event_anchor", "0007_run_tiling_window",
                                                   "0008_publish_locks_and_journal", "0009_fire_events_space_time", "0011_gis_layer_discovery",
                                                   "0013_model_architecture"]
    assert upgrade(url) == []
    require_schema(engine)

    # a migration recorded as not applied is pending again, and re-applying it is harmless
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM public._yoyo_migration WHERE migration_id = '0004_roles'"))
    with pytest.raises(SchemaError, match=r"1 pending migration\(s\): 0004_roles"):
        require_schema(engine)
    assert upgrade(url) == ["0004_roles"]
    require_schema(engine)
    engine.dispose()


def test_concurrent_upgrades_apply_each_migration_once(make_database: Callable[[], str]) -> None:
    url = make_database()
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(upgrade(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert sorted(m for r in results for m in r) == migration_ids()
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM public._yoyo_migration")).scalar_one() == len(migration_ids())
    engine.dispose()


# --- structure --------------------------------------------------------------------------------


def test_contract_columns(conn: sa.Connection) -> None:
    for table, expected in CONTRACT_COLUMNS.items():
        found = set(conn.execute(
            sa.text("SELECT column_name FROM information_schema.columns WHERE table_schema = 'banet' AND table_name = :t"), {"t": table}
        ).scalars())
        assert expected <= found, (table, expected - found)


def test_geometry_columns(conn: sa.Connection) -> None:
    rows = conn.execute(sa.text("SELECT f_table_name, f_geometry_column, type, srid FROM geometry_columns WHERE f_table_schema = 'banet'")).all()
    found = {(t, c): (typ, srid) for t, c, typ, srid in rows}
    assert found[("region", "bbox")] == ("POLYGON", 4326)
    assert found[("v_burned_cell", "geom")] == ("POLYGON", 4326)
    assert found[("fire_event", "geom")] == ("MULTIPOLYGON", 4326)
    # since 0011 the cells' table and its partitions hold a domain over geometry: layer discovery skips them
    assert ("burned_cell", "geom") not in found
    domain = conn.execute(sa.text(
        "SELECT format_type(t.typbasetype, t.typtypmod) FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "WHERE a.attrelid = 'banet.burned_cell'::regclass AND a.attname = 'geom' AND t.typtype = 'd'"
    )).scalar_one()  # fmt: skip
    assert domain == "geometry(Polygon,4326)"


def test_re_registering_a_region_uses_up_no_id(conn: sa.Connection) -> None:
    """Every publish re-registers its region (INSERT … ON CONFLICT): ids stay dense, far from the 2047 limit."""
    from banet_ops.regions import Region

    first = Region(name="IDA", bbox=(0, 0, 1, 1), pixel_size=0.01)
    insert_region(conn, first)
    for _ in range(5):
        insert_region(conn, first)
    insert_region(conn, Region(name="IDB", bbox=(1, 0, 2, 1), pixel_size=0.01))
    ids = dict(conn.execute(sa.text("SELECT name, id FROM banet.region WHERE name IN ('IDA', 'IDB')")).all())
    assert ids["IDB"] == ids["IDA"] + 1 == conn.execute(sa.text("SELECT max(id) FROM banet.region")).scalar_one()


def test_the_cell_polygon_domain_rewrites_no_row(conn: sa.Connection, base: int) -> None:
    """0011's type change on a table with rows: no new relfilenode (the claim of its header)."""
    insert_cell(conn, base, 1, 1, date(2023, 8, 5))
    conn.execute(sa.text("DROP VIEW banet.v_burned_cell"))
    conn.execute(sa.text("ALTER TABLE banet.burned_cell ALTER COLUMN geom TYPE geometry(Polygon, 4326)"))
    before = conn.execute(sa.text("SELECT pg_relation_filenode('banet_internal.burned_cell_y2023')")).scalar_one()
    conn.execute(sa.text("ALTER TABLE banet.burned_cell ALTER COLUMN geom TYPE banet.cell_polygon"))
    assert conn.execute(sa.text("SELECT pg_relation_filenode('banet_internal.burned_cell_y2023')")).scalar_one() == before


def test_primary_and_foreign_keys(conn: sa.Connection) -> None:
    for table, columns in PRIMARY_KEYS.items():
        found = conn.execute(
            sa.text(
                "SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_constraint c "
                "CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord) "
                "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
                "WHERE c.contype = 'p' AND c.conrelid = CAST(:t AS regclass)"
            ),
            {"t": f"banet.{table}"},
        ).scalar_one()
        assert found == columns, table
    fks = conn.execute(
        sa.text(
            "SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text FROM pg_constraint c "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
            "WHERE c.contype = 'f' AND c.connamespace = 'banet'::regnamespace AND c.conparentid = 0"
        )
    ).all()
    assert {(t.removeprefix("banet."), col, ref.removeprefix("banet.")) for t, col, ref in fks} == FOREIGN_KEYS


def test_indexes(conn: sa.Connection) -> None:
    rows = conn.execute(sa.text("SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'banet'")).all()
    defs = [(t, d.lower()) for t, d in rows]
    for table, column in (("region", "bbox"), ("fire_event", "geom")):
        assert any(t == table and "using gist" in d and f"({column})" in d for t, d in defs), table
    assert any(t == "burned_cell" and "using brin (geom)" in d for t, d in defs)  # BRIN since 0005 (benchmarks/README.md)
    assert any(t == "burned_cell" and "using brin (burn_date)" in d for t, d in defs)
    assert any(t == "cube_day" and "using brin (day)" in d for t, d in defs)
    assert any(t == "fire_event" and "first_burn_date" in d for t, d in defs)


def test_burned_cell_is_partitioned_by_year_with_a_default(conn: sa.Connection) -> None:
    strategy = conn.execute(sa.text("SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'banet.burned_cell'::regclass")).scalar_one()
    assert strategy == "r"
    parts = dict(conn.execute(sa.text(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'banet.burned_cell'::regclass AND c.relnamespace = 'banet_internal'::regnamespace"
    )).all())  # partitions live apart from the analyst's layers (0009)
    assert parts["burned_cell_default"] == "DEFAULT"
    assert parts["burned_cell_y2023"] == "FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')"


# --- constraints ------------------------------------------------------------------------------


def _violates(conn: sa.Connection, sql: str, params: dict[str, object] | None = None) -> str:
    savepoint = conn.begin_nested()
    try:
        conn.execute(sa.text(sql), params or {})
    except (IntegrityError, DBAPIError) as exc:
        savepoint.rollback()
        return str(exc.orig)
    savepoint.rollback()
    raise AssertionError(f"accepted: {sql}")


@pytest.fixture
def base(conn: sa.Connection) -> int:
    insert_region(conn)
    return insert_run(conn, date(2023, 8, 1))


CUBE_DAY = "INSERT INTO banet.cube_day (region, valid_fraction, status, day, snapshot_id) VALUES ({}, '2023-08-01', 's')"
CELL = ('INSERT INTO banet.burned_cell (region, product, burn_date, "row", col, geom, confidence, run_id, area_km2) '
        "VALUES ({region}, {product}, DATE '2023-08-05', {row}, 1, ST_MakeEnvelope(0, 0, 0.01, 0.01, 4326), {confidence}, {run}, {area})")


@pytest.mark.parametrize(
    ("sql", "constraint"),
    [
        ("INSERT INTO banet.granule (file_name, product, day, status) VALUES ('f', 'VNP02MOD', '2023-08-01', 'lost')", "granule_status_check"),
        ("INSERT INTO banet.granule (file_name, product, day, size_bytes) VALUES ('f', 'VNP02MOD', '2023-08-01', -1)", "granule_size_bytes_check"),
        (CUBE_DAY.format("'PT', 1.5, 'complete'"), "cube_day_valid_fraction_check"),
        (CUBE_DAY.format("'PT', 0.5, 'done'"), "cube_day_status_check"),
        (CUBE_DAY.format("'XX', 0.5, 'complete'"), "cube_day_region_fkey"),
        ("INSERT INTO banet.model (id, name, sha256, weights_uri, status) VALUES ('m', 'n', repeat('a', 64), 'u', 'best')", "model_status_check"),
        ("INSERT INTO banet.model (id, name, sha256, weights_uri) VALUES ('m', 'n', 'not-a-hash', 'u')", "model_sha256_check"),
        ("INSERT INTO banet.run (region, product, target_date, window_start, window_end, model_key, cube_snapshot) "
         "VALUES ('PT', 'daily', '2023-08-01', '2023-06-01', '2023-08-01', 'k', 's')", "run_product_check"),
        ("INSERT INTO banet.run (region, product, target_date, window_start, window_end, model_key, cube_snapshot, status) "
         "VALUES ('PT', 'nrt', '2023-08-01', '2023-06-01', '2023-08-01', 'k', 's', 'done')", "run_status_check"),
        ("INSERT INTO banet.run (region, product, target_date, window_start, window_end, model_key, cube_snapshot) "
         "VALUES ('PT', 'nrt', '2023-08-01', '2023-08-02', '2023-08-01', 'k', 's')", "run_check"),
        ("INSERT INTO banet.run (region, product, target_date, window_start, window_end, model_key, cube_snapshot) "
         "VALUES ('XX', 'nrt', '2023-08-01', '2023-06-01', '2023-08-01', 'k', 's')", "run_region_fkey"),
        ("INSERT INTO banet.run (region, product, target_date, window_start, window_end, model_key, cube_snapshot, n_burned_cells) "
         "VALUES ('PT', 'nrt', '2023-08-01', '2023-06-01', '2023-08-01', 'k', 's', -1)", "run_n_burned_cells_check"),
        (CELL.format(region="'PT'", product="'nrt'", row=1, confidence=1.2, run="{run}", area=1), "burned_cell_confidence_check"),
        (CELL.format(region="'PT'", product="'nrt'", row=1, confidence=-0.1, run="{run}", area=1), "burned_cell_confidence_check"),
        (CELL.format(region="'PT'", product="'nrt'", row=-1, confidence=0.5, run="{run}", area=1), "burned_cell_row_check"),
        (CELL.format(region="'PT'", product="'nrt'", row=1, confidence=0.5, run="{run}", area=-1), "burned_cell_area_km2_check"),
        (CELL.format(region="'PT'", product="'weekly'", row=1, confidence=0.5, run="{run}", area=1), "burned_cell_product_check"),
        (CELL.format(region="'XX'", product="'nrt'", row=1, confidence=0.5, run="{run}", area=1), "burned_cell_region_fkey"),
        (CELL.format(region="'PT'", product="'nrt'", row=1, confidence=0.5, run=-5, area=1), "burned_cell_run_id_fkey"),
        ("INSERT INTO banet.fire_event (run_id, region, product, geom, first_burn_date, last_burn_date, area_km2, n_cells) "
         "VALUES ({run}, 'PT', 'nrt', ST_Multi(ST_MakeEnvelope(0, 0, 1, 1, 4326)), '2023-08-05', '2023-08-04', 1, 1)", "fire_event_check"),
        ("INSERT INTO banet.fire_event (run_id, region, product, geom, first_burn_date, last_burn_date, area_km2, n_cells) "
         "VALUES ({run}, 'PT', 'nrt', ST_Multi(ST_MakeEnvelope(0, 0, 1, 1, 4326)), '2023-08-05', '2023-08-06', -2, 1)", "fire_event_area_km2_check"),
        ("INSERT INTO banet.fire_event (run_id, region, product, geom, first_burn_date, last_burn_date, area_km2, n_cells) "
         "VALUES ({run}, 'PT', 'nrt', ST_MakeEnvelope(0, 0, 1, 1, 4326), '2023-08-05', '2023-08-06', 1, 1)", "MultiPolygon"),
        ("INSERT INTO banet.fire_event (run_id, region, product, geom, first_burn_date, last_burn_date, area_km2, n_cells) "
         "VALUES (-7, 'PT', 'nrt', ST_Multi(ST_MakeEnvelope(0, 0, 1, 1, 4326)), '2023-08-05', '2023-08-06', 1, 1)", "fire_event_run_id_fkey"),
    ],
    ids=lambda v: v if isinstance(v, str) and " " not in v else None,
)
def test_constraints_reject_bad_rows(conn: sa.Connection, base: int, sql: str, constraint: str) -> None:
    assert constraint in _violates(conn, sql.replace("{run}", str(base)))


def test_at_most_one_production_model(conn: sa.Connection) -> None:
    insert = ("INSERT INTO banet.model (id, name, sha256, weights_uri, status, promoted_at) "
              "VALUES (:id, 'banet', :sha, 'file:///w.pth', :status, now())")
    # the session database is shared: a model another test promoted is retired in this (rolled back) transaction
    conn.execute(sa.text("UPDATE banet.model SET status = 'retired' WHERE status = 'production'"))
    conn.execute(sa.text(insert), {"id": "a", "sha": "a" * 64, "status": "production"})
    conn.execute(sa.text(insert), {"id": "b", "sha": "b" * 64, "status": "candidate"})
    conn.execute(sa.text(insert), {"id": "c", "sha": "c" * 64, "status": "retired"})
    assert "model_one_production" in _violates(conn, "UPDATE banet.model SET status = 'production' WHERE id = 'b'")
    assert "model_sha256_key" in _violates(conn, insert, {"id": "d", "sha": "a" * 64, "status": "candidate"})
    # promotion = retire the old one and promote the new one in one transaction
    conn.execute(sa.text("UPDATE banet.model SET status = CASE id WHEN 'a' THEN 'retired' ELSE 'production' END WHERE id IN ('a', 'b')"))
    assert conn.execute(sa.text("SELECT id FROM banet.model WHERE status = 'production'")).scalar_one() == "b"


def test_run_key_makes_reruns_idempotent(conn: sa.Connection, base: int) -> None:
    upsert = sa.text(
        "INSERT INTO banet.run (region, product, target_date, window_start, window_end, model_key, cube_snapshot) "
        "VALUES ('PT', 'monthly', '2023-08-01', '2023-05-30', '2023-08-01', 'abc', 'snap') "
        "ON CONFLICT (region, product, target_date, model_key, cube_snapshot) DO UPDATE SET status = 'running' RETURNING id"
    )
    assert conn.execute(upsert).scalar_one() == base
    assert conn.execute(sa.text("SELECT count(*) FROM banet.run WHERE id = :id"), {"id": base}).scalar_one() == 1


def test_deleting_a_run_deletes_its_cells_and_events(conn: sa.Connection, base: int) -> None:
    insert_cell(conn, base, 5, 5, date(2023, 8, 2))
    insert_event(conn, base, date(2023, 8, 2), date(2023, 8, 2), 1.0)
    conn.execute(sa.text("DELETE FROM banet.run WHERE id = :id"), {"id": base})
    assert conn.execute(sa.text("SELECT count(*) FROM banet.burned_cell WHERE run_id = :id"), {"id": base}).scalar_one() == 0
    assert conn.execute(sa.text("SELECT count(*) FROM banet.fire_event WHERE run_id = :id"), {"id": base}).scalar_one() == 0


# --- partitions -------------------------------------------------------------------------------


def _partition_of(conn: sa.Connection, burn: date) -> str:
    return str(conn.execute(
        sa.text("SELECT c.relname FROM banet.burned_cell b JOIN pg_class c ON c.oid = b.tableoid WHERE b.burn_date = :d"), {"d": burn}
    ).scalar_one())


def test_ensure_partitions_is_idempotent_and_moves_default_rows(conn: sa.Connection, base: int) -> None:
    insert_cell(conn, base, 1, 1, date(2041, 3, 1))  # no partition for 2041 yet
    assert _partition_of(conn, date(2041, 3, 1)) == "burned_cell_default"
    created = conn.execute(sa.text("SELECT banet.ensure_burned_cell_partitions('2040-06-01', '2042-01-31')")).scalar_one()
    assert created == 3
    assert conn.execute(sa.text("SELECT banet.ensure_burned_cell_partitions('2040-01-01', '2042-12-31')")).scalar_one() == 0
    assert _partition_of(conn, date(2041, 3, 1)) == "burned_cell_y2041"
    insert_cell(conn, base, 1, 2, date(2042, 7, 1))
    assert _partition_of(conn, date(2042, 7, 1)) == "burned_cell_y2042"
    # the new partitions carry the parent's indexes and constraints
    bad = CELL.format(region="'PT'", product="'nrt'", row=1, confidence=2, run=base, area=1).replace("2023-08-05", "2041-01-02")
    assert "confidence_check" in _violates(conn, bad)
    idx = conn.execute(sa.text("SELECT count(*) FROM pg_indexes WHERE tablename = 'burned_cell_y2041' AND indexdef ILIKE '%brin (geom)%'")).scalar_one()
    assert idx == 1


def test_ensure_partitions_rejects_reversed_range(conn: sa.Connection) -> None:
    assert "expected first_day <= last_day" in _violates(conn, "SELECT banet.ensure_burned_cell_partitions('2024-01-01', '2023-01-01')")


# --- roles ------------------------------------------------------------------------------------


def _as(conn: sa.Connection, role: str, sql: str, params: dict[str, object] | None = None) -> str | None:
    """Run ``sql`` as ``role``; the error text, or None when it succeeded."""
    savepoint = conn.begin_nested()
    try:
        conn.execute(sa.text(f"SET LOCAL ROLE {role}"))
        conn.execute(sa.text(sql), params or {})
    except ProgrammingError as exc:
        savepoint.rollback()
        return str(exc.orig)
    savepoint.rollback()
    return None


def test_roles_are_nologin(conn: sa.Connection) -> None:
    rows = dict(conn.execute(sa.text("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname LIKE 'banet\\_%'")).all())
    assert rows == {"banet_reader": False, "banet_writer": False}


def test_reader_can_select_but_not_write(conn: sa.Connection, base: int) -> None:
    insert_cell(conn, base, 3, 3, date(2023, 8, 3))
    for table in ("region", "granule", "cube_day", "model", "run", "burned_cell", "fire_event", "v_burned_area_monthly", "v_latest_fire_events",
                  "fire_event_version", "fire_event_growth", "v_burned_cell"):
        assert _as(conn, "banet_reader", f"SELECT count(*) FROM banet.{table}") is None, table
    denied = [
        "SELECT count(*) FROM banet_internal.burned_cell_y2023",  # partitions are internals: query banet.burned_cell
        "INSERT INTO banet.region (name, bbox, pixel_size, n_rows, n_cols, definition) VALUES ('ZZ', ST_MakeEnvelope(0,0,1,1,4326), 0.01, 100, 100, '{}')",
        "UPDATE banet.run SET status = 'failed'",
        "DELETE FROM banet.burned_cell",
        "DELETE FROM banet.region",
        "TRUNCATE banet.fire_event",
        "SELECT banet.ensure_burned_cell_partitions('2050-01-01', '2050-12-31')",
        "CREATE TABLE banet.evil (x int)",
    ]
    for sql in denied:
        error = _as(conn, "banet_reader", sql)
        assert error is not None and "permission denied" in error, sql


def test_writer_can_write_but_not_change_the_schema(conn: sa.Connection, base: int) -> None:
    assert _as(conn, "banet_writer", "INSERT INTO banet.granule (file_name, product, day) VALUES ('VNP02MOD.A2023213.nc', 'VNP02MOD', '2023-08-01')") is None
    assert _as(conn, "banet_writer", "UPDATE banet.run SET status = 'failed' WHERE id = :id", {"id": base}) is None
    assert _as(conn, "banet_writer", "SELECT banet.ensure_burned_cell_partitions('2050-01-01', '2050-12-31')") is None
    error = _as(conn, "banet_writer", "CREATE TABLE banet.evil (x int)")
    assert error is not None and "permission denied" in error


def test_future_tables_are_readable_by_the_reader(conn: sa.Connection) -> None:
    conn.execute(sa.text("CREATE TABLE banet.added_later (x int)"))
    assert _as(conn, "banet_reader", "SELECT * FROM banet.added_later") is None
    assert "permission denied" in (_as(conn, "banet_reader", "INSERT INTO banet.added_later VALUES (1)") or "")
    assert _as(conn, "banet_writer", "INSERT INTO banet.added_later VALUES (1)") is None


# --- views ------------------------------------------------------------------------------------


def test_views(conn: sa.Connection) -> None:
    s = seed(conn)
    monthly = conn.execute(sa.text(
        "SELECT month, n_cells, area_km2 FROM banet.v_burned_area_monthly WHERE region = 'PT' AND product = 'monthly' ORDER BY month"
    )).all()
    assert [(m, n) for m, n, _ in monthly] == [(date(2023, 8, 1), 6), (date(2023, 10, 1), 1)]
    expected = 3 * PT.row_cell_area_km2()[100] + PT.row_cell_area_km2()[200] + 2 * PT.row_cell_area_km2()[300]
    assert monthly[0][2] == pytest.approx(expected, rel=1e-9)
    latest = conn.execute(sa.text(
        "SELECT product, run_id, id, target_date FROM banet.v_latest_fire_events WHERE region = 'PT' ORDER BY product, id"
    )).all()
    # since 0009 banet.fire_event holds the current events (one row per fire); the view adds the target date of their last run
    assert [tuple(r[:3]) for r in latest] == [("monthly", s.runs[r], s.events[e]) for r, e in
                                              (("aug", "e1"), ("aug", "e2"), ("aug", "e3"), ("sep", "e4"), ("oct_failed", "e5"))] + [
                                                 ("nrt", s.runs["nrt"], s.events["e6"])]
