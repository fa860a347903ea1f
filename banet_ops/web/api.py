"""The map page and the small JSON routes it reads (regions, products, event growth, calendar).

Features come from the OGC API (``/ogc``), rasters from the tiler (``/tiles``); these routes add
what the standards do not: the product list for the date slider, an event's daily growth and
the cube-coverage calendar with the Airflow DAG that wrote each day.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

from banet_ops.web.db import Database
from banet_ops.web.layers import CUBE_DAYS_SQL, PRODUCTS_SQL, REGIONS_SQL
from banet_ops.web.tiles import DEFAULT_COLORMAPS

STATIC = Path(__file__).resolve().parent / "static"
STATIC_FILES = {
    "map.js": "text/javascript",
    "map.css": "text/css",
    "maplibre-gl.js": "text/javascript",
    "maplibre-gl.css": "text/css",
    "icon.svg": "image/svg+xml",
}

pages = APIRouter()  # the page and its files: no database needed
router = APIRouter()


def _day(value: dt.date) -> str:
    return value.isoformat()


@pages.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page(request: Request) -> HTMLResponse:
    """The map page; its settings (where Airflow is) are inlined as JSON."""
    config = {"airflow_url": request.app.state.airflow_url, "in_airflow": request.app.state.in_airflow}
    html = (STATIC / "index.html").read_text().replace("{{ config }}", json.dumps(config))
    return HTMLResponse(html)


@pages.get("/static/{name}", include_in_schema=False)
async def static(name: str) -> FileResponse:
    """The page's script and style and the vendored MapLibre GL build (no CDN)."""
    if name not in STATIC_FILES:
        raise HTTPException(status_code=404, detail=f"no static file {name!r}")
    return FileResponse(STATIC / name, media_type=STATIC_FILES[name])


@router.get("/api/regions")
async def regions(request: Request) -> list[dict[str, Any]]:
    """Region names and bounding boxes."""
    rows = await request.app.state.db.fetch(REGIONS_SQL)
    return [{"name": r["name"], "bbox": [r["xmin"], r["ymin"], r["xmax"], r["ymax"]]} for r in rows]


@router.get("/api/products")
async def products(request: Request, region: str | None = None) -> list[dict[str, Any]]:
    """Succeeded products (oldest first per region and product) with their burn-date colour scale."""
    db: Database = request.app.state.db
    schema = await db.current_schema()
    rows = await db.fetch(PRODUCTS_SQL, region)
    out = []
    for r in rows:
        start, end = r["window_start"], r["window_end"]
        first, last = schema.encode_day(start), schema.encode_day(end)
        out.append(
            {
                "run_id": r["run_id"],
                "region": r["region"],
                "product": r["product"],
                "target_date": _day(r["target_date"]),
                "window": [_day(start), _day(end)],
                "n_events": r["n_events"],
                "burned_area_km2": r["burned_area_km2"],
                "assets": sorted(k for k in (r["outputs"] or {}) if k in DEFAULT_COLORMAPS),
                # rescale for colormap banet_burn: the day before the window maps to its transparent index 0
                # (a day-of-year window across new year colours the whole year)
                "burn_date_rescale": [first - 1, last] if first <= last else [0, 366],
            }
        )
    return out


@router.get("/api/products/{run_id}/events")
async def product_events(request: Request, run_id: int) -> dict[str, Any]:
    """The fire events of one product as it saw them (GeoJSON FeatureCollection)."""
    db: Database = request.app.state.db
    rows = await db.fetch((await db.current_schema()).run_events_sql, run_id)
    features = [
        {
            "type": "Feature",
            "id": r["id"],
            "geometry": r["geometry"],
            "properties": {
                "run_id": r["run_id"],
                "first_burn_date": _day(r["first_burn_date"]),
                "last_burn_date": _day(r["last_burn_date"]),
                "area_km2": float(r["area_km2"]),
                "n_cells": r["n_cells"],
                "mean_confidence": None if r["mean_confidence"] is None else round(float(r["mean_confidence"]), 4),
            },
        }
        for r in rows
    ]
    return {"type": "FeatureCollection", "features": features}


@router.get("/api/events/{event_id}/growth")
async def growth(request: Request, event_id: int) -> list[dict[str, Any]]:
    """Daily growth of one event: km2 (and cells, when known) per burn date, with the running total."""
    db: Database = request.app.state.db
    rows = await db.fetch((await db.current_schema()).growth_sql, event_id)
    total = 0.0
    out = []
    for r in rows:
        total += float(r["area_km2"])
        out.append({"date": _day(r["burn_date"]), "n_cells": r["n_cells"], "area_km2": float(r["area_km2"]), "total_km2": total})
    return out


@router.get("/api/regions/{region}/calendar")
async def calendar(request: Request, region: str) -> dict[str, Any]:
    """The region's cube days (complete/partial/empty; absent days are missing) and its DAG ids."""
    rows = await request.app.state.db.fetch(CUBE_DAYS_SQL, region)
    days = [{"day": _day(r["day"]), "status": r["status"], "valid_fraction": round(float(r["valid_fraction"]), 3)} for r in rows]
    return {"region": region, "days": days, "dags": {"ingest": f"banet_ingest_{region}", "nrt": f"banet_infer_nrt_{region}"}}
