"""Raster tiles of the product COGs: colour map applied, NoData transparent, only known products."""

from __future__ import annotations

import io

import morecantile
import numpy as np
import pytest
from PIL import Image
from rio_tiler.colormap import cmap

TMS = morecantile.tms.get("WebMercatorQuad")


def png(client, tile: morecantile.Tile, **params) -> np.ndarray:
    resp = client.get(f"/tiles/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png", params=params)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(resp.content)).convert("RGBA"))


def colours(name: str) -> set[tuple[int, int, int]]:
    return {tuple(v[:3]) for v in cmap.get(name).values()}


def pixel_lons(tile: morecantile.Tile, width: int) -> np.ndarray:
    b = TMS.bounds(tile)
    return b.left + (np.arange(width) + 0.5) * (b.right - b.left) / width


def test_burn_date_tile_uses_the_colour_map_and_unburned_is_transparent(client, web_scene):
    # as the page asks: the product's window as colour scale, colour map banet_burn
    product = client.get("/api/products", params={"region": web_scene.region.name}).json()[-1]
    rescale = ",".join(map(str, product["burn_date_rescale"]))
    # fire 2 (row 44, col 40 of the grid from -8.30, 40.40) and unburned land around it
    tile = TMS.tile(-8.30 + 0.405, 40.40 - 0.445, 11)
    img = png(client, tile, run_id=product["run_id"], asset="burn_date", colormap_name="banet_burn", rescale=rescale)
    alpha = img[..., 3]
    assert set(np.unique(alpha)) == {0, 255}
    opaque = img[alpha == 255][:, :3]
    assert 0.05 < len(opaque) / alpha.size < 0.95
    assert {tuple(p) for p in opaque} <= colours("plasma")
    assert len({tuple(p) for p in opaque}) > 5  # the fire spread over days: several colours


def test_confidence_tile_nodata_strip_is_transparent(client, web_scene):
    # the left 3 columns of the grid (lon < -8.27) have NaN confidence (NoData)
    tile = TMS.tile(-8.275, 40.0, 14)
    img = png(client, tile, run_id=web_scene.run_ids[-1], asset="confidence", colormap_name="viridis", rescale="0,1")
    lons = pixel_lons(tile, img.shape[1])
    inside = lons > -8.30
    nodata = inside & (lons < -8.2705)
    valid = lons > -8.2695
    assert nodata.any() and valid.any()
    assert (img[:, nodata, 3] == 0).all()
    assert (img[:, valid, 3] == 255).all()
    assert {tuple(p) for p in img[:, valid, :3].reshape(-1, 3)} <= colours("viridis")


def test_tiles_only_of_known_products(client, web_scene):
    tile = TMS.tile(-7.9, 40.0, 10)
    path = f"/tiles/tiles/WebMercatorQuad/{tile.z}/{tile.x}/{tile.y}.png"
    assert client.get(path, params={"run_id": 999999, "asset": "burn_date"}).status_code == 404
    assert client.get(path, params={"url": "/etc/passwd"}).status_code == 422  # no client-given dataset
    assert client.get(path, params={"run_id": web_scene.run_ids[0], "asset": "quicklook"}).status_code == 422
    far = TMS.tile(20.0, 50.0, 10)
    resp = client.get(f"/tiles/tiles/WebMercatorQuad/10/{far.x}/{far.y}.png", params={"run_id": web_scene.run_ids[0]})
    assert resp.status_code == 404


@pytest.mark.parametrize("asset", ["burn_date", "confidence"])
def test_tilejson_bounds_are_the_region(client, web_scene, asset):
    body = client.get("/tiles/WebMercatorQuad/tilejson.json", params={"run_id": web_scene.run_ids[0], "asset": asset}).json()
    assert body["bounds"] == pytest.approx([-8.30, 39.76, -7.66, 40.40], abs=1e-6)
