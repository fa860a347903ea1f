"""The OGC API, page API and STAC routes against a demo-like PostGIS, read through a reader login."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import shutil
import subprocess
import urllib.error
import urllib.request

import pystac
import pytest
import rasterio
import sqlalchemy as sa
from geojson_pydantic import FeatureCollection
from shapely.geometry import box, shape

from banet_ops.db.engine import get_engine

from .scene import MISSING_DAY, PARTIAL_DAY, TARGETS


def items(client, collection: str, **params) -> dict:
    resp = client.get(f"/ogc/collections/{collection}/items", params={"f": "geojson", **params})
    assert resp.status_code == 200, resp.text
    return resp.json()


def sql(db_url: str, query: str, **params) -> list:
    with get_engine(db_url).connect() as conn:
        return list(conn.execute(sa.text(query), params).all())


def served(client):
    """The layers of the schema the app picked for this database (web/layers.py)."""
    return client.app.state.db.schema


def test_collections_are_the_declared_layers(client):
    body = client.get("/ogc/collections").json()
    assert [c["id"] for c in body["collections"]] == [lay.id for lay in served(client).layers]
    assert [c["id"] for c in body["collections"]] == ["fire_events", "fire_events_by_run", "burned_cells", "regions", "cube_days"]
    events = client.get("/ogc/collections/fire_events").json()
    assert events["title"] == "Fire events (current)"
    assert -8.30 <= events["extent"]["spatial"]["bbox"][0][0] < -8.2  # the extent of the events, inside the region
    assert client.get("/ogc/collections/fire_event").status_code == 404  # the table's own name is not served


def test_current_events_are_valid_geojson_of_the_latest_run(client, db_url, web_scene):
    fc = items(client, "fire_events", limit=1000, region=web_scene.region.name)
    FeatureCollection.model_validate(fc)
    relation = served(client).layer("fire_events").relation
    expected = sql(db_url, f"SELECT id, area_km2 FROM {relation} WHERE region = :g ORDER BY id", g=web_scene.region.name)
    assert sorted((f["id"], f["properties"]["area_km2"]) for f in fc["features"]) == [tuple(r) for r in expected]
    assert all(shape(f["geometry"]).is_valid and f["properties"]["run_id"] in web_scene.run_ids for f in fc["features"])
    assert fc["numberMatched"] == len(expected) == 4  # one row per fire, not one per run


def test_property_bbox_and_datetime_filters(client, db_url, web_scene):
    first = web_scene.run_ids[0]
    by_run = items(client, "fire_events_by_run", run_id=first, limit=1000)
    relation = served(client).layer("fire_events_by_run").relation
    assert by_run["numberMatched"] == sql(db_url, f"SELECT count(*) FROM {relation} WHERE run_id = :r", r=first)[0][0] > 0
    # bbox around the first fire only (rows 6..22, cols 8..24 of the grid from -8.30, 40.40)
    west_box = (-8.30 + 0.06, 40.40 - 0.24, -8.30 + 0.26, 40.40 - 0.04)
    found = items(client, "fire_events", bbox=",".join(map(str, west_box)), region=web_scene.region.name)
    assert found["numberMatched"] == 1
    assert shape(found["features"][0]["geometry"]).intersects(box(*west_box))
    # burn dates of one week, on the burned cells of the region's NRT product
    week = (dt.date(2024, 8, 1), dt.date(2024, 8, 7))
    cells = items(client, "burned_cells", datetime=f"{week[0]}T00:00:00Z/{week[1]}T23:59:59Z", region=web_scene.region.name, limit=5000)
    dates = {f["properties"]["burn_date"] for f in cells["features"]}
    assert dates and all(week[0].isoformat() <= d <= week[1].isoformat() for d in dates)
    query = "SELECT count(*) FROM banet.burned_cell WHERE region = :g AND burn_date BETWEEN :a AND :b"
    count = sql(db_url, query, g=web_scene.region.name, a=week[0], b=week[1])
    assert cells["numberMatched"] == count[0][0] == len(cells["features"])


def test_paging_walks_every_feature_once(client, web_scene):
    seen, offset, pages = [], 0, 0
    while True:
        # a total order (the layer has no single key today) makes offsets stable across pages
        page = items(client, "burned_cells", region=web_scene.region.name, limit=100, offset=offset, sortby="burn_date,row,col")
        seen += [(f["properties"]["row"], f["properties"]["col"], f["properties"]["burn_date"]) for f in page["features"]]
        pages += 1
        nxt = [link for link in page["links"] if link["rel"] == "next"]
        if not nxt:
            break
        assert "offset=" in nxt[0]["href"]
        offset += 100
    assert pages > 3 and len(seen) == len(set(seen)) == page["numberMatched"]


def test_the_apps_connections_cannot_write(client, reader_url):
    pool = client.app.state.db.pool
    import asyncpg

    async def attempt() -> tuple[str, list[str]]:
        errors = []
        async with pool.acquire() as conn:
            who = await conn.fetchval("SELECT current_user || ',' || current_setting('transaction_read_only')")
            for stmt in ("INSERT INTO banet.granule (file_name, product, day) VALUES ('x', 'VNP02MOD', '2024-01-01')", "DELETE FROM banet.fire_event"):
                try:
                    await conn.execute(stmt)
                except asyncpg.PostgresError as exc:
                    errors.append(type(exc).__name__)
            # even with the read-only default lifted, the role has no write privilege
            await conn.execute("SET default_transaction_read_only = off")
            try:
                await conn.execute("DELETE FROM banet.fire_event")
            except asyncpg.PostgresError as exc:
                errors.append(type(exc).__name__)
        return who, errors

    who, errors = client.portal.call(attempt) if hasattr(client, "portal") and client.portal else asyncio.run(attempt())
    assert who == "banet_reader,on"
    assert errors == ["ReadOnlySQLTransactionError", "ReadOnlySQLTransactionError", "InsufficientPrivilegeError"]


def test_page_api_products_growth_calendar(client, web_scene):
    products = client.get("/api/products", params={"region": web_scene.region.name}).json()
    assert [p["target_date"] for p in products] == [t.isoformat() for t in TARGETS]
    assert [p["run_id"] for p in products] == list(web_scene.run_ids)
    assert products[-1]["assets"] == ["burn_date", "confidence"]
    event = items(client, "fire_events", region=web_scene.region.name, sortby="-area_km2", limit=1)["features"][0]
    growth = client.get(f"/api/events/{event['id']}/growth").json()
    events = client.get(f"/api/products/{web_scene.run_ids[-1]}/events").json()
    FeatureCollection.model_validate(events)
    assert sorted(f["id"] for f in events["features"]) == sorted(f["id"] for f in items(client, "fire_events", region=web_scene.region.name)["features"])
    first = client.get(f"/api/products/{web_scene.run_ids[0]}/events").json()["features"]
    assert len(first) == 3  # the fourth fire started after the first product
    assert len(growth) > 3 and growth[0]["date"] == event["properties"]["first_burn_date"]
    assert growth[-1]["total_km2"] == pytest.approx(event["properties"]["area_km2"], rel=1e-6)
    cal = client.get(f"/api/regions/{web_scene.region.name}/calendar").json()
    status = {d["day"]: d["status"] for d in cal["days"]}
    assert MISSING_DAY.isoformat() not in status and status[PARTIAL_DAY.isoformat()] == "partial" and len(status) == 79
    assert cal["dags"]["ingest"] == f"banet_ingest_{web_scene.region.name}"


def test_stac_catalog_walked_by_pystac(live_url, web_scene):
    catalog = pystac.Catalog.from_file(f"{live_url}/stac/catalog.json")
    # the session database also holds other tests' runs, whose files are gone: walk this scene's links
    links = {link.get_absolute_href() for link in catalog.get_item_links()}
    hrefs = [f"{live_url}/stac/items/{r}.json" for r in web_scene.run_ids]
    assert set(hrefs) <= links, sorted(links)
    mine = [pystac.Item.from_file(h) for h in hrefs]
    assert [i.get_self_href() for i in mine] == hrefs
    assert [i.properties.get("banet:target_date", i.datetime.date().isoformat()) for i in mine] == [t.isoformat() for t in TARGETS]
    with urllib.request.urlopen(mine[-1].assets["burn_date"].href) as resp:
        assert resp.headers["content-type"].startswith("image/tiff")
        with rasterio.open(io.BytesIO(resp.read())) as src:
            assert src.nodata is not None and src.crs.to_epsg() == 4326
    with pytest.raises(urllib.error.HTTPError, match="404"):
        urllib.request.urlopen(f"{live_url}/stac/assets/999999/burn_date")


def test_ogrinfo_opens_the_ogc_api(live_url, web_scene):
    if shutil.which("ogrinfo") is None:
        pytest.fail("ogrinfo missing: scripts/install.sh installs gdal-bin")
    out = subprocess.run(["ogrinfo", "-ro", "-q", f"OAPIF:{live_url}/ogc"], capture_output=True, text=True, timeout=120, check=True).stdout
    for lay in ("fire_events", "fire_events_by_run", "burned_cells", "regions", "cube_days"):
        assert f": {lay} " in out
    where = f"region='{web_scene.region.name}'"
    detail = subprocess.run(
        ["ogrinfo", "-ro", "-so", "-where", where, f"OAPIF:{live_url}/ogc", "fire_events"], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    assert "Feature Count: 4" in detail and "Multi Polygon" in detail and "last_burn_date: Date" in detail


def test_vector_tiles_of_the_events(client, web_scene):
    import morecantile

    tile = morecantile.tms.get("WebMercatorQuad").tile(-8.30 + 0.405, 40.40 - 0.445, 10)
    path = f"/ogc/collections/fire_events/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}"
    resp = client.get(path, params={"region": web_scene.region.name})
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    assert len(resp.content) > 100
    empty = client.get(path, params={"region": "NOWHERE"})
    assert empty.status_code in (200, 204) and len(empty.content) < len(resp.content)


def test_cql2_filter_and_property_selection(client, web_scene):
    fc = items(client, "fire_events", region=web_scene.region.name, filter="area_km2 > 100", properties="area_km2,first_burn_date")
    assert fc["numberMatched"] == 2
    assert all(set(f["properties"]) == {"area_km2", "first_burn_date"} and f["properties"]["area_km2"] > 100 for f in fc["features"])


def test_database_down_is_a_one_line_503_and_the_page_still_loads():
    from fastapi.testclient import TestClient

    from banet_ops.settings import Settings
    from banet_ops.web.app import create_app
    from banet_ops.web.db import DbConfig

    from .conftest import _free_port

    app = create_app(Settings(), config=DbConfig(url=f"postgresql://nobody@127.0.0.1:{_free_port()}/banet"))
    with TestClient(app) as down:
        resp = down.get("/api/products")
        assert resp.status_code == 503
        assert "could not connect to the database as a reader" in resp.json()["detail"] and "\n" not in resp.json()["detail"]
        assert down.get("/ogc/collections").status_code == 503
        assert down.get("/").status_code == 200
