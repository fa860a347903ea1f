"""VIIRS L1B + geolocation NetCDF4 reader: scaling, fills and flags, pairing checks, bad files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from banet_ops.errors import DataFormatError, GeolocationMismatchError
from banet_ops.ingest.readers.viirs_l1b import granule_key, read_granule
from banet_ops.synthetic import Scenario
from banet_ops.synthetic.writers import SwathData, write_l1b_pair

START = dt.datetime(2024, 7, 1, 13, 42, tzinfo=dt.UTC)


def _swath(lines: int = 32, pixels: int = 8, start: dt.datetime = START) -> SwathData:
    lat = np.linspace(41, 40, lines, dtype=np.float32)[:, None].repeat(pixels, 1)
    lon = np.linspace(-4, -3, pixels, dtype=np.float32)[None, :].repeat(lines, 0)
    counts = {b: np.full((lines, pixels), 4096, np.uint16) for b in ("M05", "M07", "M10", "M12", "M15")}
    return SwathData(
        platform="VNP",
        start=start,
        latitude=lat,
        longitude=lon,
        solar_zenith_raw=np.full((lines, pixels), 3012, np.int16),
        sensor_zenith_raw=np.full((lines, pixels), 1550, np.int16),
        counts=counts,
        orbit=1,
    )


def _pair(tmp_path: Path, swath: SwathData | None = None, sub: str = "") -> tuple[Path, Path]:
    return write_l1b_pair(tmp_path / sub / "l1b", tmp_path / sub / "geo", swath or _swath(), START + dt.timedelta(hours=9))


def test_scaling_fill_flags_and_angles(tmp_path: Path) -> None:
    swath = _swath()
    m05 = swath.counts["M05"]
    m05[0, :5] = [0, 65527, 65532, 65533, 65535]  # valid min, valid max, Missing_EV, Bowtie_Deleted, fill
    m05[1, 0] = 65530  # above valid_max without being a listed flag
    swath.counts["M15"][:] = 20000
    swath.sensor_zenith_raw[2, 3] = -999
    l1b, geo = _pair(tmp_path, swath)
    g = read_granule(l1b, geo)
    scale = np.float32(2.4417415261268616e-05)
    assert g.bands["M05"][0, 0] == 0
    assert g.bands["M05"][0, 1] == pytest.approx(65527 * scale, rel=1e-6)
    assert np.isnan(g.bands["M05"][0, 2:5]).all() and np.isnan(g.bands["M05"][1, 0])
    assert g.bands["M05"][3, 3] == pytest.approx(4096 * scale, rel=1e-6)
    # M15: scale and offset (radiance)
    assert g.bands["M15"][0, 0] == pytest.approx(20000 * 0.00039008501335047185 - 0.019999999552965164, rel=1e-5)
    # angles: int16 x 0.01 via scale_factor, fill -> NaN
    assert g.geo["solar_zenith"][0, 0] == pytest.approx(30.12, abs=1e-4)
    assert g.geo["sensor_zenith"][0, 0] == pytest.approx(15.50, abs=1e-4)
    assert np.isnan(g.geo["sensor_zenith"][2, 3])
    assert g.key == "A2024183.1342" and g.platform == "VNP" and g.start == START


def test_reads_only_lines_near_the_bbox(tmp_path: Path) -> None:
    l1b, geo = _pair(tmp_path)
    g = read_granule(l1b, geo, bbox=(-4.0, 40.0, -3.0, 40.3), margin_deg=0.0)
    lat = g.geo["latitude"]
    assert 0 < lat.shape[0] < 32 and lat.min() >= 40.0 - 1e-6 and lat.max() <= 40.3 + 1e-6
    nothing = read_granule(l1b, geo, bbox=(10.0, 10.0, 11.0, 11.0))
    assert nothing.is_empty and nothing.bands["M05"].shape == (0, 8)


def test_key_from_names() -> None:
    assert granule_key("VNP02MOD.A2024183.1342.002.2024184010203.nc") == "A2024183.1342"
    assert granule_key("VJ103MOD_NRT.A2024001.0006.021.nc") == "A2024001.0006"
    assert granule_key("random.nc") is None


def test_geolocation_of_another_granule_is_refused(tmp_path: Path) -> None:
    l1b, _ = _pair(tmp_path, sub="a")
    other = _swath(start=START + dt.timedelta(minutes=6))
    _, geo_other = write_l1b_pair(tmp_path / "b" / "l1b", tmp_path / "b" / "geo", other, START)
    with pytest.raises(GeolocationMismatchError, match=rf"{l1b.name}.*{geo_other.name}.*time keys differ"):
        read_granule(l1b, geo_other)


def test_geolocation_with_other_dimensions_is_refused(tmp_path: Path) -> None:
    l1b, _ = _pair(tmp_path, sub="a")
    _, geo_small = _pair(tmp_path, _swath(lines=16), sub="b")
    with pytest.raises(GeolocationMismatchError, match=r"lines x pixels differ \(32 x 8 vs 16 x 8\)"):
        read_granule(l1b, geo_small)


def test_geolocation_with_other_start_time_is_refused(tmp_path: Path) -> None:
    l1b, geo = _pair(tmp_path)
    with netCDF4.Dataset(str(geo), "a") as ds:
        ds.time_coverage_start = "2024-07-01T13:45:00.000Z"
    with pytest.raises(GeolocationMismatchError, match="time_coverage_start differs"):
        read_granule(l1b, geo)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_or_truncated_netcdf_names_the_file(tmp_path: Path, damage: str) -> None:
    l1b, geo = _pair(tmp_path, _swath(lines=256, pixels=64))
    data = l1b.read_bytes()
    l1b.write_bytes({"garbage": b"<!DOCTYPE html><html>login</html>", "truncated": data[: len(data) * 2 // 3], "empty": b""}[damage])
    with pytest.raises(DataFormatError, match=l1b.name.replace(".", r"\.")):
        read_granule(l1b, geo)


def test_wrong_product_is_a_format_error(tmp_path: Path) -> None:
    _, geo = _pair(tmp_path)
    with pytest.raises(DataFormatError, match="expected variable observation_data/M05"):
        read_granule(geo, geo)


def test_real_scenario_files_read(scenario: Scenario) -> None:
    l1b = sorted(scenario.root.glob("archive/*/VNP02MOD/*/*/*.nc"))[0]
    geo = next((scenario.root / "archive").glob(f"*/VNP03MOD/*/*/VNP03MOD.{granule_key(l1b.name)}.*.nc"))
    g = read_granule(l1b, geo, bbox=scenario.region.bbox)
    assert g.shape[0] > 100 and g.n_lines % 16 == 0 and g.n_lines >= g.shape[0]
    assert np.isfinite(g.bands["M07"]).mean() > 0.99
    # a few pixels carry the Missing_EV flag and must be NaN
    assert 0 < np.isnan(g.bands["M07"]).sum() < 0.01 * g.bands["M07"].size
