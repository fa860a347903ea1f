"""SQLAlchemy engines for the PostGIS database, one per URL per process, on one driver: psycopg 3.

:func:`sqlalchemy_url` is the one place a configured URL is normalised: ``postgres://``,
``postgresql://`` and ``postgresql+psycopg2://`` (older settings and ``$BANET_HOME/pg/url``
files) all become ``postgresql+psycopg://``.

Connection failures surface as :class:`~banet_ops.errors.DatabaseUnavailableError` (retryable)
with the password hidden; a database without the ``banet`` schema, or with migrations pending,
is reported by :func:`require_schema` as a :class:`~banet_ops.errors.SchemaError`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine, ExceptionContext

from banet_ops.errors import ConfigError, DatabaseUnavailableError, SchemaError

if TYPE_CHECKING:
    from banet_ops.settings import Settings

SCHEMA = "banet"
DRIVER = "postgresql+psycopg"
_ALIASES = ("postgres", "postgresql", "postgresql+psycopg2", DRIVER)
# Tables every part of the pipeline relies on (docs/contracts.md).
REQUIRED_TABLES = ("region", "granule", "cube_day", "model", "run", "burned_cell", "fire_event")

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def safe_url(url: str | sa.URL) -> str:
    """The URL with its password masked, fit for messages and logs."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable database URL>"


def sqlalchemy_url(url: str | sa.URL) -> str:
    """``url`` with banet_ops' driver, psycopg 3 (``postgresql+psycopg://``); other drivers are refused."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"expected an SQLAlchemy database URL, found {safe_url(url)!r}") from exc
    if parsed.drivername not in _ALIASES:
        raise ConfigError(
            f"expected a postgresql:// URL, found driver {parsed.drivername!r} in {safe_url(url)}",
            hint="use postgresql+psycopg://user@host/db",
        )
    return parsed.set(drivername=DRIVER).render_as_string(hide_password=False)


def _on_error(context: ExceptionContext) -> None:
    """Turn a refused connection, or one lost mid-statement, into DatabaseUnavailableError (retryable)."""
    refused = context.connection is None and isinstance(context.sqlalchemy_exception, sa.exc.OperationalError)
    if refused or context.is_disconnect:
        detail = " ".join(str(context.original_exception).split())[:300]
        url = safe_url(context.engine.url) if context.engine is not None else "the database"
        expected = "to accept connections" if refused else "to keep the connection open"
        raise DatabaseUnavailableError(
            f"expected PostgreSQL at {url} {expected}, found: {detail}",
            hint="check BANET_DATABASE_URL, or start the local stack with `banet-ops stack start`",
        ) from None


def database_configured(settings: Settings) -> bool:
    """Whether a database is configured: ``BANET_DATABASE_URL``, or the local stack's URL file."""
    return settings.database_url is not None or (settings.home / "pg" / "url").is_file()


def _resolve(url: str | None) -> str:
    if url is None:
        from banet_ops.settings import get_settings

        url = get_settings().resolved_database_url()
    return sqlalchemy_url(url)


def get_engine(url: str | None = None) -> Engine:
    """The engine for ``url`` (default: the configured database), created once per URL.

    Connections are checked before use (``pool_pre_ping``), so a restarted server is survived.
    """
    resolved = _resolve(url)
    with _lock:
        engine = _engines.get(resolved)
        if engine is None:
            engine = sa.create_engine(resolved, pool_pre_ping=True, pool_size=5, max_overflow=5)
            sa.event.listen(engine, "handle_error", _on_error)
            _engines[resolved] = engine
        return engine


def dispose_engines() -> None:
    """Close every cached engine's pool (tests, and forked workers)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def missing_tables(engine: Engine) -> list[str]:
    """The required ``banet`` tables that do not exist in the database."""
    names = [f"{SCHEMA}.{t}" for t in REQUIRED_TABLES]
    with engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT n FROM unnest(CAST(:names AS text[])) AS n WHERE to_regclass(n) IS NULL"),
            {"names": names},
        ).scalars()
        return [n.split(".", 1)[1] for n in found]


def require_schema(engine: Engine) -> None:
    """Raise SchemaError unless the ``banet`` schema is complete and no migration is pending."""
    missing = missing_tables(engine)
    if missing:
        raise SchemaError(
            f"expected the banet schema in {safe_url(engine.url)}, found these tables missing: {', '.join(missing)}",
            hint="run `banet-ops db upgrade`",
        )
    from banet_ops.db.migrate import pending_ids_for_engine

    pending = pending_ids_for_engine(engine)
    if pending:
        raise SchemaError(
            f"expected the database schema to be up to date, found {len(pending)} pending migration(s): {', '.join(pending)}",
            hint="run `banet-ops db upgrade`",
        )
