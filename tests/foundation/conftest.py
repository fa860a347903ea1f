"""Fixtures of the foundation tests: scratch databases in the session's PostGIS cluster."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from banet_ops.db.engine import dispose_engines

REGION_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "foundation" / "regions"


@pytest.fixture(scope="session")
def make_database(pg_url: str) -> Iterator[Callable[[], str]]:
    """Factory of empty databases in the session cluster (for tests that commit); dropped at the end."""
    admin = sa.create_engine(sa.make_url(pg_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    created: list[str] = []

    def make() -> str:
        name = f"scratch_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        created.append(name)
        return sa.make_url(pg_url).set(database=name).render_as_string(hide_password=False)

    yield make
    dispose_engines()
    with admin.connect() as conn:
        for name in created:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def migrated_db(make_database: Callable[[], str]) -> str:
    """A migrated database of its own for one test module (rows committed there stay there)."""
    from banet_ops.db.migrate import upgrade

    url = make_database()
    upgrade(url)
    return url


@pytest.fixture
def conn(db_url: str) -> Iterator[sa.Connection]:
    """A connection to the shared migrated database inside a transaction that is rolled back."""
    engine = sa.create_engine(db_url)
    with engine.connect() as connection:
        trans = connection.begin()
        try:
            yield connection
        finally:
            trans.rollback()
    engine.dispose()
