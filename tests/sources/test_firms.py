"""FIRMS area API and local folder: windows, error mapping, secrecy, caching."""

from __future__ import annotations

import logging
import os
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from banet_ops.errors import AuthenticationError, ConfigError, RateLimitError, SourceError, is_retryable
from banet_ops.http import HttpClient
from banet_ops.regions import Region
from banet_ops.sources import FirmsApi, FirmsFolder, firms_windows
from sources.fakeservers import FakeFirms

KEY = "abcdef0123456789abcdef0123456789"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"


def test_windows_split_into_at_most_five_days() -> None:
    windows = firms_windows(date(2024, 1, 1), date(2024, 1, 12))
    assert windows == [(date(2024, 1, 1), 5), (date(2024, 1, 6), 5), (date(2024, 1, 11), 2)]
    assert firms_windows(date(2024, 1, 1), date(2024, 1, 1)) == [(date(2024, 1, 1), 1)]
    with pytest.raises(ConfigError):
        firms_windows(date(2024, 1, 2), date(2024, 1, 1))


def test_twelve_days_are_three_requests_with_literal_commas(client: HttpClient, region: Region, tmp_path: Path) -> None:
    with FakeFirms(map_key=KEY) as firms:
        firms.add_detection("VIIRS_SNPP_NRT", 37.5, -7.5, date(2024, 1, 3), frp=12.5)
        firms.add_detection("VIIRS_SNPP_NRT", 37.6, -7.4, date(2024, 1, 12), frp=3.0)
        firms.add_detection("VIIRS_SNPP_NRT", 50.0, 10.0, date(2024, 1, 3))  # outside the area
        api = FirmsApi(firms.url, client, KEY, sources=("VIIRS_SNPP_NRT",))
        items = api.discover_range(region, date(2024, 1, 1), date(2024, 1, 12))
        paths = [api.fetch(i, tmp_path) for i in items]
        assert [(r.day_range, r.date) for r in firms.area_requests] == [(5, date(2024, 1, 1)), (5, date(2024, 1, 6)), (2, date(2024, 1, 11))]
        assert all(r.area == "-10,35,-5,40" for r in firms.area_requests)
        assert all("%2C" not in r.raw_path and ",35," in r.raw_path for r in firms.requests if "/api/area/" in r.raw_path)
    texts = [p.read_text() for p in paths]
    assert all(t.startswith("latitude,longitude,") for t in texts)
    assert "12.50" in texts[0] and texts[1].count("\n") == 1 and "3.00" in texts[2]  # middle window: header only
    assert all(KEY not in i.url and KEY not in i.name for i in items)
    assert list(tmp_path.rglob("*.tmp")) == []


