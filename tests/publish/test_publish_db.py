"""publish_product end to end against a real PostGIS and a local products root."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import sqlalchemy as sa
from rio_cogeo.cogeo import cog_validate

from banet_ops.db.engine import get_engine
from banet_ops.errors import StorageError
from banet_ops.publish import postgis as pg
from banet_ops.publish import product_keys, publish_product
from banet_ops.publish import storage as storage_mod
from banet_ops.publish.stac import validate_item
from banet_ops.regions import Region

from .helpers import SHA_A, SHA_B, blob_dates, build_product, new_region

TARGET = dt.date(2017, 10, 27)


def cells_of(url: str, region: str, product: str = "nrt") -> dict[tuple[int, int, dt.date], tuple[float, int, float]]:
    with get_engine(url).connect() as conn:
        rows = conn.execute(
            sa.text('SELECT "row", col, burn_date, confidence, run_id, area_km2 FROM banet.burned_cell WHERE region = :r AND product = :p'),
            {"r": region, "p": product},
        ).all()
    return {(r, c, d): (conf, run, area) for r, c, d, conf, run, area in rows}


def events_of(url: str, region: str, product: str = "nrt") -> list[tuple]:
    with get_engine(url).connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text(
                    "SELECT run_id, first_burn_date, last_burn_date, round(area_km2::numeric, 9), n_cells, mean_confidence, "
                    "ST_AsText(geom) FROM banet.fire_event WHERE region = :r AND product = :p ORDER BY first_burn_date, n_cells, 7"
                ),
                {"r": region, "p": product},
            ).all()
        ]


def event_ids(url: str, region: str, product: str = "nrt") -> dict[tuple[int, int], tuple[int, str, int, int]]:
    """(id, xmin, run_id, n_cells) of each stored event by its first cell in raster order."""
    with get_engine(url).connect() as conn:
        rows = conn.execute(
            sa.text(
                'SELECT (SELECT min(array["row", col]) FROM banet.burned_cell c WHERE c.region = e.region AND c.product = e.product '
                "AND c.event_id = e.id), e.id, e.xmin::text, e.run_id, e.n_cells FROM banet.fire_event e WHERE region = :r AND product = :p"
            ),
            {"r": region, "p": product},
        ).all()
    return {(a[0], a[1]): (i, x, run, n) for a, i, x, run, n in rows}


def row_versions(url: str, region: str) -> dict[tuple[int, int, dt.date], tuple[str, str]]:
    """(xmin, ctid) of each cell row: they change whenever a row is rewritten."""
    with get_engine(url).connect() as conn:
        rows = conn.execute(sa.text('SELECT "row", col, burn_date, xmin::text, ctid::text FROM banet.burned_cell WHERE region = :r'), {"r": region}).all()
    return {(r, c, d): (x, t) for r, c, d, x, t in rows}


def run_row(url: str, run_id: int) -> dict:
    with get_engine(url).connect() as conn:
        return dict(conn.execute(sa.text("SELECT * FROM banet.run WHERE id = :i"), {"i": run_id}).mappings().one())


def files_state(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_publish_rows_match_cogs_and_stac(db_url, make_settings, tmp_path):
    region = new_region()
    product = build_product(region, blob_dates(region, TARGET), target=TARGET, shas=(SHA_B, SHA_A))
    settings = make_settings(db_url)
    result = publish_product(product, settings=settings)

    keys = product_keys(product)
    root = Path(settings.resolved_products_root)
    assert keys["stac_item"].startswith(f"{region.name}/nrt/2017/2017-10-27/")
    for name in ("confidence", "burn_date"):
        assert cog_validate(result.outputs[name])[0], name
    with rasterio.open(result.outputs["burn_date"]) as ds:
        doy = ds.read(1)
        assert ds.crs.to_epsg() == 4326 and ds.dtypes[0] == "int32" and ds.nodata == -1
        assert tuple(ds.transform)[:6] == pytest.approx(region.transform)
    with rasterio.open(result.outputs["confidence"]) as ds:
        conf = ds.read(1)
        assert ds.dtypes[0] == "float32" and np.isnan(ds.nodata)

    cells = cells_of(db_url, region.name)
    assert len(cells) == result.n_burned_cells == product.n_burned > 0
    db_doy = np.zeros(region.shape, dtype=np.int32)
    db_conf = np.full(region.shape, np.nan, dtype=np.float32)
    for (r, c, d), (cf, run, _area) in cells.items():
        db_doy[r, c] = d.year * 1000 + d.timetuple().tm_yday
        db_conf[r, c] = cf
        assert run == result.run_id
    np.testing.assert_array_equal(db_doy, doy)  # every cell, burned or not
    burned = doy > 0
    np.testing.assert_array_equal(db_conf[burned], conf[burned])
    areas = region.row_cell_area_km2()
    assert result.burned_area_km2 == pytest.approx(areas[np.nonzero(burned)[0]].sum())

    with get_engine(db_url).connect() as conn:
        geom_ok = conn.execute(
            sa.text(
                # the same vertices, in the same order, as ST_MakeEnvelope over the grid (decimal arithmetic:
                # psycopg 3 sends a float as float8, so the corner is cast to numeric as a literal would be)
                'SELECT bool_and(ST_OrderingEquals(geom, ST_MakeEnvelope(CAST(:l AS numeric) + col * 0.01, CAST(:t AS numeric) - ("row" + 1) * 0.01, '
                'CAST(:l AS numeric) + (col + 1) * 0.01, CAST(:t AS numeric) - "row" * 0.01, 4326))) '
                "AND bool_and(abs(ST_Area(geom::geography) / 1e6 - area_km2) < 1e-3 * area_km2) FROM banet.burned_cell WHERE region = :r"
            ),
            {"l": region.left, "t": region.top, "r": region.name},
        ).scalar_one()
    assert geom_ok

    run = run_row(db_url, result.run_id)
    assert run["status"] == "succeeded" and run["model_key"] == f"{SHA_A}+{SHA_B}"
    assert run["model_ids"] == [f"m-{SHA_A[:6]}", f"m-{SHA_B[:6]}"]
    assert (run["n_burned_cells"], run["n_events"]) == (product.n_burned, result.n_events)
    assert run["outputs"] == result.outputs and run["software_version"]
    assert (run["tiling"], run["observed_days"]) == ("published", 61)
    assert {"publish_db_cells", "publish_db_insert", "publish_db_events", "infer_predict"} <= set(run["timings"])

    item = json.loads((root / keys["stac_item"]).read_text())
    validate_item(item)
    assert item["properties"]["banet:run_id"] == result.run_id
    assert (item["properties"]["banet:tiling"], item["properties"]["banet:observed_days"]) == ("published", 61)
    assert item["bbox"] == list(region.bbox)
    for asset in item["assets"].values():  # relative to the item: the folder can move as a whole
        assert asset["href"].startswith("./") and (root / keys["stac_item"]).parent.joinpath(asset["href"]).is_file(), asset["href"]
    from PIL import Image

    from banet_ops.publish.quicklook import quicklook_size

    with Image.open(result.outputs["quicklook"]) as im:
        assert im.format == "PNG" and im.size == quicklook_size(region.shape)
    # nothing but the four product files is left in the products root
    assert sorted(files_state(root)) == sorted(keys.values())


def test_rerun_is_idempotent(db_url, make_settings):
    region = new_region()
    product = build_product(region, blob_dates(region, TARGET, seed=3), target=TARGET)
    settings = make_settings(db_url)
    first = publish_product(product, settings=settings)
    cells, events = cells_of(db_url, region.name), events_of(db_url, region.name)
    files = files_state(Path(settings.resolved_products_root))
    versions = row_versions(db_url, region.name)
    ids = event_ids(db_url, region.name)
    second = publish_product(product, settings=settings)
    assert second.run_id == first.run_id
    assert event_ids(db_url, region.name) == ids  # same ids, rows not even rewritten
    assert second.event_changes == {"updated": 0, "unchanged": first.n_events, "created": 0, "retired": 0}
    assert cells_of(db_url, region.name) == cells
    assert row_versions(db_url, region.name) == versions  # identical rows are not rewritten
    assert events_of(db_url, region.name) == events and len(events) == first.n_events > 0
    assert files_state(Path(settings.resolved_products_root)) == files
    with get_engine(db_url).connect() as conn:
        n_runs = conn.execute(sa.text("SELECT count(*) FROM banet.run WHERE region = :r"), {"r": region.name}).scalar_one()
    assert n_runs == 1


def _state(db_url, settings, region):
    return cells_of(db_url, region.name), events_of(db_url, region.name), files_state(Path(settings.resolved_products_root))


def test_crash_after_cells_upsert_keeps_previous_state(db_url, make_settings, monkeypatch):
    region = new_region()
    settings = make_settings(db_url)
    old = build_product(region, blob_dates(region, TARGET, seed=1), target=TARGET, snapshot="s-old")
    publish_product(old, settings=settings)
    before = _state(db_url, settings, region)

    def boom(*args, **kwargs):
        raise RuntimeError("injected failure after the cells upsert")

    monkeypatch.setattr(pg.event_db, "write_events", boom)
    new = build_product(region, blob_dates(region, TARGET, seed=2), target=TARGET, snapshot="s-new")
    with pytest.raises(RuntimeError, match="injected"):
        publish_product(new, settings=settings)
    assert _state(db_url, settings, region) == before
    with get_engine(db_url).connect() as conn:
        snaps = conn.execute(sa.text("SELECT cube_snapshot, status FROM banet.run WHERE region = :r"), {"r": region.name}).all()
    assert snaps == [("s-old", "succeeded")]


def test_crash_after_events_were_matched_keeps_ids_and_rows(db_url, make_settings, monkeypatch):
    """Events updated, deleted and inserted in the transaction, then a failure: nothing of it stays."""
    region = new_region()
    settings = make_settings(db_url)
    publish_product(build_product(region, blob_dates(region, TARGET, seed=1), target=TARGET, snapshot="s-old"), settings=settings)
    before, ids = _state(db_url, settings, region), event_ids(db_url, region.name)
    real = pg.event_db.write_events

    def replace_then_fail(*args, **kwargs):
        written = real(*args, **kwargs)
        assert written.changes["created"] + written.changes["updated"] + written.changes["retired"] > 0
        raise RuntimeError("injected failure after the events were replaced")

    monkeypatch.setattr(pg.event_db, "write_events", replace_then_fail)
    new = build_product(region, blob_dates(region, TARGET, seed=2), target=TARGET, snapshot="s-new")
    with pytest.raises(RuntimeError, match="injected"):
        publish_product(new, settings=settings)
    assert _state(db_url, settings, region) == before
    assert event_ids(db_url, region.name) == ids
    # and the retry publishes normally on top of the old state
    monkeypatch.setattr(pg.event_db, "write_events", real)
    assert publish_product(new, settings=settings).n_events == len(event_ids(db_url, region.name))


def test_crash_while_writing_files_keeps_previous_state(db_url, make_settings, monkeypatch):
    region = new_region()
    settings = make_settings(db_url)
    old = build_product(region, blob_dates(region, TARGET, seed=1), target=TARGET, snapshot="s-old")
    publish_product(old, settings=settings)
    before = _state(db_url, settings, region)

    real_put = storage_mod.LocalStore.put_file

    def failing_put(self, src, key, content_type=None):
        if key.endswith("_quicklook.png"):  # both COGs are already replaced by then
            raise StorageError("injected: disk full")
        return real_put(self, src, key, content_type)

    monkeypatch.setattr(storage_mod.LocalStore, "put_file", failing_put)
    new = build_product(region, blob_dates(region, TARGET, seed=2), target=TARGET, snapshot="s-new")
    with pytest.raises(StorageError, match="disk full"):
        publish_product(new, settings=settings)
    assert _state(db_url, settings, region) == before


def test_nrt_update_semantics(db_url, make_settings):
    region = new_region()
    settings = make_settings(db_url)
    d = TARGET
    nat = np.datetime64("NaT")
    a = np.full(region.shape, nat, dtype="datetime64[D]")
    a[5, 5] = np.datetime64(d - dt.timedelta(days=10))  # dropped later, inside the later window
    a[6, 6] = np.datetime64(d - dt.timedelta(days=62))  # outside the later window: kept
    a[7, 7] = np.datetime64(d - dt.timedelta(days=20))  # re-dated one day later by the later run
    a[8, 8] = np.datetime64(d - dt.timedelta(days=5))  # kept with a new confidence
    first = publish_product(build_product(region, a, target=d, seed=1), settings=settings)

    later = d + dt.timedelta(days=5)
    b = np.full(region.shape, nat, dtype="datetime64[D]")
    b[7, 7] = np.datetime64(d - dt.timedelta(days=19))
    b[8, 8] = np.datetime64(d - dt.timedelta(days=5))
    b[9, 9] = np.datetime64(later)
    second = publish_product(build_product(region, b, target=later, seed=2), settings=settings)
    assert second.run_id != first.run_id

    cells = cells_of(db_url, region.name)
    assert {(r, c, dd): run for (r, c, dd), (_cf, run, _a) in cells.items()} == {
        (6, 6, d - dt.timedelta(days=62)): first.run_id,
        (7, 7, d - dt.timedelta(days=19)): second.run_id,
        (8, 8, d - dt.timedelta(days=5)): second.run_id,
        (9, 9, later): second.run_id,
    }
    conf_b = build_product(region, b, target=later, seed=2).confidence
    assert cells[(8, 8, d - dt.timedelta(days=5))][0] == conf_b[8, 8]
    assert second.n_deleted_cells == 2


def test_monthly_replaces_region_month(db_url, make_settings):
    region = new_region()
    settings = make_settings(db_url)
    nat = np.datetime64("NaT")
    oct1 = dt.date(2017, 10, 1)
    sep1 = dt.date(2017, 9, 1)
    sep = np.full(region.shape, nat, dtype="datetime64[D]")
    sep[1, 1] = np.datetime64("2017-09-20")
    publish_product(build_product(region, sep, mode="monthly", target=sep1), settings=settings)

    octo = np.full(region.shape, nat, dtype="datetime64[D]")
    octo[2, 2] = np.datetime64("2017-10-03")
    octo[3, 3] = np.datetime64("2017-10-31")
    r1 = publish_product(build_product(region, octo, mode="monthly", target=oct1), settings=settings)
    nrt = np.full(region.shape, nat, dtype="datetime64[D]")
    nrt[2, 2] = np.datetime64("2017-10-03")
    publish_product(build_product(region, nrt, target=TARGET), settings=settings)

    octo2 = np.full(region.shape, nat, dtype="datetime64[D]")
    octo2[4, 4] = np.datetime64("2017-10-10")
    r2 = publish_product(build_product(region, octo2, mode="monthly", target=oct1, shas=(SHA_B,)), settings=settings)
    assert r2.run_id != r1.run_id and r2.n_deleted_cells == 2
    monthly = {(r, c, d): run for (r, c, d), (_cf, run, _a) in cells_of(db_url, region.name, "monthly").items()}
    assert set(monthly) == {(1, 1, dt.date(2017, 9, 20)), (4, 4, dt.date(2017, 10, 10))}
    assert monthly[(4, 4, dt.date(2017, 10, 10))] == r2.run_id
    assert set(cells_of(db_url, region.name, "nrt")) == {(2, 2, dt.date(2017, 10, 3))}
    # the October events are those of the newer run only; September's stay
    ev = events_of(db_url, region.name, "monthly")
    assert [(e[1], e[4]) for e in ev] == [(dt.date(2017, 9, 20), 1), (dt.date(2017, 10, 10), 1)]
    assert ev[1][0] == r2.run_id


def test_fire_events_in_postgis(db_url, make_settings):
    region = new_region(rows=30, cols=40)
    settings = make_settings(db_url)
    dates = np.full(region.shape, np.datetime64("NaT"), dtype="datetime64[D]")
    dates[2:5, 2:6] = np.datetime64("2017-10-01")  # blob 1: 12 cells
    dates[4, 6] = np.datetime64("2017-10-05")
    dates[20:23, 30:32] = np.datetime64("2017-10-10")  # blob 2: 6 cells ...
    dates[23, 32] = np.datetime64("2017-10-12")  # ... plus one touching only diagonally
    res = publish_product(build_product(region, dates, target=TARGET), settings=settings)
    assert res.n_events == 2
    areas = region.row_cell_area_km2()
    with get_engine(db_url).connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT first_burn_date, last_burn_date, n_cells, area_km2, ST_IsValid(geom), ST_NumGeometries(geom), "
                "ST_Area(geom), ST_Area(geom::geography) / 1e6 FROM banet.fire_event WHERE run_id = :i ORDER BY first_burn_date"
            ),
            {"i": res.run_id},
        ).all()
    (f1, l1, n1, a1, v1, g1, deg1, geo1), (f2, l2, n2, a2, v2, g2, deg2, geo2) = rows
    assert (f1, l1, n1, g1) == (dt.date(2017, 10, 1), dt.date(2017, 10, 5), 13, 1)
    assert (f2, l2, n2, g2) == (dt.date(2017, 10, 10), dt.date(2017, 10, 12), 7, 2)
    assert v1 and v2
    assert a1 == pytest.approx(areas[2:5].sum() * 4 + areas[4])
    assert a2 == pytest.approx(areas[20:23].sum() * 2 + areas[23])
    assert deg1 == pytest.approx(13 * 1e-4) and deg2 == pytest.approx(7 * 1e-4)
    assert geo1 == pytest.approx(a1, rel=1e-3) and geo2 == pytest.approx(a2, rel=1e-3)


def test_event_ids_survive_republishing_the_window(db_url, make_settings):
    """A new cube snapshot re-publishes the same window: events keep their ids, history records the changes."""
    region = new_region(rows=30, cols=40)
    settings = make_settings(db_url)
    nat = np.datetime64("NaT")
    a = np.full(region.shape, nat, dtype="datetime64[D]")
    a[2:5, 2:6] = np.datetime64("2017-10-01")  # kept as is
    a[10:12, 20:22] = np.datetime64("2017-10-05")  # grows
    a[25, 35] = np.datetime64("2017-10-07")  # vanishes
    first = publish_product(build_product(region, a, target=TARGET, seed=1), settings=settings)
    before = event_ids(db_url, region.name)
    assert set(before) == {(2, 2), (10, 20), (25, 35)} and first.event_changes["created"] == 3

    b = a.copy()
    b[12, 20:24] = np.datetime64("2017-10-06")
    b[25, 35] = nat
    b[15, 1] = np.datetime64("2017-10-09")  # new
    conf = build_product(region, a, target=TARGET, seed=1).confidence  # same confidences where unchanged
    second = publish_product(build_product(region, b, target=TARGET, confidence=conf, snapshot="snap-2"), settings=settings)
    assert second.run_id != first.run_id
    after = event_ids(db_url, region.name)
    assert set(after) == {(2, 2), (10, 20), (15, 1)}
    assert after[(2, 2)] == before[(2, 2)]  # unchanged: not even rewritten
    assert after[(10, 20)][0] == before[(10, 20)][0] and after[(10, 20)][2:] == (second.run_id, 8)  # same id, grown
    assert after[(15, 1)][0] > max(i for i, *_ in before.values())
    assert second.event_changes == {"updated": 1, "unchanged": 1, "created": 1, "retired": 1}
    with get_engine(db_url).connect() as conn:
        history = conn.execute(
            sa.text("SELECT event_id, run_id, change, n_cells FROM banet.fire_event_version WHERE region = :r ORDER BY run_id, event_id"),
            {"r": region.name},
        ).all()
    ids = {k: v[0] for k, v in before.items()}
    assert history == [
        (ids[(2, 2)], first.run_id, "created", 12),
        (ids[(10, 20)], first.run_id, "created", 4),
        (ids[(25, 35)], first.run_id, "created", 1),
        (ids[(10, 20)], second.run_id, "updated", 8),
        (ids[(25, 35)], second.run_id, "gone", 1),
        (after[(15, 1)][0], second.run_id, "created", 1),
    ]
    # the stored events are exactly the new product's (as a fresh publish would write them)
    with get_engine(db_url).connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM banet.fire_event WHERE region = :r"), {"r": region.name}).scalar_one()
    assert n == 3 and second.n_events == 3


def test_region_row_is_inserted_and_a_different_grid_is_refused(db_url, make_settings):
    from banet_ops.errors import RegionError

    region = new_region()
    settings = make_settings(db_url)
    publish_product(build_product(region, blob_dates(region, TARGET), target=TARGET), settings=settings)
    with get_engine(db_url).connect() as conn:
        n_rows, n_cols, px = conn.execute(sa.text("SELECT n_rows, n_cols, pixel_size FROM banet.region WHERE name = :n"), {"n": region.name}).one()
    assert (n_rows, n_cols, px) == (*region.shape, 0.01)
    moved = Region(name=region.name, bbox=(region.left + 1, region.bottom, region.right + 1, region.top), pixel_size=0.01)
    with pytest.raises(RegionError, match="registered"):
        publish_product(build_product(moved, blob_dates(moved, TARGET), target=TARGET), settings=settings)


def test_publish_to_s3(db_url, make_settings, s3_bucket, tmp_path):
    from banet_ops.publish.storage import open_store

    region = new_region()
    product = build_product(region, blob_dates(region, TARGET, seed=5), target=TARGET)
    root = f"s3://{s3_bucket}/products"
    result = publish_product(product, settings=make_settings(db_url, root))
    store = open_store(root)
    keys = product_keys(product)
    assert result.outputs == {name: f"{root}/{key}" for name, key in keys.items()}
    assert store.list() == sorted(keys.values())  # no staging or backup objects left behind
    item = json.loads(store.get_bytes(keys["stac_item"]))
    validate_item(item)
    for asset in item["assets"].values():
        key = asset["href"].removeprefix(f"{root}/")
        assert asset["href"].startswith("s3://") and store.exists(key)
    local = tmp_path / "burn.tif"
    local.write_bytes(store.get_bytes(keys["burn_date"]))
    assert cog_validate(str(local))[0]
    with rasterio.open(local) as ds:
        np.testing.assert_array_equal(ds.read(1), product.burn_yyyyddd)
    assert [lk["href"] for lk in item["links"] if lk["rel"] == "self"] == [result.outputs["stac_item"]]
    head = store.client.head_object(Bucket=s3_bucket, Key=f"products/{keys['confidence']}")
    assert head["ContentType"].startswith("image/tiff")


def test_crash_while_rendering_files_keeps_previous_state(db_url, make_settings, monkeypatch):
    from banet_ops.publish import cog

    region = new_region()
    settings = make_settings(db_url)
    publish_product(build_product(region, blob_dates(region, TARGET, seed=1), target=TARGET), settings=settings)
    before = _state(db_url, settings, region)

    def broken(path, product):
        path.write_bytes(b"II*\x00half a tiff")
        raise StorageError("injected: COG writer failed")

    monkeypatch.setattr(cog, "write_burn_date_cog", broken)
    with pytest.raises(StorageError, match="COG writer"):
        publish_product(build_product(region, blob_dates(region, TARGET, seed=2), target=TARGET, snapshot="s2"), settings=settings)
    assert _state(db_url, settings, region) == before


def test_empty_product_clears_the_window(db_url, make_settings):
    region = new_region()
    settings = make_settings(db_url)
    publish_product(build_product(region, blob_dates(region, TARGET, seed=4), target=TARGET), settings=settings)
    assert cells_of(db_url, region.name)
    empty = np.full(region.shape, np.datetime64("NaT"), dtype="datetime64[D]")
    res = publish_product(build_product(region, empty, target=TARGET, snapshot="s-empty"), settings=settings)
    assert (res.n_burned_cells, res.n_events) == (0, 0) and res.n_deleted_cells > 0
    assert cells_of(db_url, region.name) == {} and events_of(db_url, region.name) == []
    assert cog_validate(res.outputs["burn_date"])[0]


def test_next_run_updates_in_place_and_a_concurrent_change_is_retryable(db_url, make_settings, monkeypatch):
    from banet_ops.errors import DatabaseUnavailableError

    region = new_region()
    settings = make_settings(db_url)
    dates = blob_dates(region, TARGET, seed=6)
    first = publish_product(build_product(region, dates, target=TARGET, seed=1), settings=settings)
    before = _state(db_url, settings, region)
    keys_before = set(before[0])

    # another writer removes a cell between the publisher's read of the scope and its update
    real = pg.fetch_scope

    def read_then_lose_a_row(cur, product):
        rows = real(cur, product)
        cur.execute("DELETE FROM banet.burned_cell WHERE ctid = (SELECT ctid FROM banet_internal.burned_cell_y2017 WHERE region = %s LIMIT 1)", (region.name,))
        return rows

    monkeypatch.setattr(pg, "fetch_scope", read_then_lose_a_row)
    with pytest.raises(DatabaseUnavailableError, match="changed concurrently"):
        publish_product(build_product(region, dates, target=TARGET, seed=2, snapshot="s2"), settings=settings)
    assert _state(db_url, settings, region) == before
    monkeypatch.undo()

    # the same cells re-estimated by a new run: every row updated, none deleted or inserted
    second = publish_product(build_product(region, dates, target=TARGET, seed=2, snapshot="s2"), settings=settings)
    cells = cells_of(db_url, region.name)
    assert set(cells) == keys_before and second.n_deleted_cells == 0
    assert {run for _conf, run, _area in cells.values()} == {second.run_id} != {first.run_id}
