"""CMR granule search: paging with CMR-Search-After, link selection, day/night, downloads."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from banet_ops.errors import AuthenticationError
from banet_ops.http import HttpClient
from banet_ops.regions import Region
from banet_ops.sources import CmrSearch, pair_granules
from sources.fakeservers import FakeCmr, granule_name

DAY = date(2024, 1, 1)


def _add_day(cmr: FakeCmr, product: str, version: str, n: int, *, day_night: str = "DAY", first: int = 0) -> list[str]:
    names = []
    for i in range(first, first + n):
        start = datetime(2024, 1, 1) + timedelta(minutes=6 * i)
        name = granule_name(product, DAY, f"{start:%H%M}")
        cmr.add_granule(product, version, name, start, day_night=day_night, bbox=(-12, 33, -3, 42), content=name.encode() * 20)
        names.append(name)
    return names


def test_paging_over_three_pages_with_search_after(client: HttpClient, region: Region) -> None:
    with FakeCmr() as cmr:
        names = _add_day(cmr, "VNP03MOD", "2", 7)
        _add_day(cmr, "VNP03MOD", "1", 3, first=20)  # another collection version: filtered by CMR
        search = CmrSearch(cmr.url, client, products=("VNP03MOD",), page_size=3)
        found = search.discover(region, DAY)
        pages = [r for r in cmr.requests if r.path == "/search/granules.json"]
    assert [i.name for i in found] == names
    assert len(pages) == 3
    assert [p.headers.get("CMR-Search-After") for p in pages] == [None, "[3]", "[6]"]
    q = pages[0].query
    assert q["short_name"] == ["VNP03MOD"] and q["version"] == ["2"] and q["page_size"] == ["3"]
    assert q["bounding_box"] == ["-10,35,-5,40"]
    assert q["temporal"] == ["2024-01-01T00:00:00Z,2024-01-01T23:59:59Z"]
    assert all("page_num" not in p.query for p in pages)


def test_full_last_page_ends_on_empty_page(client: HttpClient, region: Region) -> None:
    with FakeCmr() as cmr:
        _add_day(cmr, "VNP03MOD", "2", 6)
        found = CmrSearch(cmr.url, client, products=("VNP03MOD",), page_size=3).discover(region, DAY)
        assert cmr.count("granules.json") == 3  # 3 + 3 + an empty page without the header
    assert len(found) == 6


def test_links_inherited_and_s3_are_ignored(client: HttpClient, region: Region) -> None:
    with FakeCmr() as cmr:
        (name,) = _add_day(cmr, "VNP02MOD", "2", 1)
        (item,) = CmrSearch(cmr.url, client, products=("VNP02MOD",)).discover(region, DAY)
        assert item.url == f"{cmr.base}/data/{name}"
    assert item.key == "A2024001.0000" and item.source == "cmr" and item.extra["concept_id"].endswith("-LAADS")


def test_granule_without_usable_link_is_rejected(client: HttpClient, region: Region) -> None:
    with FakeCmr() as cmr:
        name = granule_name("VNP02MOD", DAY, "1200")
        cmr.add_granule("VNP02MOD", "2", name, datetime(2024, 1, 1, 12), bbox=(-12, 33, -3, 42))
        cmr.granules[-1].entry["links"] = [link for link in cmr.granules[-1].entry["links"] if link.get("inherited") or link["href"].startswith("s3://")]
        found = CmrSearch(cmr.url, client, products=("VNP02MOD",)).discover(region, DAY)
    assert list(found) == [] and [r.name for r in found.rejected] == [name]


def test_night_granules_dropped_and_pairs_formed(client: HttpClient, region: Region) -> None:
    with FakeCmr() as cmr:
        _add_day(cmr, "VNP02MOD", "2", 2)
        _add_day(cmr, "VNP03MOD", "2", 2)
        _add_day(cmr, "VNP02MOD", "2", 1, day_night="NIGHT", first=10)
        _add_day(cmr, "VNP03MOD", "2", 1, day_night="NIGHT", first=10)
        found = CmrSearch(cmr.url, client, products=("VNP02MOD", "VNP03MOD")).discover(region, DAY)
    assert len(found) == 4 and len(found.night) == 2
    assert [p.key for p in pair_granules(found, ["VNP02MOD"]).pairs] == ["A2024001.0000", "A2024001.0006"]


def test_fetch_uses_bearer_token(client: HttpClient, region: Region, tmp_path: Path, token: str) -> None:
    with FakeCmr(token=token) as cmr:
        (name,) = _add_day(cmr, "VNP02MOD", "2", 1)
        (item,) = CmrSearch(cmr.url, client, token=token, products=("VNP02MOD",)).discover(region, DAY)
        path = CmrSearch(cmr.url, client, token=token).fetch(item, tmp_path)
        assert path.read_bytes() == name.encode() * 20
        assert [r.headers.get("Authorization") for r in cmr.requests if r.path.startswith("/data/")] == [f"Bearer {token}"]
        with pytest.raises(AuthenticationError, match=name):
            CmrSearch(cmr.url, client, token="nope").fetch(item, tmp_path / "other")


def test_token_only_sent_to_earthdata_or_cmr_hosts(client: HttpClient, token: str) -> None:
    search = CmrSearch("http://127.0.0.1:9/search", client, token=token)
    assert search.token_for("https://data.laadsdaac.earthdatacloud.nasa.gov/prod-lads/VNP02MOD/x.nc") is not None
    assert search.token_for("http://127.0.0.1:9/data/x.nc") is not None
    assert search.token_for("https://evil.example.com/x.nc") is None
    assert search.token_for("http://data.laadsdaac.earthdatacloud.nasa.gov/x.nc") is None  # never over plain http
