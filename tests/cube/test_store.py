"""The cube as a self-describing xarray dataset, and read_window semantics."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from banet_ops.bands import CUBE_VARIABLES, MODEL_BANDS
from banet_ops.cube import TIME_ORIGIN, latest_snapshot, open_dataset, read_window, write_day
from banet_ops.daily_image import DailyImage
from banet_ops.errors import CubeNotFoundError, LessCompleteError, SnapshotNotFoundError, ValidationError

from ._workers import PI, REGION, expected, make_image

D1, D2, D3 = dt.date(2021, 8, 1), dt.date(2021, 8, 2), dt.date(2021, 8, 5)


def test_xarray_view_is_self_describing(cube_root: str) -> None:
    images = [make_image(d) for d in (D1, D3)]
    for image in images:
        write_day(image)
    ds = open_dataset("TC")
    assert dict(ds.sizes) == {"time": (dt.date(2022, 1, 1) - TIME_ORIGIN).days, "lat": 40, "lon": 60}
    for name in CUBE_VARIABLES:
        assert ds[name].dims == ("time", "lat", "lon")
        assert ds[name].attrs["units"] and ds[name].attrs["long_name"]
        assert ds[name].attrs["grid_mapping"] == "crs"
    # coordinates: cell centres, row 0 at the top, daily CF time decoded to dates
    np.testing.assert_allclose(ds.lat.values, REGION.top - 0.005 - 0.01 * np.arange(40))
    np.testing.assert_allclose(ds.lon.values, REGION.left + 0.005 + 0.01 * np.arange(60))
    assert ds.lat.attrs["units"] == "degrees_north" and ds.lon.attrs["standard_name"] == "longitude"
    assert ds.time.values[0] == np.datetime64("2012-01-01")
    assert ds.time.encoding["units"] == "days since 2012-01-01"
    assert ds.time.values[-1] == np.datetime64("2021-12-31")
    # global attributes: CF and the region definition
    assert ds.attrs["Conventions"].startswith("CF-")
    assert json.loads(ds.attrs["region"]) == REGION.to_file_dict()
    assert ds.crs.attrs["grid_mapping_name"] == "latitude_longitude"
    # values round-trip (reflectances to 1e-4, angles to 0.01, FRP exactly), NaN where missing
    for image in images:
        day = ds.sel(time=np.datetime64(image.day))
        for name in CUBE_VARIABLES:
            np.testing.assert_allclose(day[name].values, expected(image, name), atol=1e-6, rtol=1e-6, equal_nan=True)
        assert float(day.valid_fraction) == pytest.approx(np.isfinite(image.variables["Red"]).mean(), abs=1e-6)
    unwritten = ds.sel(time=np.datetime64(D2))
    assert np.isnan(unwritten.Red.values).all() and np.isnan(unwritten.n_obs.values).all()
    assert np.isnan(float(unwritten.valid_fraction))


def test_read_window_slices_missing_days_and_pinned_snapshot(cube_root: str) -> None:
    first = make_image(D1, seed=1)
    s1 = write_day(first)
    write_day(make_image(D3, seed=1))
    window = read_window(REGION, D1 - dt.timedelta(days=1), D3, rows=slice(5, 25), cols=slice(10, 50))
    assert window.data.shape == (6, 4, 20, 40) and window.data.dtype == np.float32
    assert window.days[0] == D1 - dt.timedelta(days=1) and window.days[-1] == D3
    assert window.available.tolist() == [False, True, False, False, False, True]
    assert np.isnan(window.data[~window.available]).all()
    for b, name in enumerate(MODEL_BANDS):
        np.testing.assert_allclose(window.data[1, b], expected(first, name)[5:25, 10:50], atol=1e-6, equal_nan=True)
    assert window.snapshot == latest_snapshot("TC")

    # a later rewrite of D1 does not change what the pinned snapshot returns
    second = make_image(D1, seed=2)
    s3 = write_day(second)
    assert s3 != s1 and latest_snapshot("TC") == s3
    pinned = read_window("TC", D1, D1, snapshot=s1, variables=("Red", "FRP"))
    np.testing.assert_allclose(pinned.data[0, 0], expected(first, "Red"), atol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(pinned.data[0, 1], expected(first, "FRP"))
    assert pinned.snapshot == s1
    now = read_window("TC", D1, D1, variables=("Red",))
    np.testing.assert_allclose(now.data[0, 0], expected(second, "Red"), atol=1e-6, equal_nan=True)
    # days beyond the time axis are simply missing
    far = read_window("TC", dt.date(2023, 1, 1), dt.date(2023, 1, 3))
    assert not far.available.any() and np.isnan(far.data).all()


def test_errors_are_clear(cube_root: str) -> None:
    with pytest.raises(CubeNotFoundError, match="expected an Icechunk repository"):
        read_window("TC", D1, D1)
    write_day(make_image(D1))
    with pytest.raises(SnapshotNotFoundError, match="ABCDEFGHJKMNPQRSTVWX"):
        read_window("TC", D1, D1, snapshot="ABCDEFGHJKMNPQRSTVWX")
    with pytest.raises(ValidationError, match="snapshot id"):
        read_window("TC", D1, D1, snapshot="not-a-snapshot")
    with pytest.raises(ValidationError, match="rows"):
        read_window("TC", D1, D1, rows=slice(30, 50))
    with pytest.raises(ValidationError, match="variables"):
        read_window("TC", D1, D1, variables=("Blue",))
    # same name, other grid: refused on write and on read
    other = PI.subregion("TC", 0, 0, 40, 60)
    with pytest.raises(ValidationError, match="created for"):
        write_day(DailyImage.empty(other, D2))
    with pytest.raises(ValidationError, match="expected region"):
        read_window(other, D1, D1)
    with pytest.raises(ValidationError, match="between 2012-01-01"):
        write_day(DailyImage.empty(REGION, dt.date(2011, 12, 31)))


def test_empty_day_and_rewrite_replace_only_that_day(local_root: str) -> None:
    write_day(make_image(D1))
    write_day(make_image(D2))
    with pytest.raises(LessCompleteError, match="at least as complete"):
        write_day(DailyImage.empty(REGION, D1))  # an empty read of a stored day is refused...
    write_day(DailyImage.empty(REGION, D1), force=True)  # ...unless the operator forces it
    window = read_window("TC", D1, D2, variables=CUBE_VARIABLES)
    assert window.available.all()
    red, frp, n_obs = window.data[0, 0], window.data[0, 3], window.data[0, 5]
    assert np.isnan(red).all() and (frp == 0).all() and (n_obs == 0).all()
    np.testing.assert_allclose(window.data[1, 0], expected(make_image(D2), "Red"), atol=1e-6, equal_nan=True)


def test_rewriting_identical_data_makes_no_commit(cube_root: str) -> None:
    first = write_day(make_image(D1))
    assert write_day(make_image(D1)) == first  # same values: no new snapshot
    assert latest_snapshot("TC") == first
    changed = make_image(D1)
    changed.variables["FRP"][0, 0] += 5.0
    second = write_day(changed)
    assert second != first
    assert read_window("TC", D1, D1, variables=("FRP",)).data[0, 0, 0, 0] == changed.variables["FRP"][0, 0]
