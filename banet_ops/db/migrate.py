"""Schema migrations: plain SQL files in ``sql/migrations`` applied with yoyo-migrations.

Each file ``NNNN_name.sql`` is one migration (id = file stem), applied in its own transaction
and recorded in ``public._yoyo_migration``; a lock table serialises concurrent upgrades, so
running ``upgrade`` from several processes at once, or twice, is safe.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from banet_ops.db.engine import safe_url, sqlalchemy_url
from banet_ops.errors import ConfigError, DatabaseUnavailableError, SchemaError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "sql" / "migrations"
MIGRATION_TABLE = "_yoyo_migration"
LOCK_TIMEOUT_S = 120


def migrations_dir() -> Path:
    """Folder of the ``.sql`` migration files shipped with the package."""
    if not MIGRATIONS_DIR.is_dir():
        raise ConfigError(f"expected the schema migrations in {MIGRATIONS_DIR}, found no such folder", hint="reinstall banet-ops")
    return MIGRATIONS_DIR


def migration_ids() -> list[str]:
    """Ids of all known migrations, in application order."""
    return [m.id for m in _read_migrations()]


def _read_migrations() -> Any:
    from yoyo import read_migrations

    return read_migrations(str(migrations_dir()))


def _yoyo_uri(url: str) -> str:
    """The yoyo form of a database URL (normalised to psycopg 3 by :func:`sqlalchemy_url`)."""
    parsed = sa.make_url(sqlalchemy_url(url))
    scheme = parsed.drivername
    # yoyo keeps its bookkeeping tables in `public`; pin the search path so that a login role
    # named like a schema (the local stack's superuser is called `banet`) does not move them.
    query = {**parsed.query, "schema": "public"}
    return parsed.set(drivername=scheme, query=query).render_as_string(hide_password=False)


@contextlib.contextmanager
def _backend(url: str) -> Iterator[Any]:
    from yoyo import get_backend

    try:
        backend = get_backend(_yoyo_uri(url), migration_table=MIGRATION_TABLE)
    except Exception as exc:  # psycopg.OperationalError and friends: the driver's own classes
        if type(exc).__name__ == "OperationalError":
            detail = " ".join(str(exc).split())[:300]
            raise DatabaseUnavailableError(
                f"expected PostgreSQL at {safe_url(url)} to accept connections, found: {detail}",
                hint="check BANET_DATABASE_URL, or start the local stack with `banet-ops stack start`",
            ) from None
        raise
    try:
        yield backend
    finally:
        with contextlib.suppress(Exception):
            backend.connection.close()


def upgrade(url: str | None = None) -> list[str]:
    """Apply every pending migration to the database at ``url``; return the ids applied (in order).

    A second call returns ``[]``.  A failing migration is rolled back as a whole and raised as
    SchemaError naming it.
    """
    from yoyo.exceptions import LockTimeout

    url = _url(url)
    migrations = _read_migrations()
    with _backend(url) as backend:
        try:
            with backend.lock(timeout=LOCK_TIMEOUT_S):
                todo = backend.to_apply(migrations)
                applied: list[str] = []
                for migration in todo:
                    log.debug("applying migration %s", migration.id)
                    try:
                        backend.apply_one(migration)
                    except backend.DatabaseError as exc:
                        detail = " ".join(str(exc).split())[:500]
                        raise SchemaError(
                            f"migration {migration.id} failed on {safe_url(url)}: {detail}",
                            hint="fix the cause (the migration was rolled back) and run `banet-ops db upgrade` again",
                        ) from None
                    applied.append(migration.id)
                return applied
        except LockTimeout as exc:
            raise DatabaseUnavailableError(
                f"expected to take the migration lock within {LOCK_TIMEOUT_S}s, found it held ({exc})",
                hint="wait for the other upgrade to finish",
            ) from None


def applied_ids(url: str | None = None) -> list[str]:
    """Ids of the migrations applied to the database, in application order."""
    return _applied_ids(get_engine_for(url))


def current_version(url: str | None = None) -> str | None:
    """Id of the last migration applied (None for a database never migrated)."""
    ids = applied_ids(url)
    return ids[-1] if ids else None


def pending_ids(url: str | None = None) -> list[str]:
    """Ids of the known migrations not yet applied."""
    return pending_ids_for_engine(get_engine_for(url))


def pending_ids_for_engine(engine: Engine) -> list[str]:
    done = set(_applied_ids(engine))
    return [m for m in migration_ids() if m not in done]


def _applied_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        if conn.execute(sa.text("SELECT to_regclass(:t)"), {"t": f"public.{MIGRATION_TABLE}"}).scalar() is None:
            return []
        rows = conn.execute(sa.text(f"SELECT migration_id FROM public.{MIGRATION_TABLE} ORDER BY applied_at_utc, migration_id"))
        return [r[0] for r in rows]


def get_engine_for(url: str | None) -> Engine:
    from banet_ops.db.engine import get_engine

    return get_engine(_url(url))


def _url(url: str | None) -> str:
    if url is not None:
        return url
    from banet_ops.settings import get_settings

    return get_settings().resolved_database_url()
