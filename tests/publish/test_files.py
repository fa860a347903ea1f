"""The files of a product without a database: COGs, quicklook, STAC item, fire events."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re

import numpy as np
import pytest
import rasterio
import shapely
from PIL import Image
from rio_cogeo.cogeo import cog_validate

from banet_ops.errors import ValidationError
from banet_ops.product import ModelRef
from banet_ops.publish import validate_product
from banet_ops.publish.cog import write_burn_date_cog, write_confidence_cog
from banet_ops.publish.events import fire_events
from banet_ops.publish.postgis import effective_window
from banet_ops.publish.quicklook import quicklook_size, render_quicklook
from banet_ops.publish.stac import COG_MEDIA_TYPE, AssetRef, build_item, validate_item

from .helpers import SHA_A, SHA_B, blob_dates, build_product, new_region

TARGET = dt.date(2017, 10, 27)


def test_cogs_are_valid_and_hold_the_product(tmp_path):
    region = new_region(rows=600, cols=700)  # larger than one 512 block: overviews are built
    product = build_product(region, blob_dates(region, TARGET, n_blobs=30), target=TARGET)
    conf_path, doy_path = tmp_path / "c.tif", tmp_path / "d.tif"
    write_confidence_cog(conf_path, product)
    write_burn_date_cog(doy_path, product)
    for path in (conf_path, doy_path):
        valid, errors, _warnings = cog_validate(str(path))
        assert valid, errors
    with rasterio.open(conf_path) as ds:
        assert ds.crs.to_epsg() == 4326 and ds.dtypes[0] == "float32" and np.isnan(ds.nodata)
        assert ds.overviews(1), "expected internal overviews"
        assert ds.compression is not None
        np.testing.assert_array_equal(ds.read(1), product.confidence)
        assert ds.tags()["BANET_REGION"] == region.name
        assert ds.tags()["BANET_TILING"] == "published" and ds.tags()["BANET_OBSERVED_DAYS"] == "61"
    with rasterio.open(doy_path) as ds:
        assert ds.dtypes[0] == "int32" and ds.nodata == -1 and ds.tags()["ENCODING"] == "YYYYDDD"
        assert ds.transform.almost_equals(region.affine())
        doy = ds.read(1)
        np.testing.assert_array_equal(doy, product.burn_yyyyddd)
    expected = np.array([(lambda d: d.year * 1000 + d.timetuple().tm_yday)(d.astype(dt.date)) for d in product.burn_date[product.burned]])
    np.testing.assert_array_equal(doy[product.burned], expected)
    assert (doy[~product.burned] == 0).all()


def test_cogs_tell_unobserved_from_unburned_and_burned_across_a_new_year(tmp_path):
    """A window from December into January: unambiguous dates; NoData only where nothing was observed."""
    region = new_region(rows=20, cols=20)
    dates = np.full(region.shape, np.datetime64("NaT"), dtype="datetime64[D]")
    dates[2, 2], dates[2, 3], dates[2, 4] = np.datetime64("2023-12-30"), np.datetime64("2023-12-31"), np.datetime64("2024-01-02")
    product = build_product(region, dates, target=dt.date(2024, 1, 20))
    product.observed = np.ones(region.shape, dtype=bool)
    product.observed[10:, 10:] = False  # never seen in the window (say, always cloudy)
    write_confidence_cog(tmp_path / "c.tif", product)
    write_burn_date_cog(tmp_path / "d.tif", product)
    with rasterio.open(tmp_path / "d.tif") as ds:
        band, mask = ds.read(1), ds.read_masks(1)
    assert band[2, 2:5].tolist() == [2023364, 2023365, 2024002]
    assert band[0, 0] == 0 and mask[0, 0] == 255  # observed, not burned: a value
    assert band[15, 15] == -1 and mask[15, 15] == 0  # not observed: NoData
    assert (mask == 0).sum() == 100
    with rasterio.open(tmp_path / "c.tif") as ds:
        conf, cmask = ds.read(1), ds.read_masks(1)
    assert np.isnan(conf[15, 15]) and cmask[15, 15] == 0 and np.isfinite(conf[0, 0]) and cmask[0, 0] == 255
    product.burned[15, 15], product.burn_date[15, 15] = True, np.datetime64("2024-01-05")
    with pytest.raises(ValidationError, match="observed"):
        validate_product(product)


def test_quicklook_png(tmp_path):
    for rows, cols in ((60, 80), (300, 100)):
        region = new_region(rows=rows, cols=cols)
        product = build_product(region, blob_dates(region, TARGET), target=TARGET)
        path = tmp_path / f"q{rows}.png"
        render_quicklook(path, product)
        with Image.open(path) as im:
            assert im.format == "PNG" and im.size == quicklook_size(region.shape)
            pixels = np.asarray(im.convert("RGB"))
        # the burn-date colours are there (saturated pixels), not only the grey background
        sat = pixels.max(axis=2).astype(int) - pixels.min(axis=2).astype(int)
        assert (sat > 60).sum() > 100
    # no burned cell and no NIR still renders
    empty = build_product(region, np.full(region.shape, np.datetime64("NaT"), dtype="datetime64[D]"), target=TARGET)
    empty.nir = None
    render_quicklook(tmp_path / "empty.png", empty)
    assert Image.open(tmp_path / "empty.png").size == quicklook_size(region.shape)


def _item(product):
    refs = {name: AssetRef(name, f"/x/{name}.tif", COG_MEDIA_TYPE, ("data",), name) for name in ("confidence", "burn_date", "quicklook")}
    return build_item(
        product,
        effective_window=effective_window(product),
        self_href="/x/item.json",
        run_id=7,
        stats={"n_burned_cells": product.n_burned},
        **refs,
    )


def test_stac_item_structure():
    region = new_region()
    product = build_product(region, blob_dates(region, TARGET), target=TARGET)
    item = _item(product)
    json.dumps(item)  # JSON-ready
    assert item["id"] == f"banet-{region.name}-nrt-2017-10-27"
    assert item["properties"]["start_datetime"] == "2017-08-25T00:00:00Z"  # the window's first day
    assert item["properties"]["end_datetime"] == "2017-10-27T23:59:59Z"
    assert item["properties"]["banet:burn_dates"] == ["2017-08-26", "2017-10-27"]  # NRT: the first day is never a burn date
    assert item["properties"]["proj:code"] == "EPSG:4326"
    assert item["properties"]["proj:shape"] == [60, 80]
    assert set(item["assets"]) == {"confidence", "burn_date", "quicklook"}
    assert item["assets"]["burn_date"]["raster:bands"][0].items() >= {"nodata": -1, "data_type": "int32", "unit": "YYYYDDD"}.items()
    import pystac

    assert pystac.Item.from_dict(item).id == item["id"]
    monthly = build_product(region, np.full(region.shape, np.datetime64("NaT"), dtype="datetime64[D]"), mode="monthly", target=dt.date(2017, 10, 1))
    m = _item(monthly)
    assert m["id"].endswith("monthly-2017-10")
    assert (m["properties"]["start_datetime"], m["properties"]["end_datetime"]) == ("2017-09-15T00:00:00Z", "2017-11-17T23:59:59Z")
    assert m["properties"]["banet:burn_dates"] == ["2017-10-01", "2017-10-31"]


def test_stac_links_are_relative_locally_and_absolute_on_s3():
    region = new_region()
    product = build_product(region, blob_dates(region, TARGET), target=TARGET, shas=(SHA_A, SHA_B))
    product.models[1] = ModelRef(sha256=SHA_B, path="/weights/adhoc.pth", model_id=None)  # a file not in the registry
    local = _item(product)
    assert {a["href"] for a in local["assets"].values()} == {"./confidence.tif", "./burn_date.tif", "./quicklook.tif"}
    assert not [lk for lk in local["links"] if lk["rel"] == "self"] and not any(lk["href"].startswith("/") for lk in local["links"])
    props = local["properties"]
    assert props["license"] == "CC-BY-4.0" and {"banet-ops", "NASA LAADS DAAC", "NASA FIRMS"} <= {p["name"] for p in props["providers"]}
    assert props["banet:model_ids"] == [f"m-{SHA_A[:6]}", f"sha256:{SHA_B[:12]}"]
    assert props["banet:models"] == [{"id": f"m-{SHA_A[:6]}", "sha256": SHA_A, "file": f"{SHA_A[:6]}.pth"},
                                     {"id": None, "sha256": SHA_B, "file": "adhoc.pth"}]  # fmt: skip
    refs = {name: AssetRef(name, f"s3://bucket/p/{name}.tif", COG_MEDIA_TYPE, ("data",), name) for name in ("confidence", "burn_date", "quicklook")}
    remote = build_item(product, effective_window=effective_window(product), self_href="s3://bucket/p/item.json", run_id=7, stats={},
                        relative=False, **refs)  # fmt: skip
    assert remote["assets"]["confidence"]["href"] == "s3://bucket/p/confidence.tif"
    assert [lk["href"] for lk in remote["links"] if lk["rel"] == "self"] == ["s3://bucket/p/item.json"]


def test_stac_items_validate_offline_against_the_shipped_schemas(monkeypatch):
    """No network: the core schemas come with pystac, the extension schemas with this repository."""
    import urllib.request

    from banet_ops.publish import stac

    def no_network(*args, **kwargs):
        raise AssertionError("schema fetched from the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    stac._validator.cache_clear()
    region = new_region()
    item = _item(build_product(region, blob_dates(region, TARGET), target=TARGET))
    assert set(item["stac_extensions"]) == set(stac.EXTENSION_SCHEMAS)
    validate_item(item)
    item["stac_extensions"].append("https://stac-extensions.github.io/eo/v2.0.0/schema.json")
    with pytest.raises(ValidationError, match="schemas ship"):
        validate_item(item)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("type",), "Collection", "description"),
        (("bbox",), [1, 2, 3], "bbox"),
        (("bbox",), [5, 0, 1, 1], "west <= east"),
        (("geometry", "coordinates"), [[[0, 0], [1, 0], [1, 1], [0, 1]]], "enclosing the geometry"),
        (("properties", "start_datetime"), "yesterday", "at /properties/start_datetime"),
        (("properties", "end_datetime"), "2000-01-01T00:00:00Z", "start_datetime <= end_datetime"),
        (("properties", "license"), "", "at /properties/license"),
        (("assets", "confidence", "href"), "", "at /assets/confidence/href"),
        (("assets", "quicklook", "type"), None, "at /assets/quicklook/type"),
    ],
)
def test_stac_validator_rejects_broken_items(path, value, message):
    region = new_region()
    item = copy.deepcopy(_item(build_product(region, blob_dates(region, TARGET), target=TARGET)))
    validate_item(item)
    target = item
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValidationError, match=message):
        validate_item(item)
    item2 = copy.deepcopy(_item(build_product(region, blob_dates(region, TARGET), target=TARGET)))
    item2["properties"].pop("datetime")
    item2["properties"]["datetime"] = None
    validate_item(item2)  # start/end suffice
    item2["properties"].pop("start_datetime")
    with pytest.raises(ValidationError, match="datetime"):
        validate_item(item2)


def _dates(region, cells):
    out = np.full(region.shape, np.datetime64("NaT"), dtype="datetime64[D]")
    for (r, c), d in cells.items():
        out[r, c] = np.datetime64(d)
    return out


def test_events_two_blobs_and_diagonal_touch():
    region = new_region(rows=20, cols=20)
    cells = {(1, 1): "2017-10-01", (1, 2): "2017-10-02", (2, 1): "2017-10-03"}  # blob A
    cells |= {(10, 10): "2017-10-05", (11, 11): "2017-10-07", (12, 12): "2017-10-06"}  # diagonal chain: one event
    cells |= {(10, 15): "2017-10-09"}  # 3 columns from the chain: separate
    product = build_product(region, _dates(region, cells), target=TARGET)
    events = fire_events(product)
    assert len(events) == 3
    by_first = {e.first_burn_date: e for e in events}
    a, chain, single = by_first[dt.date(2017, 10, 1)], by_first[dt.date(2017, 10, 5)], by_first[dt.date(2017, 10, 9)]
    assert (a.n_cells, a.last_burn_date) == (3, dt.date(2017, 10, 3))
    assert (chain.n_cells, chain.last_burn_date) == (3, dt.date(2017, 10, 7))
    areas = region.row_cell_area_km2()
    assert a.area_km2 == pytest.approx(2 * areas[1] + areas[2], rel=1e-12)
    assert chain.area_km2 == pytest.approx(areas[10] + areas[11] + areas[12], rel=1e-12)
    assert single.area_km2 == pytest.approx(areas[10], rel=1e-12)
    conf = product.confidence
    assert a.mean_confidence == pytest.approx(float(np.mean([conf[1, 1], conf[1, 2], conf[2, 1]])))
    geom = shapely.from_geojson(chain.geojson)
    assert geom.geom_type == "MultiPolygon" and len(geom.geoms) == 3 and geom.is_valid
    assert geom.area == pytest.approx(3e-4)
    minx, miny, maxx, maxy = geom.bounds
    assert (minx, maxy) == pytest.approx((region.left + 0.10, region.top - 0.10))
    assert (maxx, miny) == pytest.approx((region.left + 0.13, region.top - 0.13))
    assert shapely.from_geojson(a.geojson).area == pytest.approx(3e-4)


def test_events_with_a_hole_are_valid():
    region = new_region(rows=10, cols=10)
    dates = np.full(region.shape, np.datetime64("NaT"), dtype="datetime64[D]")
    dates[2:7, 2:7] = np.datetime64("2017-10-01")
    dates[4, 4] = np.datetime64("NaT")  # unburned island
    (event,) = fire_events(build_product(region, dates, target=TARGET))
    geom = shapely.from_geojson(event.geojson)
    assert geom.is_valid and event.n_cells == 24 and geom.area == pytest.approx(24e-4)
    assert fire_events(build_product(region, np.full(region.shape, np.datetime64("NaT"), dtype="datetime64[D]"), target=TARGET)) == []


def test_events_are_numbered_by_their_first_cell():
    region = new_region(rows=12, cols=12)
    dates = np.full(region.shape, np.datetime64("NaT"), dtype="datetime64[D]")
    dates[2:6, 4] = np.datetime64("2017-10-03")  # event B: first burns on 10-03 ...
    dates[6, 3] = np.datetime64("2017-10-04")  # ... joined diagonally by a cell left of it
    dates[1, 8:11] = np.datetime64("2017-10-02")  # event A: first burns on 10-02
    dates[9, 0] = np.datetime64("2017-10-05")  # event C: one cell
    events = fire_events(build_product(region, dates, target=TARGET))
    assert [(e.label, e.first_burn_date.day, e.n_cells) for e in events] == [(0, 2, 3), (1, 3, 5), (2, 5, 1)]


def test_product_validation():
    region = new_region()
    good = build_product(region, blob_dates(region, TARGET), target=TARGET)
    validate_product(good)
    edge = _dates(region, {(0, 0): good.window_start})  # the window's first day is discarded for NRT
    with pytest.raises(ValidationError, match="effective window"):
        validate_product(build_product(region, edge, target=TARGET))
    monthly = _dates(region, {(0, 0): dt.date(2017, 9, 30)})
    with pytest.raises(ValidationError, match=re.escape("2017-10-01..2017-10-31")):
        validate_product(build_product(region, monthly, mode="monthly", target=dt.date(2017, 10, 1)))
    bad_sha = build_product(region, blob_dates(region, TARGET), target=TARGET, shas=("XYZ",))
    with pytest.raises(ValidationError, match="sha256"):
        validate_product(bad_sha)
    missing = build_product(region, blob_dates(region, TARGET), target=TARGET)
    missing.burn_date[missing.burned.nonzero()[0][0], missing.burned.nonzero()[1][0]] = np.datetime64("NaT")
    with pytest.raises(ValidationError, match="burn date"):
        validate_product(missing)