def test_wrong_map_key_is_permanent_and_never_shown(client: HttpClient, region: Region, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "00000000111111112222222233333333"
    with FakeFirms(map_key=KEY) as firms:
        with pytest.raises(AuthenticationError) as early:  # the availability query already tells
            FirmsApi(firms.url, client, wrong, sources=("VIIRS_NOAA20_NRT",)).discover(region, date(2024, 1, 5))
        api = FirmsApi(firms.url, client, wrong, sources=("VIIRS_NOAA20_NRT",), switch_nrt_sp=False)
        (item,) = api.discover(region, date(2024, 1, 5))
        with pytest.raises(AuthenticationError) as info:
            api.fetch(item, tmp_path)
        assert firms.count("/api/area/csv/") == 1  # not retried
    for exc in (early.value, info.value):
        assert wrong not in str(exc) and wrong not in repr(exc)
        assert "Invalid MAP_KEY" in str(exc)
        assert not is_retryable(exc)
    assert wrong not in caplog.text
    assert not list(tmp_path.rglob("*.csv"))


@pytest.mark.parametrize("status", [200, 400, 403])
def test_transaction_limit_is_a_retryable_rate_limit(status: int, client: HttpClient, region: Region, tmp_path: Path) -> None:
    with FakeFirms(map_key=KEY, transaction_limit=1, limit_status=status) as firms:
        api = FirmsApi(firms.url, client, KEY, sources=("VIIRS_SNPP_NRT",))
        first, second = api.discover_range(region, date(2024, 1, 1), date(2024, 1, 7))
        api.fetch(first, tmp_path)
        with pytest.raises(RateLimitError) as info:
            api.fetch(second, tmp_path)
    assert is_retryable(info.value) and KEY not in str(info.value)


def test_invalid_area_is_a_permanent_source_error(client: HttpClient, tmp_path: Path) -> None:
    with FakeFirms(map_key=KEY) as firms:
        api = FirmsApi(firms.url, client, KEY, sources=("VIIRS_SNPP_NRT",))
        (item,) = api.discover(Region(name="T", bbox=(-10, 35, -5, 40), pixel_size=0.01), date(2024, 1, 1))
        bad = type(item)(**{**item.__dict__, "extra": {**item.extra, "area": "-5,35,-10,40"}})
        with pytest.raises(SourceError, match="Invalid area") as info:
            api.fetch(bad, tmp_path)
    assert not is_retryable(info.value)


def test_server_errors_are_retried_then_succeed(client: HttpClient, region: Region, tmp_path: Path) -> None:
    with FakeFirms(map_key=KEY) as firms:
        firms.fail_next("/api/area/csv/", 500, 503)
        api = FirmsApi(firms.url, client, KEY, sources=("VIIRS_SNPP_NRT",))
        (item,) = api.discover(region, date(2024, 1, 1))
        assert api.fetch(item, tmp_path).read_text().startswith("latitude,")
        assert firms.count("/api/area/csv/") == 3


def test_secret_absent_from_all_logs_on_failures(region: Region, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = HttpClient(retries=2, base_delay=0.001, max_delay=0.002, timeout=0.3)
    with FakeFirms(map_key=KEY) as firms:
        firms.fail_next("/api/area/csv/", "reset")
        firms.fail_always("/api/area/csv/", 503)
        api = FirmsApi(firms.url, client, KEY, sources=("VIIRS_SNPP_NRT",))
        (item,) = api.discover(region, date(2024, 1, 1))
        with pytest.raises(SourceError) as info:
            api.fetch(item, tmp_path)
    assert caplog.records  # retries and urllib3 lines were logged ...
    assert KEY not in caplog.text  # ... without the key
    assert KEY not in str(info.value) and info.value.__cause__ is None


def test_cache_reused_only_for_settled_windows(client: HttpClient, region: Region, tmp_path: Path) -> None:
    with FakeFirms(map_key=KEY) as firms:
        api = FirmsApi(firms.url, client, KEY, sources=("VIIRS_SNPP_NRT",))
        (old,) = api.discover(region, date(2023, 6, 1))
        assert not api.is_cached(old, tmp_path)
        api.fetch(old, tmp_path)
        assert api.is_cached(old, tmp_path)
        api.fetch(old, tmp_path)
        assert firms.count("/api/area/csv/") == 1  # fetched long after the window: final
        (recent,) = api.discover(region, date.today() - timedelta(days=1))
        api.fetch(recent, tmp_path)
        assert not api.is_cached(recent, tmp_path)
        api.fetch(recent, tmp_path)
        assert firms.count("/api/area/csv/") == 3  # NRT window still filling: fetched again
        path = tmp_path / "VIIRS_SNPP_NRT" / old.name
        stale = time.mktime((2023, 6, 2, 0, 0, 0, 0, 0, -1))
        os.utime(path, (stale, stale))  # a copy fetched the day after: not final yet
        api.fetch(old, tmp_path)
        assert firms.count("/api/area/csv/") == 4


def test_missing_map_key_is_a_config_error(client: HttpClient, region: Region, tmp_path: Path) -> None:
    api = FirmsApi("http://127.0.0.1:9", client, None, sources=("VIIRS_SNPP_NRT",))
    (item,) = api.discover(region, date(2024, 1, 1))
    with pytest.raises(ConfigError, match="BANET_FIRMS_MAP_KEY"):
        api.fetch(item, tmp_path)
    with pytest.raises(ConfigError):
        FirmsApi("http://127.0.0.1:9", client, KEY, sources=("MODIS_NRT",))


def test_folder_discovers_files_covering_the_day(region: Region, tmp_path: Path) -> None:
    real = "J1_VIIRS_C2_Global_VJ114IMGTDL_NRT_2023313.txt"
    shutil.copy(FIXTURES / real, tmp_path / real)
    (tmp_path / "SUOMI_VIIRS_C2_Global_VNP14IMGTDL_NRT_2023314.txt").write_text("latitude,longitude\n")
    (tmp_path / "FIRMS_VIIRS_SNPP_NRT_2023311_5d_-10_35_-5_40.csv").write_text("latitude,longitude\n")
    (tmp_path / "fire_archive_SV-C2_119718.csv").write_text("latitude,longitude\n")
    (tmp_path / "notes.md").write_text("not a FIRMS file")
    folder = FirmsFolder(tmp_path.as_uri())
    found = folder.discover(region, date(2023, 11, 9))  # day 313
    assert sorted(i.name for i in found) == sorted([real, "FIRMS_VIIRS_SNPP_NRT_2023311_5d_-10_35_-5_40.csv", "fire_archive_SV-C2_119718.csv"])
    item = next(i for i in found if i.name == real)
    assert item.extra["firms_source"] == "VIIRS_NOAA20"
    assert folder.fetch(item) == tmp_path / real
    assert [i.name for i in folder.discover(region, date(2023, 11, 10)) if "NRT_2023" in i.name] == [
        "FIRMS_VIIRS_SNPP_NRT_2023311_5d_-10_35_-5_40.csv",
        "SUOMI_VIIRS_C2_Global_VNP14IMGTDL_NRT_2023314.txt",
    ]


def test_nrt_replaced_by_sp_where_nrt_has_no_data(client: HttpClient, region: Region, tmp_path: Path) -> None:
    with FakeFirms(map_key=KEY) as firms:
        firms.availability["VIIRS_SNPP_NRT"] = (date(2024, 6, 1), date.today())
        firms.availability["VIIRS_SNPP_SP"] = (date(2012, 1, 20), date(2024, 5, 31))
        firms.add_detection("VIIRS_SNPP_SP", 37.5, -7.5, date(2024, 5, 30), frp=7.0)
        api = FirmsApi(firms.url, client, KEY, sources=("VIIRS_SNPP_NRT", "VIIRS_NOAA20_NRT"))
        items = api.discover_range(region, date(2024, 5, 28), date(2024, 6, 2))
        assert [(i.product, i.day, i.extra["day_range"]) for i in items] == [
            ("VIIRS_SNPP_SP", date(2024, 5, 28), 4),
            ("VIIRS_SNPP_NRT", date(2024, 6, 1), 2),
            ("VIIRS_NOAA20_NRT", date(2024, 5, 28), 5),
            ("VIIRS_NOAA20_NRT", date(2024, 6, 2), 1),
        ]
        assert "7.00" in api.fetch(items[0], tmp_path).read_text()
        assert firms.count("/api/data_availability/") == 1
        api.discover_range(region, date(2024, 5, 28), date(2024, 6, 2))
        assert firms.count("/api/data_availability/") == 1  # read once per FirmsApi
        both = FirmsApi(firms.url, client, KEY, sources=("VIIRS_SNPP_NRT", "VIIRS_SNPP_SP"))
        assert {i.product for i in both.discover(region, date(2024, 5, 28))} == {"VIIRS_SNPP_NRT", "VIIRS_SNPP_SP"}  # no duplicate SP
