"""MCD64A1 reader, synthetic HDF4 tiles, reprojection to the region grid and the label cube."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest

from banet_ops.errors import DataFormatError, NotFoundError
from banet_ops.mcd64 import reader
from banet_ops.mcd64.sinusoidal import (
    PIXEL_SIZE_500M,
    SINU_PROJ4,
    SinuTile,
    lonlat_to_sinu,
    sinu_to_lonlat,
    tiles_for_bbox,
)
from banet_ops.mcd64.synthetic import write_hdf_tile, write_mcd64a1
from banet_ops.regions import Region

REGION = Region(name="T", bbox=(-8.3, 39.8, -7.8, 40.3), pixel_size=0.01)  # crosses the h17v04/h17v05 edge at 40°N


def _truth() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    bd = np.full(REGION.shape, np.datetime64("NaT"), dtype="datetime64[D]")
    bd[5:25, 5:30] = np.datetime64("2020-08-03")
    bd[12:20, 30:44] = np.datetime64("2020-08-17")
    bd[30:40, 10:20] = np.datetime64("2020-08-31")
    bd[42:46, 2:6] = np.datetime64("2020-07-20")  # another month: unburned in August
    water = np.zeros(REGION.shape, bool)
    water[40:50, 40:50] = True
    unmapped = np.zeros(REGION.shape, bool)
    unmapped[0:4, 40:50] = True
    return bd, water, unmapped


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    root = tmp_path_factory.mktemp("mirror")
    bd, water, unmapped = _truth()
    files = write_mcd64a1(root, REGION, bd, [(2020, 8)], water=water, unmapped=unmapped)
    return root, files


def test_sinusoidal_math_matches_proj() -> None:
    from pyproj import Transformer

    tr = Transformer.from_crs("EPSG:4326", SINU_PROJ4, always_xy=True)
    lon = np.array([-179.0, -8.2, 0.0, 35.5, 120.0])
    lat = np.array([-60.0, 40.1, 0.0, -12.3, 71.0])
    x, y = lonlat_to_sinu(lon, lat)
    px, py = tr.transform(lon, lat)
    np.testing.assert_allclose(x, px, atol=1e-3)
    np.testing.assert_allclose(y, py, atol=1e-3)
    back_lon, back_lat = sinu_to_lonlat(x, y)
    np.testing.assert_allclose(back_lon, lon, atol=1e-9)
    np.testing.assert_allclose(back_lat, lat, atol=1e-9)
    assert SinuTile(17, 4).upper_left == pytest.approx((-1111950.519667, 5559752.598333), abs=1e-3)


@pytest.mark.parametrize(
    ("bbox", "expected"),
    [
        ((-8.3, 39.8, -7.8, 40.3), {"h17v04", "h17v05"}),
        ((30.2, -1.0, 30.8, 1.0), {"h21v08", "h21v09"}),
        ((-9.5, 36.5, -6.2, 42.0), {"h17v04", "h17v05"}),
    ],
)
def test_tile_selection_known_boxes(bbox: tuple[float, float, float, float], expected: set[str]) -> None:
    assert {t.name for t in tiles_for_bbox(bbox)} == expected


@pytest.mark.parametrize("bbox", [(-169.0, 56.0, -129.0, 72.0), (113.0, -27.0, 154.0, -10.0), (-58.0, -20.0, -44.0, -5.0), (-2.0, -3.0, 3.0, 4.0)])
def test_tile_selection_equals_brute_force(bbox: tuple[float, float, float, float]) -> None:
    left, bottom, right, top = bbox
    lon, lat = np.meshgrid(np.linspace(left, right, 1200), np.linspace(bottom, top, 1200))
    x, y = lonlat_to_sinu(lon, lat)
    tile_size = 1111950.5197665554
    h = np.floor((x + 18 * tile_size) / tile_size).astype(int)
    v = np.floor((9 * tile_size - y) / tile_size).astype(int)
    brute = {f"h{code // 100:02d}v{code % 100:02d}" for code in np.unique(h * 100 + np.minimum(v, 17))}
    assert {t.name for t in tiles_for_bbox(bbox)} == brute


def test_synthetic_tile_has_the_real_structure(mirror: tuple[Path, list[Path]]) -> None:
    from pyhdf.SD import SD, SDC

    root, files = mirror
    assert sorted(f.name for f in files) == [
        "MCD64A1.A2020214.h17v04.061.2020245000000.hdf",
        "MCD64A1.A2020214.h17v05.061.2020245000000.hdf",
    ]
    assert files[0].parent == root / "61" / "MCD64A1" / "2020" / "214"
    assert files[0].read_bytes()[:4] == b"\x0e\x03\x13\x01"  # HDF4 magic
    sd = SD(str(files[0]), SDC.READ)
    try:
        ds = sd.datasets()
        types = {name: ds[name][2] for name in reader.SDS_NAMES}
        assert types == {"Burn Date": SDC.INT16, "Burn Date Uncertainty": SDC.UINT8, "QA": SDC.UINT8, "First Day": SDC.INT16, "Last Day": SDC.INT16}
        assert all(tuple(ds[name][1]) == (2400, 2400) for name in reader.SDS_NAMES)
        assert ds["Burn Date"][0] == ("YDim:MOD_Grid_Monthly_500m_DB_BA", "XDim:MOD_Grid_Monthly_500m_DB_BA")
        meta = sd.attributes()["StructMetadata.0"]
        grid, ul, lr, xdim, ydim = reader.parse_struct_metadata(meta, "x")
        assert grid == "MOD_Grid_Monthly_500m_DB_BA" and (xdim, ydim) == (2400, 2400)
        assert ul == pytest.approx(SinuTile(17, 4).upper_left, abs=1e-5)
        assert lr == pytest.approx(SinuTile(17, 4).lower_right, abs=1e-5)
        assert "Projection=GCTP_SNSOID" in meta
        attrs = sd.select("Burn Date").attributes()
        assert attrs["water"] == -2 and attrs["unmapped"] == -1
    finally:
        sd.end()


def test_reader_values_and_encodings(mirror: tuple[Path, list[Path]]) -> None:
    _, files = mirror
    tiles = [reader.read_hdf_tile(f) for f in files]
    bd = np.concatenate([t.burn_date.ravel() for t in tiles])
    qa = np.concatenate([t.qa.ravel() for t in tiles])
    unc = np.concatenate([t.uncertainty.ravel() for t in tiles])
    first = np.concatenate([t.first_day.ravel() for t in tiles])
    last = np.concatenate([t.last_day.ravel() for t in tiles])
    assert tiles[0].burn_date.dtype == np.int16 and tiles[0].qa.dtype == np.uint8
    assert set(np.unique(bd)) == {-2, -1, 0, 214 + 2, 214 + 16, 214 + 30}  # Aug 3, 17, 31; July fire absent
    assert np.all(qa[bd == -2] & 1 == 0) and np.all(qa[bd >= 0] & 1 == 1)  # bit 0 land/water
    assert np.all(qa[bd == -1] & 2 == 0) and np.all(qa[bd >= 0] & 2 == 2)  # bit 1 valid data
    burned = bd > 0
    assert np.all(unc[burned] > 0) and np.all(unc[~burned] == 0)
    assert np.all((first[burned] <= bd[burned]) & (bd[burned] <= last[burned]))
    window = reader.read_hdf_tile(files[0], (slice(2300, 2400), slice(10, 50)))
    np.testing.assert_array_equal(window.burn_date, tiles[0].burn_date[2300:2400, 10:50])


def test_bad_files_get_clear_errors(tmp_path: Path, mirror: tuple[Path, list[Path]]) -> None:
    _, files = mirror
    bad = tmp_path / files[0].name
    bad.write_bytes(b"<html>login</html>")
    with pytest.raises(DataFormatError, match=bad.name):
        reader.read_hdf_tile(bad)
    moved = tmp_path / files[0].name.replace("h17v04", "h18v04")
    moved.write_bytes(files[0].read_bytes())
    with pytest.raises(DataFormatError, match="UpperLeftPointMtrs"):
        reader.read_hdf_tile(moved)
    with pytest.raises(DataFormatError, match="MCD64A1 file name"):
        reader.parse_hdf_name("MCD64A1.A2020214.h17v04.061.hdf")
    short = tmp_path / "MCD64A1.A2020214.h17v04.061.2020245000000.hdf"
    write_hdf_tile(short, SinuTile(17, 4), 2020, 8, {"Burn Date": np.zeros((2400, 2400), np.int16)})
    with pytest.raises(DataFormatError, match="missing"):
        reader.read_hdf_tile(short)


def test_labels_values_masks_and_area_conservation(mirror: tuple[Path, list[Path]]) -> None:
    _, files = mirror
    labels = reader.labels_from_hdf(REGION, 2020, 8, files)
    bd, _, _ = _truth()
    assert labels.bafrac.shape == (31, 50, 50)
    # interior cells of each fire burn entirely on their day
    assert labels.bafrac[2, 10, 10] == pytest.approx(1.0)
    assert labels.bafrac[16, 15, 35] == pytest.approx(1.0)
    assert labels.bafrac[30, 35, 15] == pytest.approx(1.0)
    assert np.nansum(labels.bafrac[:, 43:45, 3:5]) == 0  # July fire
    assert labels.mask[45, 45] == reader.MASK_WATER and labels.mask[1, 45] == reader.MASK_UNMAPPED and labels.mask[10, 10] == reader.MASK_VALID
    # only August days carry burned fraction, never more than 1 per cell
    total = np.nansum(labels.bafrac, axis=0)
    assert total.max() <= 1 + 1e-6
    assert set(np.nonzero(np.nansum(labels.bafrac, axis=(1, 2)))[0]) == {2, 16, 30}
    # area: burned 500 m pixels (sinusoidal is equal-area) vs Σ bafrac × ellipsoidal cell area
    n_pixels = sum(int((reader.read_hdf_tile(f).burn_date > 0).sum()) for f in files)
    pixel_area_km2 = PIXEL_SIZE_500M**2 / 1e6
    assert labels.burned_area_km2() == pytest.approx(n_pixels * pixel_area_km2, rel=0.01)
    # and vs the truth on the region grid
    truth_km2 = float((((bd >= np.datetime64("2020-08-01")) & ~np.isnat(bd)) * REGION.row_cell_area_km2()[:, None]).sum())
    assert labels.burned_area_km2() == pytest.approx(truth_km2, rel=0.01)


def test_regions_sharing_a_tile_keep_each_others_pixels(tmp_path: Path) -> None:
    west = Region(name="W", bbox=(-8.3, 40.5, -8.0, 40.8), pixel_size=0.01)  # both inside h17v04
    east = Region(name="E", bbox=(-7.9, 40.5, -7.6, 40.8), pixel_size=0.01)
    fires = {}
    for region, (r, c) in ((west, (5, 5)), (east, (12, 20))):
        bd = np.full(region.shape, np.datetime64("NaT"), dtype="datetime64[D]")
        bd[r : r + 14, c : c + 14] = np.datetime64("2020-08-10")
        fires[region.name] = bd
        write_mcd64a1(tmp_path, region, bd, [(2020, 8)])
    (tile_file,) = sorted(tmp_path.rglob("*.hdf"))  # one tile holds both regions
    for region in (west, east):
        labels = reader.labels_from_hdf(region, 2020, 8, [tile_file])
        truth_km2 = float((~np.isnat(fires[region.name]) * region.row_cell_area_km2()[:, None]).sum())
        assert labels.burned_area_km2() == pytest.approx(truth_km2, rel=0.03), region.name
    # re-writing a region replaces its own pixels only
    write_mcd64a1(tmp_path, west, np.full(west.shape, np.datetime64("NaT"), dtype="datetime64[D]"), [(2020, 8)])
    assert reader.labels_from_hdf(west, 2020, 8, [tile_file]).burned_area_km2() == 0
    assert reader.labels_from_hdf(east, 2020, 8, [tile_file]).burned_area_km2() > 0


def test_a_damaged_tile_in_the_mirror_is_reported_not_merged(tmp_path: Path) -> None:
    region = Region(name="W", bbox=(-8.3, 40.5, -8.0, 40.8), pixel_size=0.01)
    bd = np.full(region.shape, np.datetime64("NaT"), dtype="datetime64[D]")
    (path,) = write_mcd64a1(tmp_path, region, bd, [(2020, 8)])
    path.write_bytes(b"not an HDF4 file")
    with pytest.raises(DataFormatError, match=r"expected an HDF4 MCD64A1 tile.*delete the file"):
        write_mcd64a1(tmp_path, region, bd, [(2020, 8)])
    assert path.read_bytes() == b"not an HDF4 file"  # left for the operator, not silently replaced


def test_mapping_agrees_with_gdal_average_reprojection(mirror: tuple[Path, list[Path]]) -> None:
    from rasterio.crs import CRS
    from rasterio.warp import Resampling, reproject

    _, files = mirror
    labels = reader.labels_from_hdf(REGION, 2020, 8, files, supersample=4)
    gdal = np.zeros(REGION.shape, np.float32)
    weight = np.zeros(REGION.shape, np.float32)
    for f in files:
        tile = reader.read_hdf_tile(f)
        for src, acc in (((tile.burn_date == 214 + 2).astype(np.float32), gdal), (np.ones((2400, 2400), np.float32), weight)):
            out = np.zeros(REGION.shape, np.float32)
            reproject(
                src,
                out,
                src_transform=tile.tile.affine(),
                src_crs=CRS.from_proj4(SINU_PROJ4),
                dst_transform=REGION.affine(),
                dst_crs=CRS.from_epsg(4326),
                resampling=Resampling.average,
                src_nodata=None,
                dst_nodata=0,
            )
            acc += out
    frac = np.where(weight > 0, gdal / np.maximum(weight, 1e-9), 0)
    areas = REGION.row_cell_area_km2()[:, None]
    ours = labels.bafrac[2]
    assert float((ours * areas).sum()) == pytest.approx(float((frac * areas).sum()), rel=0.02)
    assert float(np.abs(ours - frac).mean()) < 0.02


def test_umd_geotiff_window(tmp_path: Path) -> None:
    import rasterio
    from affine import Affine

    bd, water, _ = _truth()
    px = 360 / 81920
    left, top = -9.0, 41.0
    n = math.ceil(2.0 / px)
    transform = Affine(px, 0, left, 0, -px, top)
    cols, rows = np.meshgrid(np.arange(n), np.arange(n))
    lon, lat = left + (cols + 0.5) * px, top - (rows + 0.5) * px
    r, c, inside = REGION.rowcol(lon, lat)
    data = np.zeros((n, n), np.int16)
    dates = bd[r[inside], c[inside]]
    aug = ~np.isnat(dates) & (dates >= np.datetime64("2020-08-01"))
    vals = np.where(aug, (dates - np.datetime64("2020-01-01")).astype(int) + 1, 0)
    vals = np.where(water[r[inside], c[inside]], -2, vals)
    data[inside] = vals
    path = tmp_path / "Win16" / "2020" / "MCD64monthly.A2020214.Win16.061.burndate.tif"
    path.parent.mkdir(parents=True)
    with rasterio.open(path, "w", driver="GTiff", width=n, height=n, count=1, dtype="int16", crs="EPSG:4326", transform=transform) as ds:
        ds.write(data, 1)
    files = reader.find_umd_windows(tmp_path, REGION, 2020, 8)
    assert files == [path]
    labels = reader.labels_from_umd(REGION, 2020, 8, files)
    assert labels.bafrac[2, 10, 10] == pytest.approx(1.0)
    assert labels.mask[45, 45] == reader.MASK_WATER
    truth_km2 = float((((bd >= np.datetime64("2020-08-01")) & ~np.isnat(bd)) * REGION.row_cell_area_km2()[:, None]).sum())
    assert labels.burned_area_km2() == pytest.approx(truth_km2, rel=0.02)
    with pytest.raises(NotFoundError):
        reader.find_umd_windows(tmp_path, REGION, 2020, 9)


def test_label_cube_and_cli(
    banet_home: Path, mirror: tuple[Path, list[Path]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    import xarray as xr

    from banet_ops.cli import main
    from banet_ops.cube.storage import open_repository
    from banet_ops.mcd64 import labels as L
    from banet_ops.settings import get_settings

    root, _ = mirror
    regions = tmp_path / "regions"
    regions.mkdir()
    (regions / "R_T.json").write_text(json.dumps(REGION.to_file_dict()))
    monkeypatch.setenv("BANET_ARCHIVE_URL", root.as_uri())
    monkeypatch.setenv("BANET_REGIONS_DIR", str(regions))
    get_settings.cache_clear()
    assert main(["labels", "--region", "T", "--month", "2020-08"]) == 0
    out = capsys.readouterr().out
    assert "labels T 2020-08: 2 file(s)" in out and "snapshot" in out
    assert main(["labels", "--region", "T", "--month", "2020-08"]) == 0  # idempotent re-run
    assert L.labelled_months("T") == ["2020-08"]
    w = L.read_labels(REGION, dt.date(2020, 7, 30), dt.date(2020, 8, 5), rows=slice(0, 30), cols=slice(0, 50))
    assert w.bafrac.shape == (7, 30, 50)
    assert list(w.available) == [False, False, True, True, True, True, True]
    assert np.isnan(w.bafrac[0]).all() and (w.mask[0] == reader.MASK_NO_DATA).all()
    assert w.bafrac[4, 10, 10] == pytest.approx(1.0)
    assert int(w.valid()[2:].sum()) == 5 * (30 * 50 - 4 * 10)  # minus the unmapped block
    loc = L.label_cube_location("T")
    ds = xr.open_zarr(open_repository(loc).readonly_session("main").store, consolidated=False)
    assert ds["bafrac"].dims == ("time", "lat", "lon")
    assert ds["time"].values[-1] == np.datetime64("2020-08-31")
    assert float(ds["bafrac"].sel(time="2020-08-03").isel(lat=10, lon=10)) == pytest.approx(1.0)
    assert main(["labels", "--region", "T", "--month", "2020-13"]) == 1
    assert main(["labels", "--region", "T", "--month", "2021-08"]) == 1
    err = capsys.readouterr().err
    assert "month" in err and "expected MCD64A1 2021-08 tiles" in err
