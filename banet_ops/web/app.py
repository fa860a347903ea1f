"""The map app: OGC API Features/Tiles (tipg), COG tiles (titiler), STAC, and the map page.

One FastAPI app serves both deployments: standalone (``banet-ops serve``, the Helm Deployment)
and mounted on Airflow's api-server by the project's plugin, which passes Airflow's
authentication as ``auth`` so every route (page, data, static files) needs a logged-in user.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from banet_ops import __version__
from banet_ops.errors import BanetError
from banet_ops.settings import Settings, get_settings
from banet_ops.web.db import Database, DbConfig

OGC_PREFIX = "/ogc"
TILES_PREFIX = "/tiles"


def db_config(settings: Settings) -> DbConfig:
    """The reader login (``BANET_WEB_DATABASE_URL``, else the pipeline's URL) and role."""
    url = settings.web_database_url.get_secret_value() if settings.web_database_url else settings.resolved_database_url()
    return DbConfig(url=url, role=settings.web_db_role or None)


async def _ready(request: Request) -> None:
    """Open the pool and catalog on first use; tipg's endpoints read them from ``app.state``."""
    db: Database = request.app.state.db
    await db.ready()
    request.app.state.pool = db.pool
    request.app.state.collection_catalog = db.catalog


class MountedAt:
    """ASGI middleware: links built by tipg/titiler/STAC keep the mount path (e.g. ``/banet-map``).

    Under a parent app's ``Mount``, Starlette builds ``request.base_url`` from the top-level root
    and resolves ``url_for`` on the parent's router; this app's links are its own, so both are
    re-rooted at the mount point.  Standalone (no root path) nothing changes.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and scope.get("root_path"):
            scope = {k: v for k, v in scope.items() if k != "router"} | {"app_root_path": scope["root_path"]}
        await self.app(scope, receive, send)


class LazyApp:
    """An ASGI app that builds the real one on its first request.

    Airflow imports plugins in every process (scheduler, workers, dag-processor); only the
    api-server serves the map, so the heavy imports (tipg, titiler, rasterio, Airflow's security
    module) happen there, once, when someone opens the page.
    """

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = self._factory()
        await self._app(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    auth: Callable[..., Any] | None = None,
    in_airflow: bool = False,
    config: DbConfig | None = None,
) -> FastAPI:
    """The app; ``auth`` (a FastAPI dependency) guards every route when given."""
    from tipg.errors import DEFAULT_STATUS_CODES, add_exception_handlers
    from tipg.factory import Endpoints
    from titiler.core.errors import DEFAULT_STATUS_CODES as TILER_STATUS_CODES
    from titiler.core.errors import add_exception_handlers as add_tiler_exception_handlers

    from banet_ops.web import api, stac
    from banet_ops.web.tiles import tiler_router

    database = Database(config or (lambda: db_config(settings or get_settings())))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await database.close()

    guard = [Depends(auth)] if auth is not None else []
    app = FastAPI(title="banet-ops map", version=__version__, lifespan=lifespan, dependencies=guard, docs_url="/docs", openapi_url="/openapi.json")
    app.state.db = database
    app.state.airflow_url = "" if in_airflow else (settings or get_settings()).web_airflow_url.rstrip("/")
    app.state.in_airflow = in_airflow
    ready = [Depends(_ready)]
    ogc = Endpoints(title="banet-ops burned areas (OGC API)", router_prefix=OGC_PREFIX, collection_dependency=_collection, with_tiles_viewer=False)
    app.include_router(ogc.router, prefix=OGC_PREFIX, dependencies=ready, tags=["OGC API"])
    app.include_router(tiler_router(TILES_PREFIX), prefix=TILES_PREFIX, dependencies=ready, tags=["Raster tiles"])
    app.include_router(stac.router, dependencies=ready)
    app.include_router(api.router, dependencies=ready)
    app.include_router(api.pages)
    app.add_middleware(MountedAt)
    add_exception_handlers(app, DEFAULT_STATUS_CODES)
    add_tiler_exception_handlers(app, TILER_STATUS_CODES)  # e.g. a tile outside the COG: 404

    @app.exception_handler(BanetError)
    async def _banet_error(_: Request, exc: BanetError) -> JSONResponse:
        return JSONResponse({"detail": " ".join(str(exc).split())}, status_code=503)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _collection(request: Request, collectionId: str) -> Any:
    """The served layer ``collectionId`` (plain ids such as ``fire_events``)."""
    from fastapi import HTTPException

    catalog = request.app.state.collection_catalog or {}
    found = catalog.get("collections", {}).get(collectionId)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no collection {collectionId!r}")
    return found
