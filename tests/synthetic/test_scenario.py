"""The synthetic scenario: deterministic, physically sensible, in the real formats, fast."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import netCDF4
import numpy as np
import pytest
from pyhdf.SD import SD, SDC

from banet_ops.bands import CUBE_VARIABLES
from banet_ops.ingest.readers.firms_csv import read_firms_csv
from banet_ops.mcd64.reader import labels_from_hdf, month_first_doy
from banet_ops.mcd64.synthetic import months_between, write_mcd64a1
from banet_ops.regions import Region
from banet_ops.synthetic import Scene, synthetic_daily_images, true_burn_dates, write_scenario
from banet_ops.synthetic.scene import MIN_REBURN_GAP_DAYS

PI = Region(name="PI", bbox=(-10, 36, 5, 44), pixel_size=0.01)
BOX = PI.subregion("SYN", 300, 600, 64, 64)
START = dt.date(2024, 7, 1)
REAL_LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "ingest" / "viirs750_legacy_PI_2017300"


def test_deterministic_by_seed() -> None:
    a = list(synthetic_daily_images(BOX, START, 6, seed=5))
    b = list(synthetic_daily_images(BOX, START, 6, seed=5))
    c = list(synthetic_daily_images(BOX, START, 6, seed=6))
    for x, y in zip(a, b):
        for name in CUBE_VARIABLES:
            np.testing.assert_array_equal(x.variables[name], y.variables[name])
    assert any(not np.array_equal(x.variables["NIR"], z.variables["NIR"], equal_nan=True) for x, z in zip(a, c))
    np.testing.assert_array_equal(true_burn_dates(BOX, START, 6, seed=5), true_burn_dates(BOX, START, 6, seed=5))


def test_images_have_the_contract_shape_and_types() -> None:
    images = list(synthetic_daily_images(BOX, START, 3, seed=0))
    assert [im.day for im in images] == [START, START + dt.timedelta(days=1), START + dt.timedelta(days=2)]
    for im in images:
        assert set(im.variables) == set(CUBE_VARIABLES)
        for arr in im.variables.values():
            assert arr.dtype == np.float32 and arr.shape == BOX.shape
        assert not np.isnan(im.variables["FRP"]).any() and not np.isnan(im.variables["n_obs"]).any()
        unseen = im.variables["n_obs"] == 0
        assert np.isnan(im.variables["Red"][unseen]).all() and np.isfinite(im.variables["Red"][~unseen]).all()


def test_fires_ignite_spread_die_and_leave_a_recovering_scar() -> None:
    days = 40
    region = PI.subregion("SYN2", 300, 600, 128, 128)
    scene = Scene(region, START, days, seed=2)
    burn = scene.burn_day
    burned = burn >= 0
    assert 100 < burned.sum() < 0.6 * burn.size
    per_day = np.bincount(burn[burned], minlength=days)
    assert (per_day > 0).sum() >= 3  # spreads over several days
    first = int(np.flatnonzero(per_day)[0])
    # fire detections with FRP on burning cells on their burn day only
    frp = scene.frp(first)
    assert frp[burn == first].sum() > 0 and frp[burned & (burn != first)].sum() == 0
    # surface change: NIR drops and MIR rises on the burn day, then NIR recovers slowly
    cells = burn == first
    before = scene.surface(first - 1) if first > 0 else None
    on = scene.surface(first)
    later = scene.surface(min(days - 1, first + 30))
    cloud_free = ~scene.clouds(first) & ~scene.clouds(min(days - 1, first + 30))
    if before is not None:
        cloud_free &= ~scene.clouds(first - 1)
        sel = cells & cloud_free
        assert (on["NIR"][sel] < before["NIR"][sel] - 0.03).all()
        assert (on["MIR"][sel] > before["MIR"][sel] + 0.05).all()
    sel = cells & cloud_free
    assert (later["NIR"][sel] > on["NIR"][sel]).all()
    assert (np.asarray(true_burn_dates(region, START, days, seed=2))[burned] == np.datetime64(START) + burn[burned].astype("timedelta64[D]")).all()


def test_overpasses_differ_in_zenith_and_leave_gaps() -> None:
    scene = Scene(BOX, START, 30, seed=0)
    counts = [len(scene.overpasses(d)) for d in range(30)]
    assert set(counts) <= {0, 1, 2} and counts.count(2) > 10
    zeniths = [sorted(float(np.nanmean(scene.view(op).sensor_zenith)) for op in scene.overpasses(d)) for d in range(30)]
    assert any(len(z) == 2 and z[1] - z[0] > 10 for z in zeniths)
    coverage = [float((sum(scene.view(op).covered for op in scene.overpasses(d)) > 0).mean()) if scene.overpasses(d) else 0.0 for d in range(30)]
    assert min(coverage) < 1.0  # some days miss part of the region


def test_files_are_in_the_real_formats(tmp_path: Path) -> None:
    sc = write_scenario(tmp_path, BOX, START, 2, seed=0)
    l1b = sorted(tmp_path.glob("archive/5200/VNP02MOD/2024/183/VNP02MOD.A2024183.*.002.*.nc"))
    geo = sorted(tmp_path.glob("archive/5200/VNP03MOD/2024/183/VNP03MOD.A2024183.*.nc"))
    assert len(l1b) == 1 and len(geo) == 1 and l1b[0].name.split(".")[4] != geo[0].name.split(".")[4]  # production stamps differ
    assert sorted(tmp_path.glob("archive/5201/VJ102MOD/2024/183/*.nc"))
    with netCDF4.Dataset(str(l1b[0])) as ds:
        assert ds.platform == "Suomi-NPP" and ds.time_coverage_start.endswith(".000Z")
        m05 = ds["observation_data/M05"]
        assert m05.dtype == np.uint16 and m05.dimensions == ("number_of_lines", "number_of_pixels")
        assert {"scale_factor", "add_offset", "_FillValue", "valid_min", "valid_max", "flag_values"} <= set(m05.ncattrs())
        assert ds.dimensions["number_of_lines"].size % 16 == 0
        assert ds["observation_data/M12"].units == "Watts/meter^2/steradian/micrometer"
    with netCDF4.Dataset(str(geo[0])) as ds:
        sz = ds["geolocation_data/sensor_zenith"]
        assert sz.dtype == np.int16 and sz.scale_factor == pytest.approx(0.01)
        assert ds["geolocation_data/latitude"].dtype == np.float32
    legacy = sorted(tmp_path.glob("archive/5000/NPP_VMAES_L1/2024/183/*.hdf"))
    assert len(legacy) == 7
    real_m5 = next(REAL_LEGACY.glob("*Reflectance_M5.hdf"))
    mine = next(p for p in legacy if p.name.endswith("Reflectance_M5.hdf"))
    real_sd, my_sd = SD(str(real_m5), SDC.READ), SD(str(mine), SDC.READ)
    try:
        assert set(my_sd.select("Reflectance_M5").attributes()) == set(real_sd.select("Reflectance_M5").attributes())
        assert my_sd.attributes()["ShortName"] == "NPP_VMAES_L1"
    finally:
        real_sd.end()
        my_sd.end()
    formats = sorted(read_firms_csv(p).report.format for p in tmp_path.glob("firms/*2024183*"))
    formats += sorted(read_firms_csv(p).report.format for p in tmp_path.glob("firms/*2024-07-01*"))
    assert formats == ["lance_text", "area_api"]
    assert (tmp_path / "regions" / "R_SYN.json").is_file()
    assert sc.env()["BANET_ARCHIVE_URL"].startswith("file://")
    assert not list(tmp_path.rglob("*.tmp"))


def test_generation_is_fast() -> None:
    region = PI.subregion("FAST", 300, 600, 128, 128)
    t0 = time.perf_counter()
    images = list(synthetic_daily_images(region, START, 80, seed=0))
    elapsed = time.perf_counter() - t0
    assert len(images) == 80
    assert elapsed < 30, f"80 days of 128 x 128 took {elapsed:.1f}s"


def test_reburn_a_late_fire_runs_over_part_of_an_early_scar_and_both_burns_show() -> None:
    region = PI.subregion("SYN3", 300, 600, 64, 64)
    plain, scene = Scene(region, START, 80, seed=7), Scene(region, START, 80, seed=7, reburn=True)
    again = scene.reburn_day >= 0
    assert again.sum() > 20
    first, second = scene.burn_day[again], scene.reburn_day[again]
    assert (second - first >= MIN_REBURN_GAP_DAYS).all() and first.max() <= 8 and second.min() >= 80 - 12  # the late fire over the early scar
    # the option adds the two fires and nothing else: every other cell is the plain scene's
    touched = again | (scene.burn_day != plain.burn_day)
    assert (~touched).sum() > 0.5 * touched.size
    for d in (0, 40, 79):
        np.testing.assert_array_equal(scene.surface(d)["NIR"][~touched], plain.surface(d)["NIR"][~touched])
    # each burn: the NIR drops (clear days before and on it) and recovers, with FRP on its day
    for days in (first, second):
        d = int(np.bincount(days).argmax())
        cells = again & ((scene.burn_day == d) | (scene.reburn_day == d)) & ~scene.clouds(d) & ~scene.clouds(d - 1) & ~scene.clouds(d + 5)
        assert cells.sum() > 5
        before, on, later = scene.surface(d - 1)["NIR"], scene.surface(d)["NIR"], scene.surface(d + 5)["NIR"]
        assert (on[cells] < before[cells] - 0.03).all() and (later[cells] > on[cells]).all()
        assert scene.frp(d)[cells].sum() > 0
    # the truth: every burn, the latest one per cell in the raster
    layers = scene.all_burn_dates()
    start = np.datetime64(START, "D")
    np.testing.assert_array_equal(layers[1][again], start + second.astype("timedelta64[D]"))
    np.testing.assert_array_equal(scene.burn_dates()[again], layers[1][again])
    np.testing.assert_array_equal(true_burn_dates(region, START, 80, seed=7, reburn=True), scene.burn_dates())
    np.testing.assert_array_equal(true_burn_dates(region, START, 80, seed=7), plain.burn_dates())


def test_reburned_cells_carry_both_burns_into_the_monthly_mcd64a1_labels(tmp_path: Path) -> None:
    region = PI.subregion("SYN4", 300, 600, 64, 64)
    scene = Scene(region, START, 80, seed=7, reburn=True)
    files = write_mcd64a1(tmp_path, region, scene.all_burn_dates(), months_between(START, START + dt.timedelta(days=79)))
    again = scene.reburn_day >= 0
    for layer in scene.all_burn_dates():
        for year, month in {(int(str(d)[:4]), int(str(d)[5:7])) for d in np.unique(layer[again])}:
            month_files = [f for f in files if f".A{year}{month_first_doy(year, month):03d}." in f.name]
            labels = labels_from_hdf(region, year, month, month_files)
            in_month = again & (layer.astype("datetime64[M]") == np.datetime64(f"{year}-{month:02d}"))
            day = (layer - np.datetime64(dt.date(year, month, 1), "D")).astype(np.int64)
            rows, cols = np.nonzero(in_month)
            core = labels.bafrac[day[rows, cols], rows, cols]  # the burned fraction on the cell's burn day of that month
            assert in_month.sum() > 0 and np.nanmean(core) > 0.5, (year, month)
