"""The map inside Airflow: the plugin mounts it on the api-server, behind Airflow's authentication."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from banet_ops.settings import get_settings

DATA_ROUTES = (
    "/banet-map/",
    "/banet-map/ogc/collections",
    "/banet-map/ogc/collections/fire_events/items",
    "/banet-map/api/products",
    "/banet-map/api/regions",
    "/banet-map/tiles/tiles/WebMercatorQuad/10/487/387.png?run_id=1",
    "/banet-map/stac/catalog.json",
    "/banet-map/static/map.js",
)


@pytest.fixture(scope="module")
def airflow_api(reader_url: str, web_scene) -> Iterator[tuple[TestClient, str]]:
    """Airflow's own api-server app (plugins from plugins/), and a token of its admin user."""
    mp = pytest.MonkeyPatch()
    mp.setenv("BANET_DATABASE_URL", reader_url)
    mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "banet-map-test-" + "0" * 64)
    get_settings.cache_clear()
    from airflow import settings as airflow_settings
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.models.revoked_token import RevokedToken

    app = create_app()
    RevokedToken.__table__.create(airflow_settings.engine, checkfirst=True)  # the only metadata table token checks read
    with TestClient(app) as client:
        token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="ADMIN"))
        yield client, token
    mp.undo()
    get_settings.cache_clear()


def test_unauthenticated_requests_are_refused(airflow_api):
    client, _ = airflow_api
    for route in DATA_ROUTES:
        resp = client.get(route)
        assert resp.status_code == 401, route
    bad = client.get("/banet-map/api/products", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code in (401, 403)


def test_logged_in_user_gets_the_page_and_data_with_links_under_the_mount(airflow_api, web_scene):
    client, token = airflow_api
    auth = {"Authorization": f"Bearer {token}"}
    page = client.get("/banet-map/", headers=auth)
    assert page.status_code == 200 and '"in_airflow": true' in page.text
    collections = client.get("/banet-map/ogc/collections", headers=auth).json()
    assert all(link["href"].startswith("http://testserver/banet-map/ogc/") for link in collections["links"])
    stac = client.get("/banet-map/stac/catalog.json", headers=auth).json()
    assert f"http://testserver/banet-map/stac/items/{web_scene.run_ids[0]}.json" in [link["href"] for link in stac["links"]]
    # the UI's session cookie is enough (the page's own fetches carry it)
    client.cookies.set("_token", token)
    products = client.get("/banet-map/api/products", params={"region": web_scene.region.name})
    client.cookies.clear()
    assert [p["run_id"] for p in products.json()] == list(web_scene.run_ids)


def test_the_page_is_in_the_navigation(airflow_api):
    client, token = airflow_api
    plugins = client.get("/api/v2/plugins", headers={"Authorization": f"Bearer {token}"}).json()["plugins"]
    mine = next(p for p in plugins if p["name"] == "banet_ops")
    view = next(v for v in mine["external_views"] if v["name"] == "Burned areas")
    assert view["href"] == "/banet-map/" and view["destination"] == "nav" and view["url_route"] == "burned-areas"
    assert [a["url_prefix"] for a in mine["fastapi_apps"]] == ["/banet-map"]
