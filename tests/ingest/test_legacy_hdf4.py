"""Legacy gridded NPP_VMAES_L1 HDF4: real files, georeferencing, bad input, writer/reader agreement."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from pyhdf.SD import SD, SDC

from banet_ops.errors import DataFormatError
from banet_ops.ingest.readers.legacy_hdf4 import (
    LEGACY_LAYERS,
    group_legacy_files,
    packed_dms_to_degrees,
    parse_struct_metadata,
    read_legacy_layer,
    read_legacy_overpass,
)
from banet_ops.regions import Region
from banet_ops.synthetic.writers import degrees_to_packed_dms, write_legacy_overpass


def _raw(path: Path, name: str) -> tuple[np.ndarray, dict]:
    sd = SD(str(path), SDC.READ)
    try:
        sds = sd.select(name)
        return np.asarray(sds.get()), sds.attributes()
    finally:
        sd.end()


def test_real_files_decode_like_an_independent_read(legacy_files: list[Path]) -> None:
    assert len(legacy_files) == 7
    for path in legacy_files:
        layer = read_legacy_layer(path)
        raw, attrs = _raw(path, layer.layer)
        if raw.dtype == np.uint16:
            valid = raw < 65527
            assert valid.sum() == 248  # the real files hold 248 measured cells per band
            expected = raw[valid].astype(np.float64) * attrs["Scale"] + attrs["Offset"]
        else:
            valid = raw > -999
            assert valid.sum() == 807
            expected = raw[valid].astype(np.float64)
        np.testing.assert_allclose(layer.data[valid], expected, rtol=1e-6)
        assert np.isnan(layer.data[~valid]).all()


def test_real_values_of_a_few_cells(legacy_files: list[Path], pi_region: Region) -> None:
    overpass = read_legacy_overpass(group_legacy_files(legacy_files)["A2017300.1406"], pi_region)
    m5 = overpass.variables["M05"]
    raw, _ = _raw(next(p for p in legacy_files if p.name.endswith("Reflectance_M5.hdf")), "Reflectance_M5")
    rows, cols = np.nonzero(raw < 65527)
    for r, c in list(zip(rows, cols))[:: max(1, len(rows) // 5)]:
        assert m5[r, c] == pytest.approx(float(raw[r, c]) * 2.4417415261268616e-05, rel=1e-6)
    # measured cells lie in the last rows (near 36°N), as the fixture notes say
    assert rows.min() >= 790
    m15 = overpass.variables["M15"]
    raw15, _ = _raw(next(p for p in legacy_files if p.name.endswith("Radiance_M15.hdf")), "Radiance_M15")
    r, c = rows[0], cols[0]
    assert m15[r, c] == pytest.approx(float(raw15[r, c]) * 0.00039008501335047185 - 0.019999999552965164, rel=1e-6)
    assert set(overpass.variables) == set(LEGACY_LAYERS.values())
    assert overpass.start == dt.datetime(2017, 10, 27, 14, 6, tzinfo=dt.UTC)


def test_georeferencing_is_the_pi_grid(legacy_files: list[Path], pi_region: Region) -> None:
    grid = read_legacy_layer(legacy_files[0]).grid
    assert (grid.n_rows, grid.n_cols) == (800, 1500)
    assert (grid.left, grid.bottom, grid.right, grid.top) == pytest.approx((-10, 36, 5, 44))
    assert grid.matches(pi_region)


def test_grid_of_another_region_is_refused(legacy_files: list[Path]) -> None:
    portugal = Region(name="PT", bbox=(-10, 36, -6, 44), pixel_size=0.01)
    with pytest.raises(DataFormatError, match=r"expected the grid of region PT .* found bbox \[-10, 36, 5, 44\] with 800 x 1500"):
        read_legacy_overpass(group_legacy_files(legacy_files)["A2017300.1406"], portugal)


def test_packed_dms() -> None:
    assert packed_dms_to_degrees(-10000000.0) == -10
    assert packed_dms_to_degrees(44000000.0) == 44
    assert packed_dms_to_degrees(1030000.0) == pytest.approx(1.5)
    assert packed_dms_to_degrees(-2015036.0) == pytest.approx(-(2 + 15 / 60 + 36 / 3600))
    for value in (-9.72, 39.72, 0.01, -179.99):
        assert packed_dms_to_degrees(degrees_to_packed_dms(value)) == pytest.approx(value, abs=1e-9)


def test_struct_metadata_without_grid_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="expected an HDF-EOS2 grid"):
        parse_struct_metadata("GROUP=SwathStructure\nEND", tmp_path / "x.hdf")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_or_truncated_hdf4_names_the_file(legacy_files: list[Path], tmp_path: Path, damage: str) -> None:
    source = legacy_files[0]
    bad = tmp_path / source.name
    data = source.read_bytes()
    bad.write_bytes({"garbage": b"<html>login</html>" * 100, "truncated": data[: len(data) // 2], "empty": b""}[damage])
    with pytest.raises(DataFormatError, match=source.name.replace(".", r"\.")):
        read_legacy_layer(bad)


def test_written_files_have_the_real_structure_and_round_trip(legacy_files: list[Path], tmp_path: Path) -> None:
    region = Region(name="T", bbox=(-4.0, 39.72, -3.52, 40.0), pixel_size=0.01)
    rng = np.random.default_rng(1)
    shape = region.shape
    seen = rng.random(shape) > 0.2
    values = {
        "M05": rng.uniform(0.02, 0.3, shape),
        "M07": rng.uniform(0.1, 0.5, shape),
        "M10": rng.uniform(0.05, 0.4, shape),
        "M12": rng.uniform(0.2, 1.5, shape),
        "M15": rng.uniform(6, 12, shape),
        "solar_zenith": rng.uniform(20, 60, shape),
        "sensor_zenith": rng.uniform(0, 70, shape),
    }
    values = {k: np.where(seen, v, np.nan) for k, v in values.items()}
    start = dt.datetime(2024, 7, 1, 13, 42, tzinfo=dt.UTC)
    files = write_legacy_overpass(tmp_path, region, start, start + dt.timedelta(hours=9), values, 1234)
    assert len(files) == 7
    # same SDS attributes and the key global attributes as the real files
    for mine in files:
        layer = mine.name.split(".")[-2]
        real = next(p for p in legacy_files if p.name.endswith(f".{layer}.hdf"))
        _, real_attrs = _raw(real, layer)
        _, my_attrs = _raw(mine, layer)
        assert set(my_attrs) == set(real_attrs)
        sd = SD(str(mine), SDC.READ)
        try:
            assert {"StructMetadata.0", "ShortName", "HDFEOSVersion", "DayNightFlag"} <= set(sd.attributes())
            assert sd.select(layer).dimensions() == {"YDim:VIIRS_EV_750M_SDR": shape[0], "XDim:VIIRS_EV_750M_SDR": shape[1]}
        finally:
            sd.end()
    overpass = read_legacy_overpass(group_legacy_files(files)["A2024183.1342"], region)
    for name, expected in values.items():
        got = overpass.variables[name]
        assert np.array_equal(np.isnan(got), ~seen)
        tol = {"M12": 3.4e-5, "M15": 2e-4}.get(name, 1.3e-5 if name.startswith("M") else 1e-4)
        np.testing.assert_allclose(got[seen], expected[seen], atol=tol)
