"""The products' STAC items over HTTP: a catalog linking every succeeded run's item.

``/stac/catalog.json`` → ``/stac/items/{run_id}.json`` (the published item, its links and asset
hrefs rewritten to this server) → ``/stac/assets/{run_id}/{asset}`` (the file itself).  A STAC
browser, pystac or QGIS's STAC source can walk it; the files stay where publishing put them.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from banet_ops.publish.storage import open_store
from banet_ops.web.layers import PRODUCT_OUTPUTS_SQL, PRODUCTS_SQL

STAC_VERSION = "1.0.0"
MEDIA_TYPES = {".tif": "image/tiff; application=geotiff; profile=cloud-optimized", ".png": "image/png", ".json": "application/json"}

router = APIRouter(prefix="/stac", tags=["STAC"])


def read_url(url: str) -> bytes:
    """The bytes of a published file (a local path or ``s3://bucket/key``)."""
    root, _, name = url.rstrip("/").rpartition("/")
    return open_store(root or "/").get_bytes(name)


def _url(request: Request, name: str, **params: Any) -> str:
    return str(request.url_for(name, **params))


@router.get("/catalog.json", name="stac_catalog")
async def catalog(request: Request) -> JSONResponse:
    """A STAC catalog whose items are the succeeded products."""
    rows = await request.app.state.db.fetch(PRODUCTS_SQL, None)
    links = [
        {"rel": "self", "href": _url(request, "stac_catalog"), "type": "application/json"},
        {"rel": "root", "href": _url(request, "stac_catalog"), "type": "application/json"},
        *(
            {"rel": "item", "href": _url(request, "stac_item", run_id=r["run_id"]), "type": "application/geo+json",
             "title": f"{r['region']} {r['product']} {r['target_date']}"}
            for r in rows if (r["outputs"] or {}).get("stac_item")
        ),
    ]
    body = {"type": "Catalog", "stac_version": STAC_VERSION, "id": "banet-ops-products",
            "description": "BA-Net burned-area products (confidence and burn date COGs) of every region", "links": links}
    return JSONResponse(body, media_type="application/json")


async def _outputs(request: Request, run_id: int) -> dict[str, str]:
    rows = await request.app.state.db.fetch(PRODUCT_OUTPUTS_SQL, run_id)
    if not rows or not rows[0]["outputs"]:
        raise HTTPException(status_code=404, detail=f"no product for run {run_id}")
    return dict(rows[0]["outputs"])


@router.get("/items/{run_id}.json", name="stac_item")
async def item(request: Request, run_id: int) -> JSONResponse:
    """The run's published STAC item, with links and asset hrefs served from here."""
    outputs = await _outputs(request, run_id)
    if "stac_item" not in outputs:
        raise HTTPException(status_code=404, detail=f"run {run_id} has no STAC item")
    try:
        body = json.loads(await asyncio.to_thread(read_url, outputs["stac_item"]))
    except (OSError, ValueError) as exc:
        raise HTTPException(status_code=502, detail=f"STAC item of run {run_id} unreadable: {' '.join(str(exc).split())}") from exc
    # this server's own links replace the stored ones; other links stay when absolute (a relative
    # one pointed next to the stored file, which is not where this copy is served from)
    keep = [
        link
        for link in body.get("links", [])
        if link.get("rel") not in {"self", "root", "parent", "collection"} and "://" in str(link.get("href", ""))
    ]
    body["links"] = [
        {"rel": "self", "href": _url(request, "stac_item", run_id=run_id), "type": "application/geo+json"},
        {"rel": "root", "href": _url(request, "stac_catalog"), "type": "application/json"},
        {"rel": "parent", "href": _url(request, "stac_catalog"), "type": "application/json"},
        *keep,
    ]
    for name, asset in body.get("assets", {}).items():
        if name in outputs:
            asset["href"] = _url(request, "stac_asset", run_id=run_id, asset=name)
    body.pop("collection", None)
    return JSONResponse(body, media_type="application/geo+json")


@router.get("/assets/{run_id}/{asset}", name="stac_asset")
async def asset_file(request: Request, run_id: int, asset: str) -> Response:
    """One file of a product (COG, quicklook or item) as published."""
    outputs = await _outputs(request, run_id)
    url = outputs.get(asset)
    if not url:
        raise HTTPException(status_code=404, detail=f"run {run_id} has no asset {asset!r}")
    try:
        data = await asyncio.to_thread(read_url, url)
    except OSError as exc:
        raise HTTPException(status_code=502, detail=f"{asset} of run {run_id} unreadable: {' '.join(str(exc).split())}") from exc
    suffix = url[url.rfind(".") :]
    return Response(data, media_type=MEDIA_TYPES.get(suffix, "application/octet-stream"))
