"""The Python database API: engines, errors on connect, require_schema, the regions repository."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from banet_ops.db.engine import get_engine, require_schema, safe_url, sqlalchemy_url
from banet_ops.db.migrate import _yoyo_uri, upgrade
from banet_ops.db.regions_repo import list_regions, upsert_region, upsert_regions
from banet_ops.errors import ConfigError, DatabaseUnavailableError, RegionError, is_retryable
from banet_ops.localstack.postgres import free_port
from banet_ops.regions import Region, load_regions

from .conftest import REGION_FIXTURES
from .seed import insert_run


def test_engine_is_cached_per_url(db_url: str) -> None:
    engine = get_engine(db_url)
    assert get_engine(db_url) is engine
    assert engine.pool._pre_ping  # type: ignore[attr-defined]
    other = sa.make_url(db_url).set(database="postgres").render_as_string(hide_password=False)
    assert get_engine(other) is not engine
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT postgis_lib_version()")).scalar_one().startswith("3.")


def test_unreachable_database_is_retryable_and_hides_the_password() -> None:
    url = f"postgresql+psycopg2://banet:s3cr3t-pw@127.0.0.1:{free_port()}/banet"
    with pytest.raises(DatabaseUnavailableError) as info, get_engine(url).connect():
        pass
    assert is_retryable(info.value)
    message = str(info.value)
    assert "s3cr3t-pw" not in message and "***" in message
    assert message.startswith("expected PostgreSQL at postgresql+psycopg://banet:***@127.0.0.1:")
    assert "to accept connections, found:" in message
    with pytest.raises(DatabaseUnavailableError) as info2:
        upgrade(url)
    assert "s3cr3t-pw" not in str(info2.value)
    assert safe_url(url).count("***") == 1


def test_connection_lost_mid_statement_is_retryable(make_database: Callable[[], str]) -> None:
    url = make_database()
    engine = get_engine(url)
    with engine.connect() as victim, engine.connect() as killer:
        pid = victim.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        killer.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DatabaseUnavailableError, match=r"to keep the connection open") as info:
            victim.execute(sa.text("SELECT 1"))
        assert is_retryable(info.value)
    with engine.connect() as conn:  # the pool recovers
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1


def test_default_url_comes_from_settings(banet_home: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"BANET_DATABASE_URL.*stack start"):
        get_engine()
    monkeypatch.setenv("BANET_DATABASE_URL", db_url)
    from banet_ops.settings import get_settings

    get_settings.cache_clear()
    assert get_engine() is get_engine(db_url)
    require_schema(get_engine())


def test_unknown_driver_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"expected a postgresql:// URL, found driver 'sqlite'"):
        upgrade("sqlite:///x.db")


# --- regions repository -------------------------------------------------------------------------


def test_upsert_and_list_regions(migrated_db: str) -> None:
    engine = get_engine(migrated_db)
    regions = load_regions(REGION_FIXTURES)
    outcomes = upsert_regions(engine, regions.values())
    assert set(outcomes.values()) == {"inserted"} and len(outcomes) == 7
    assert upsert_region(engine, regions["PI"]) == "unchanged"
    listed = list_regions(engine)
    assert [r.name for r in listed] == sorted(regions)
    assert {r.name: r for r in listed} == regions
    assert [r.name for r in list_regions(engine, ["PT", "AK"])] == ["AK", "PT"]
    with engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT ST_AsText(bbox), n_rows, n_cols, definition->>'name' FROM banet.region WHERE name = 'PI'"
        )).one()
    assert row[0] == "POLYGON((-10 36,-10 44,5 44,5 36,-10 36))"
    assert (row[1], row[2], row[3]) == (800, 1500, "PI")


def test_changing_a_grid(migrated_db: str) -> None:
    engine = get_engine(migrated_db)
    first = Region(name="GRIDTEST", bbox=(0, 0, 1, 1), pixel_size=0.01)
    moved = Region(name="GRIDTEST", bbox=(0, 0, 2, 1), pixel_size=0.01)
    assert upsert_region(engine, first) == "inserted"
    assert upsert_region(engine, moved) == "updated"  # nothing uses it yet
    assert list_regions(engine, ["GRIDTEST"])[0].shape == (100, 200)
    with engine.begin() as conn:
        insert_run(conn, date(2023, 8, 1), region="GRIDTEST")
    with pytest.raises(RegionError, match=r"region GRIDTEST: expected the same grid .* 0 cube days and 1 runs use the registered grid"):
        upsert_region(engine, first)
    assert list_regions(engine, ["GRIDTEST"])[0] == moved


def test_upsert_is_all_or_nothing(migrated_db: str) -> None:
    engine = get_engine(migrated_db)
    ok = Region(name="ATOMIC_A", bbox=(0, 0, 1, 1), pixel_size=0.01)
    locked = Region(name="GRIDTEST", bbox=(5, 5, 6, 6), pixel_size=0.01)  # has a run: refused
    with pytest.raises(RegionError):
        upsert_regions(engine, [ok, locked])
    assert list_regions(engine, ["ATOMIC_A"]) == []


def test_every_postgresql_url_is_normalised_to_psycopg_3() -> None:
    """Old ``pg/url`` files and settings (plain or psycopg2 URLs) keep working: one driver, psycopg 3."""
    for scheme in ("postgres", "postgresql", "postgresql+psycopg2", "postgresql+psycopg"):
        assert sqlalchemy_url(f"{scheme}://u:p%40w@db:5432/banet") == "postgresql+psycopg://u:p%40w@db:5432/banet"
    with pytest.raises(ConfigError, match="mysql"):
        sqlalchemy_url("mysql://u@db/banet")
    assert _yoyo_uri("postgresql+psycopg2://u@db/banet").startswith("postgresql+psycopg://u@db/banet?")
