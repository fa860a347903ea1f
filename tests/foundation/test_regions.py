"""Region files: validation messages, the seven shared grids, and the grid math."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from pyproj import Geod

from banet_ops.errors import RegionError
from banet_ops.regions import MAX_CELLS, Region, cell_area_km2, get_region, load_region, load_regions
from banet_ops.settings import PACKAGE_REGIONS_DIR

from .conftest import REGION_FIXTURES

SHAPES = {
    "AK": (1600, 4000),
    "AU": (1700, 4100),
    "BR": (1500, 1400),
    "CA": (1100, 1200),
    "MZ": (1700, 1100),
    "PI": (800, 1500),
    "PT": (800, 400),
}
GEOD = Geod(ellps="WGS84")


def write(tmp_path: Path, name: str, content: object) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


# --- invalid files: one line naming the file and the field -----------------------------------

GOOD = {"name": "XX", "bbox": [-10, 36, -6, 44], "pixel_size": 0.01}

INVALID = [
    ("name pattern", {**GOOD, "name": "bad-name!"}, "name", "should match pattern"),
    ("name too long", {**GOOD, "name": "N" * 33}, "name", "should match pattern"),
    ("bbox NaN", '{"name": "XX", "bbox": [NaN, 36, -6, 44], "pixel_size": 0.01}', "bbox", "expected four finite numbers"),
    ("bbox Infinity", '{"name": "XX", "bbox": [-10, 36, Infinity, 44], "pixel_size": 0.01}', "bbox", "expected four finite numbers"),
    ("left beyond -180", {**GOOD, "bbox": [-190, 36, -6, 44]}, "bbox", "within ±180"),
    ("right beyond 180", {**GOOD, "bbox": [170, 36, 181, 44]}, "bbox", "within ±180"),
    ("top beyond 90", {**GOOD, "bbox": [-10, 36, -6, 95]}, "bbox", "within ±90"),
    ("bottom beyond -90", {**GOOD, "bbox": [-10, -91, -6, 44]}, "bbox", "within ±90"),
    ("left == right", {**GOOD, "bbox": [-6, 36, -6, 44]}, "bbox", "expected left < right"),
    ("left > right", {**GOOD, "bbox": [5, 36, -6, 44]}, "bbox", "expected left < right"),
    ("bottom == top", {**GOOD, "bbox": [-10, 44, -6, 44]}, "bbox", "expected bottom < top"),
    ("bottom > top", {**GOOD, "bbox": [-10, 45, -6, 44]}, "bbox", "expected bottom < top"),
    ("bbox of 3 numbers", {**GOOD, "bbox": [-10, 36, -6]}, "bbox", "expected [left, bottom, right, top], found [-10, 36, -6]"),
    ("bbox not a list", {**GOOD, "bbox": "-10 36 -6 44"}, "bbox", "expected [left, bottom, right, top]"),
    ("pixel_size zero", {**GOOD, "pixel_size": 0}, "pixel_size", "greater than 0"),
    ("pixel_size negative", {**GOOD, "pixel_size": -0.01}, "pixel_size", "greater than 0"),
    ("pixel_size infinite", '{"name": "XX", "bbox": [-10, 36, -6, 44], "pixel_size": Infinity}', "pixel_size", "finite"),
    ("pixel_size larger than bbox", {**GOOD, "pixel_size": 10}, "pixel_size", "no larger than the bbox"),
    ("too many cells", {**GOOD, "bbox": [-180, -90, 180, 90]}, "pixel_size", "648,000,000 cells exceeds 50,000,000"),
    ("missing pixel_size", {"name": "XX", "bbox": [-10, 36, -6, 44]}, "pixel_size", "Field required"),
    ("unknown key", {**GOOD, "crs": "EPSG:4326"}, "crs", "Extra inputs are not permitted"),
    ("not an object", [1, 2, 3], "file", "valid dictionary"),
]


@pytest.mark.parametrize(("case", "content", "field", "fragment"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_region_file(tmp_path: Path, case: str, content: object, field: str, fragment: str) -> None:
    path = write(tmp_path, "R_XX.json", content)
    with pytest.raises(RegionError) as info:
        load_region(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: field '{field}': "), message
    assert fragment in message


def test_bad_json(tmp_path: Path) -> None:
    path = write(tmp_path, "R_XX.json", '{"name": "XX", "bbox": [1, 2, 3, 4]')
    with pytest.raises(RegionError) as info:
        load_region(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: expected JSON, found invalid content")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "R_XX.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(RegionError, match=r"expected JSON"):
        load_region(path)


def test_name_must_match_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, "R_PT.json", {**GOOD, "name": "PI"})
    with pytest.raises(RegionError) as info:
        load_region(path)
    assert str(info.value) == f"{path}: field 'name': expected 'PT' to match the file name, found 'PI'"


def test_missing_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(RegionError, match=r"R_NO\.json: expected a region file, found nothing"):
        load_region(tmp_path / "R_NO.json")
    (tmp_path / "R_DIR.json").mkdir()
    with pytest.raises(RegionError, match=r"R_DIR\.json: expected a readable region file"):
        load_region(tmp_path / "R_DIR.json")


def test_largest_allowed_grid_is_accepted() -> None:
    # 5000 x 10000 = MAX_CELLS exactly
    region = Region(name="BIG", bbox=(0, 0, 100, 50), pixel_size=0.01)
    assert region.shape == (5000, 10000)
    assert region.shape[0] * region.shape[1] == MAX_CELLS


# --- the seven shared regions ------------------------------------------------------------------


@pytest.mark.parametrize("folder", [REGION_FIXTURES, PACKAGE_REGIONS_DIR], ids=["shared-fixtures", "package"])
def test_shapes_of_the_seven_regions(folder: Path) -> None:
    regions = load_regions(folder)
    assert sorted(regions) == sorted(SHAPES)
    for name, shape in SHAPES.items():
        region = regions[name]
        assert region.shape == shape, name
        assert region.pixel_size == 0.01
        assert region.lat_centres().shape == (shape[0],)
        assert region.lon_centres().shape == (shape[1],)
        assert region.row_cell_area_km2().shape == (shape[0],)


def test_package_regions_equal_shared_fixtures() -> None:
    assert load_regions(PACKAGE_REGIONS_DIR) == load_regions(REGION_FIXTURES)


def test_get_region_by_name() -> None:
    assert get_region("PI", REGION_FIXTURES).shape == (800, 1500)
    with pytest.raises(RegionError, match=r"expected a region named 'XX' in .*found only: AK, AU, BR, CA, MZ, PI, PT"):
        get_region("XX", REGION_FIXTURES)


# --- grid math --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pi() -> Region:
    return load_region(REGION_FIXTURES / "R_PI.json")


def test_transform(pi: Region) -> None:
    assert pi.transform == (0.01, 0.0, -10.0, 0.0, -0.01, 44.0)
    affine = pi.affine()
    assert affine @ (0, 0) == (-10.0, 44.0)
    x, y = affine @ (1500, 800)
    assert math.isclose(x, 5.0) and math.isclose(y, 36.0)


def test_centres(pi: Region) -> None:
    lon, lat = pi.lon_centres(), pi.lat_centres()
    assert lon.dtype == np.float64 and lat.dtype == np.float64
    assert lon[0] == pytest.approx(-9.995, abs=1e-12) and lon[-1] == pytest.approx(4.995, abs=1e-12)
    assert lat[0] == pytest.approx(43.995, abs=1e-12) and lat[-1] == pytest.approx(36.005, abs=1e-12)
    assert np.all(np.diff(lon) > 0) and np.all(np.diff(lat) < 0)
    np.testing.assert_allclose(np.diff(lon), 0.01, rtol=1e-9)


def test_rowcol_xy_round_trip(pi: Region) -> None:
    rng = np.random.default_rng(0)
    rows = rng.integers(0, pi.shape[0], 10_000)
    cols = rng.integers(0, pi.shape[1], 10_000)
    lon, lat = pi.xy(rows, cols)
    r, c, inside = pi.rowcol(lon, lat)
    assert inside.all()
    np.testing.assert_array_equal(r, rows)
    np.testing.assert_array_equal(c, cols)
    # any point of a cell maps to that cell, not just its centre
    jitter = rng.uniform(-0.0049, 0.0049, (2, rows.size))
    r2, c2, _ = pi.rowcol(lon + jitter[0], lat + jitter[1])
    np.testing.assert_array_equal(r2, rows)
    np.testing.assert_array_equal(c2, cols)


def test_rowcol_edges_and_outside(pi: Region) -> None:
    r, c, inside = pi.rowcol(np.array([-10.0, 4.9999, 5.0, -10.001, 0.0, np.nan]), np.array([44.0, 36.0001, 40.0, 40.0, 35.999, 40.0]))
    assert (int(r[0]), int(c[0]), bool(inside[0])) == (0, 0, True)
    assert (int(r[1]), int(c[1]), bool(inside[1])) == (799, 1499, True)
    assert inside.tolist() == [True, True, False, False, False, False]


@pytest.mark.parametrize("name", ["PI", "AK", "AU"])
def test_cell_area_matches_geodesic_polygon_area(name: str) -> None:
    region = load_region(REGION_FIXTURES / f"R_{name}.json")
    areas = region.row_cell_area_km2()
    px = region.pixel_size
    for row in (0, region.shape[0] // 2, region.shape[0] - 1):
        north = region.top - row * px
        south = north - px
        west = region.left + 7 * px
        east = west + px
        geod_area, _ = GEOD.polygon_area_perimeter([west, east, east, west], [south, south, north, north])
        assert abs(geod_area) / 1e6 == pytest.approx(areas[row], rel=1e-6), (name, row)


def test_region_area_is_the_sum_of_its_cells(pi: Region) -> None:
    total = float(pi.row_cell_area_km2().sum()) * pi.shape[1]
    zone = float(cell_area_km2(pi.bottom, pi.top, pi.right - pi.left))
    assert total == pytest.approx(zone, rel=1e-9)
    assert 1.0 < pi.row_cell_area_km2()[-1] / pi.row_cell_area_km2()[0] < 1.2  # cells shrink northwards


def test_subregion_shares_the_parent_grid(pi: Region) -> None:
    sub = pi.subregion("PI_sub", row0=100, col0=200, rows=64, cols=32)
    assert sub.shape == (64, 32)
    lon, lat = sub.xy(0, 0)
    r, c, inside = pi.rowcol(lon, lat)
    assert (int(r), int(c), bool(inside)) == (100, 200, True)
    np.testing.assert_allclose(sub.row_cell_area_km2(), pi.row_cell_area_km2()[100:164], rtol=1e-9)


def test_file_round_trip(tmp_path: Path, pi: Region) -> None:
    path = write(tmp_path, "R_PI.json", pi.to_file_dict())
    assert load_region(path) == pi
