"""NRT and monthly products on hand-made probability cubes with known answers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from banet_ops.errors import ValidationError
from banet_ops.inference.products import ProductBuilder, monthly_product, monthly_window, nrt_product, nrt_window
from banet_ops.product import ModelRef
from banet_ops.regions import Region

REGION = Region(name="T", bbox=(10.0, 40.0, 10.04, 40.02), pixel_size=0.01)  # 2 rows x 4 cols
REF = ModelRef(sha256="ab" * 32, path="/w.pth")


def _cube() -> np.ndarray:
    return np.zeros((64, 2, 4), dtype=np.float32)


def test_nrt_window_is_the_64_days_ending_on_d() -> None:
    assert nrt_window(dt.date(2024, 3, 1)) == (dt.date(2023, 12, 29), dt.date(2024, 3, 1))


def test_nrt_threshold_cap_and_first_day_rule() -> None:
    day = dt.date(2023, 8, 31)
    start = day - dt.timedelta(days=63)
    p = _cube()
    p[10, 0, 0], p[11, 0, 0] = 0.25, 0.35  # 0.6, burned on day 11
    p[20, 0, 1] = 0.2  # below the threshold
    p[[30, 31, 32], 0, 2] = 0.9  # 2.7 → capped at 1, burned on day 30 (first maximum)
    p[0, 0, 3], p[5, 0, 3] = 0.8, 0.1  # highest on the first day of the window → discarded
    p[40, 1, 0], p[41, 1, 0] = 0.25, 0.25  # exactly at the threshold → burned
    p[63, 1, 1] = 0.7  # on D itself
    prod = nrt_product(REGION, day, p, models=[REF], cube_snapshot="snap1", threshold=0.5)
    assert prod.window_start == start and prod.window_end == day and prod.target_date == day
    np.testing.assert_allclose(prod.confidence, [[0.6, 0.2, 1.0, 0.9], [0.5, 0.7, 0, 0]], atol=1e-6)
    assert prod.confidence.max() == 1.0
    assert prod.burned.tolist() == [[True, False, True, False], [True, True, False, False]]
    assert prod.burn_date[0, 0] == np.datetime64(start + dt.timedelta(days=11))
    assert prod.burn_date[0, 2] == np.datetime64(start + dt.timedelta(days=30))
    assert prod.burn_date[1, 1] == np.datetime64(day)
    assert np.isnat(prod.burn_date[0, 1]) and np.isnat(prod.burn_date[0, 3])
    assert prod.n_burned == 4 and prod.cube_snapshot == "snap1" and prod.models == [REF]
    # a lower threshold picks up the weak pixel; the first-day pixel stays discarded
    low = nrt_product(REGION, day, p, threshold=0.15)
    assert low.burned[0, 1] and not low.burned[0, 3]
    assert low.burn_doy[0, 1] == (start + dt.timedelta(days=20)).timetuple().tm_yday


def test_monthly_window_starts_on_the_15th_of_the_previous_month() -> None:
    assert monthly_window(dt.date(2024, 3, 20)) == (dt.date(2024, 2, 15), dt.date(2024, 4, 18))
    assert monthly_window(dt.date(2024, 1, 1)) == (dt.date(2023, 12, 15), dt.date(2024, 2, 16))
    assert monthly_window(dt.date(2023, 3, 1)) == (dt.date(2023, 2, 15), dt.date(2023, 4, 19))


def test_monthly_uses_only_days_of_the_month() -> None:
    month = dt.date(2024, 3, 1)
    start, _ = monthly_window(month)  # 2024-02-15 (leap year: Feb 15..29 = 15 days)
    idx = {d: (d - start).days for d in (dt.date(2024, 2, 20), dt.date(2024, 3, 1), dt.date(2024, 3, 10), dt.date(2024, 3, 31), dt.date(2024, 4, 2))}
    assert idx[dt.date(2024, 3, 1)] == 15
    p = _cube()
    p[idx[dt.date(2024, 2, 20)], 0, 0] = 0.95  # strongest in February: ignored
    p[idx[dt.date(2024, 3, 10)], 0, 0] = 0.6
    p[idx[dt.date(2024, 3, 1)], 0, 1] = 0.7  # first day of M: kept (no first-day rule in monthly)
    p[idx[dt.date(2024, 3, 31)], 0, 2] = 0.8  # last day of M
    p[idx[dt.date(2024, 4, 2)], 0, 3] = 0.9  # April: not in March's product
    p[idx[dt.date(2024, 2, 20)], 1, 0] = 0.9  # February only
    prod = monthly_product(REGION, dt.date(2024, 3, 17), p, threshold=0.5)
    assert prod.target_date == month and prod.mode == "monthly"
    np.testing.assert_allclose(prod.confidence[0], [0.6, 0.7, 0.8, 0.0], atol=1e-6)
    assert prod.confidence[1, 0] == 0.0
    assert prod.burn_date[0, :3].tolist() == [dt.date(2024, 3, 10), dt.date(2024, 3, 1), dt.date(2024, 3, 31)]
    assert prod.burned.tolist() == [[True, True, True, False], [False, False, False, False]]
    dates = prod.burn_date[prod.burned].astype(object)
    assert all(d.year == 2024 and d.month == 3 for d in dates)


@pytest.mark.parametrize(("year", "days_in_feb"), [(2024, 29), (2023, 28)])
def test_february_window_in_leap_and_common_years(year: int, days_in_feb: int) -> None:
    start, end = monthly_window(dt.date(year, 2, 1))
    assert start == dt.date(year, 1, 15) and (end - start).days == 63
    builder = ProductBuilder(REGION, "monthly", dt.date(year, 2, 1))
    assert len(builder.dates) == days_in_feb
    assert builder.dates[0] == np.datetime64(f"{year}-02-01") and builder.dates[-1] == np.datetime64(f"{year}-02-{days_in_feb}")
    p = _cube()
    last = (dt.date(year, 2, days_in_feb) - start).days
    p[last, 0, 0] = 0.9
    p[last + 1, 0, 1] = 0.9  # March 1st: outside
    prod = monthly_product(REGION, dt.date(year, 2, 1), p)
    assert prod.burn_date[0, 0] == np.datetime64(dt.date(year, 2, days_in_feb))
    assert prod.burn_doy[0, 0] == 31 + days_in_feb
    assert not prod.burned[0, 1]


def test_banded_reduction_equals_one_shot() -> None:
    rng = np.random.default_rng(0)
    p = (rng.random((64, 2, 4)) ** 8 * 0.2).astype(np.float32)
    day = dt.date(2022, 7, 3)
    one = nrt_product(REGION, day, p, threshold=0.3)
    b = ProductBuilder(REGION, "nrt", day, threshold=0.3)
    b.add(slice(1, 2), p[:, 1:2])
    with pytest.raises(ValidationError, match=r"rows 0\.\.0 missing"):
        b.build(models=[], cube_snapshot="")
    b.add(slice(0, 1), p[:, 0:1])
    banded = b.build(models=[], cube_snapshot="")
    np.testing.assert_array_equal(banded.confidence, one.confidence)
    np.testing.assert_array_equal(banded.burn_date, one.burn_date)


def test_nir_background_is_the_median_of_the_last_days() -> None:
    nir = np.full((64, 2, 4), np.nan, dtype=np.float32)
    nir[-3:, 0, 0] = [0.1, 0.3, 0.2]
    nir[:50, 0, 1] = 0.4  # only old observations: outside the last 8 days → missing
    prod = nrt_product(REGION, dt.date(2022, 7, 3), _cube(), nir=nir)
    assert prod.nir is not None
    assert prod.nir[0, 0] == pytest.approx(0.2)
    assert np.isnan(prod.nir[0, 1])


def test_bad_inputs_are_validation_errors() -> None:
    with pytest.raises(ValidationError, match="shape"):
        nrt_product(REGION, dt.date(2022, 7, 3), np.zeros((63, 2, 4), np.float32))
    with pytest.raises(ValidationError, match="threshold"):
        nrt_product(REGION, dt.date(2022, 7, 3), _cube(), threshold=0)


def test_cells_never_observed_in_the_window_are_not_burned_and_marked() -> None:
    day = dt.date(2024, 1, 10)  # the window crosses the new year
    p = _cube()
    p[[30, 31], 0, :] = 0.4  # every cell of row 0 reaches 0.8, burned on day 30 = 2023-12-08
    builder = ProductBuilder(REGION, "nrt", day, threshold=0.5)
    builder.add(slice(0, 2), p)
    builder.add_observed(slice(0, 1), np.array([[True, True, False, True]]))  # (0, 2): no valid input all window
    builder.add_observed(slice(1, 2), np.ones((1, 4), dtype=bool))
    prod = builder.build(models=[REF], cube_snapshot="s")
    assert prod.burned[0].tolist() == [True, True, False, True]
    assert prod.observed is not None and not prod.observed[0, 2]
    codes = prod.burn_yyyyddd
    assert codes[0].tolist() == [2023342, 2023342, -1, 2023342] and codes[1].tolist() == [0, 0, 0, 0]
    assert nrt_product(REGION, day, p).observed is None  # no observation mask given: everything counts as observed
