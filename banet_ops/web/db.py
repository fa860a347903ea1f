"""The web app's database side: a read-only asyncpg pool and tipg's collection catalog.

Every connection logs in with the configured (reader) login, switches to ``role`` (default
``banet_reader``, SELECT only) from the first packet on, and runs read-only transactions by
default; tipg's catalog functions are created in ``pg_temp`` with the connection still
writable for that one statement.  The pool is opened on the first request, so the app (and the
Airflow api-server that mounts it) starts even while the database is down.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from banet_ops.errors import DatabaseUnavailableError
from banet_ops.web.layers import ANALYST, Layer, Schema

log = logging.getLogger(__name__)
CATALOG_TTL_S = 300.0  # collection extents (new regions, new dates) are re-read this often


@dataclass(frozen=True)
class DbConfig:
    """Where and as whom the web app reads."""

    url: str  # a libpq/SQLAlchemy URL; the ``+driver`` suffix is dropped
    role: str | None = "banet_reader"
    min_size: int = 1
    max_size: int = 5


def asyncpg_url(url: str) -> str:
    """``postgresql+psycopg://…`` → ``postgresql://…`` (asyncpg takes plain libpq URLs)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


class _ReaderInit:
    """asyncpg ``init``: tipg's per-connection setup, done writable once; read-only afterwards."""

    def __init__(self) -> None:
        from tipg.database import connection_factory

        self._tipg = connection_factory(schemas=["banet"], tipg_schema="pg_temp")

    async def __call__(self, conn: Any) -> None:
        await conn.execute("SET default_transaction_read_only = off")
        await self._tipg(conn)
        await conn.execute("RESET default_transaction_read_only")


async def open_pool(config: DbConfig) -> Any:
    """A pool whose sessions run as ``config.role`` in read-only transactions."""
    import asyncpg

    settings = {"default_transaction_read_only": "on", "application_name": "banet-ops-web"}
    if config.role:
        settings["role"] = config.role
    try:
        return await asyncpg.create_pool(
            asyncpg_url(config.url), min_size=config.min_size, max_size=config.max_size, init=_ReaderInit(), server_settings=settings
        )
    except (OSError, asyncpg.PostgresError) as exc:
        reason = " ".join(str(exc).split())
        raise DatabaseUnavailableError(f"web app: could not connect to the database as a reader: {reason}", hint="check BANET_WEB_DATABASE_URL") from exc


async def load_catalog(pool: Any, layers: tuple[Layer, ...]) -> dict[str, Any]:
    """tipg's catalog of ``layers``, keyed by layer id; a relation the reader cannot see is skipped."""
    from tipg.collections import pg_get_collection_index
    from tipg.settings import DatabaseSettings

    settings = DatabaseSettings(
        schemas=sorted({lay.relation.split(".", 1)[0] for lay in layers}),
        tables=[lay.relation for lay in layers],
        only_spatial_tables=False,
        spatial_extent=True,
        datetime_extent=True,
    )
    async with pool.acquire() as conn:
        found = {c.id: c for c in await pg_get_collection_index(conn, settings=settings)}
    collections: dict[str, Any] = {}
    for lay in layers:
        coll = found.get(lay.relation)
        if coll is None:
            log.warning("web app: layer %s: relation %s not visible to the reader; not served", lay.id, lay.relation)
            continue
        collections[lay.id] = _renamed(coll, lay)
    return {"collections": collections, "last_updated": dt.datetime.now()}


def _renamed(coll: Any, lay: Layer) -> Any:
    """The collection under the layer's id, title and chosen id/datetime columns."""
    by_name = {c.name: c for c in coll.table_columns}
    update: dict[str, Any] = {"id": lay.id, "title": lay.title, "description": lay.description}
    if lay.id_column and lay.id_column in by_name:
        update["id_column"] = by_name[lay.id_column]
    if lay.datetime_column and lay.datetime_column in by_name:
        update["datetime_column"] = by_name[lay.datetime_column]
    return coll.model_copy(update=update)


class Database:
    """The pool and catalog of one app, opened on first use (concurrent first requests wait once).

    ``config`` may be a function: it is then called on first use, so a missing database setting
    is a 503 on the map's routes rather than an import error in the process that mounts the app.
    """

    def __init__(self, config: DbConfig | Callable[[], DbConfig]) -> None:
        self._config = config
        self.pool: Any = None
        self.schema: Schema | None = None
        self.catalog: dict[str, Any] | None = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return self.catalog is not None and time.monotonic() - self._loaded_at < CATALOG_TTL_S

    async def ready(self) -> None:
        if self._fresh():
            return
        async with self._lock:
            if self.pool is None:
                config = self._config() if callable(self._config) else self._config
                self.pool = await open_pool(config)
            if not self._fresh():
                self.schema = ANALYST
                self.catalog = await load_catalog(self.pool, self.schema.layers)
                self._loaded_at = time.monotonic()

    async def current_schema(self) -> Schema:
        """The schema served (picked when the catalog was loaded)."""
        await self.ready()
        if self.schema is None:
            raise DatabaseUnavailableError("web app: the database schema is not loaded yet", hint="retry")
        return self.schema

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        await self.ready()
        async with self.pool.acquire() as conn:
            return list(await conn.fetch(sql, *args))

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None
            self.catalog = None
            self.schema = None
