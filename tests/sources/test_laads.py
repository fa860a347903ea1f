"""LAADS archive: listings in every shape, authenticated downloads, verification, cache, pairing."""

from __future__ import annotations

import hashlib
import threading
from datetime import date
from pathlib import Path

import pytest

from banet_ops.errors import AuthenticationError, IntegrityError, SourceUnavailableError, UnsafeNameError
from banet_ops.http import HttpClient
from banet_ops.regions import Region
from banet_ops.sources import LaadsArchive, RemoteItem, pair_granules, parse_listing_csv, parse_listing_json
from sources.fakeservers import FakeLaads, granule_name

DAY = date(2024, 1, 1)
PRODUCTS = ("VNP02MOD", "VNP03MOD")


def _populate(laads: FakeLaads) -> dict[str, bytes]:
    """Two day-time pairs with different production stamps, one night pair, one L1B without geo."""
    files = {}
    for hhmm, light, l1b_stamp, geo_stamp in (
        ("1200", "D", "2024001190000", "2024001185959"),
        ("1206", "D", "2024001190101", "2024001185858"),
        ("0000", "N", "2024001060000", "2024001055959"),
    ):
        for product, stamp in (("VNP02MOD", l1b_stamp), ("VNP03MOD", geo_stamp)):
            name = granule_name(product, DAY, hhmm, stamp)
            files[name] = f"{name} payload ".encode() * 50
            laads.add_file(product, DAY, name, files[name], illumination=light)
    lonely = granule_name("VNP02MOD", DAY, "1212")
    files[lonely] = b"lonely" * 100
    laads.add_file("VNP02MOD", DAY, lonely, files[lonely], illumination="D")
    return files


@pytest.mark.parametrize(("shape", "fmt"), [("content", "json"), ("legacy", "json"), ("content", "csv")])
def test_listing_shapes(shape: str, fmt: str, client: HttpClient, region: Region, token: str) -> None:
    with FakeLaads(token=token, listing_shape=shape) as laads:
        files = _populate(laads)
        archive = LaadsArchive(laads.url, client, token=None, products=PRODUCTS, listing_format=fmt)  # type: ignore[arg-type]
        found = archive.discover(region, DAY)
        assert laads.count(f"/5200/VNP02MOD/2024/001.{fmt}") == 1
        assert laads.count(f"/5200/VNP03MOD/2024/001.{fmt}") == 1
    names = {i.name for i in found} | {i.name for i in found.night}
    assert names == set(files)
    item = next(i for i in found if i.name.startswith("VNP02MOD.A2024001.1200"))
    assert item.size == len(files[item.name]) and item.key == "A2024001.1200" and item.day == DAY
    if shape == "legacy":  # legacy listings carry neither md5 nor illuminations: nothing is dropped as night
        assert item.md5 is None and found.night == []
    else:
        assert item.md5 == hashlib.md5(files[item.name]).hexdigest()
        assert {i.key for i in found.night} == {"A2024001.0000"}
        assert all(i.day_night != "N" for i in found)


def test_parsers_accept_both_shapes_and_skip_directories() -> None:
    legacy = b'[{"name": "sub", "size": 0, "last-modified": "x"}, {"name": "VNP02MOD.A2024001.1200.002.1.nc", "size": 12, "last-modified": "2024"}]'
    current = b'{"content": [{"name": "VNP02MOD.A2024001.1200.002.1.nc", "size": "12", "md5sum": "ABC", "illuminations": "D"}]}'
    csv = b"name, size, last_modified, md5sum\nVNP02MOD.A2024001.1200.002.1.nc, 12, 2024-01-01 06:53, abc\n"
    for entries in (parse_listing_json(legacy, "t"), parse_listing_json(current, "t"), parse_listing_csv(csv, "t")):
        assert [(e.name, e.size) for e in entries] == [("VNP02MOD.A2024001.1200.002.1.nc", 12)]
    assert parse_listing_json(current, "t")[0].md5 == "abc"
    assert parse_listing_json(current, "t")[0].day_night == "D"


def test_pairing_by_key_despite_different_stamps(client: HttpClient, region: Region, token: str) -> None:
    with FakeLaads(token=token) as laads:
        _populate(laads)
        found = LaadsArchive(laads.url, client, products=PRODUCTS).discover(region, DAY)
    result = pair_granules(found, ["VNP02MOD"])
    assert sorted(p.key for p in result.pairs) == ["A2024001.1200", "A2024001.1206"]
    for pair in result.pairs:
        assert pair.l1b.product == "VNP02MOD" and pair.geo.product == "VNP03MOD"
        assert pair.l1b.name.split(".")[4] != pair.geo.name.split(".")[4]  # production stamps differ
    assert [i.key for i in result.unpaired] == ["A2024001.1212"]


def test_download_sends_bearer_and_verifies(client: HttpClient, region: Region, tmp_path: Path, token: str) -> None:
    with FakeLaads(token=token) as laads:
        files = _populate(laads)
        archive = LaadsArchive(laads.url, client, token=token, products=PRODUCTS)  # type: ignore[arg-type]
        item = next(i for i in archive.discover(region, DAY) if i.key == "A2024001.1200" and i.product == "VNP02MOD")
        path = archive.fetch(item, tmp_path)
        downloads = [r for r in laads.requests if r.path.endswith(item.name)]
    assert path == tmp_path / "VNP02MOD" / item.name
    assert path.read_bytes() == files[item.name]
    assert [r.headers.get("Authorization") for r in downloads] == [f"Bearer {token}"]
    assert downloads[0].path.startswith("/api/v2/content/archives/allData/")  # the listing's downloadsLink


def test_html_login_page_names_the_file_and_leaves_nothing(client: HttpClient, region: Region, tmp_path: Path, token: str) -> None:
    with FakeLaads(token=token) as laads:
        _populate(laads)
        archive = LaadsArchive(laads.url, client, token="expired", products=PRODUCTS)  # type: ignore[arg-type]
        item = next(i for i in archive.discover(region, DAY) if i.product == "VNP02MOD")
        with pytest.raises(AuthenticationError) as info:
            archive.fetch(item, tmp_path)
    assert item.name in str(info.value) and "HTML" in str(info.value)
    assert "expired" not in str(info.value)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("flaw", ["size", "md5"])
def test_integrity_errors_leave_no_partial_file(flaw: str, client: HttpClient, region: Region, tmp_path: Path, token: str) -> None:
    name = granule_name("VNP02MOD", DAY, "1200")
    with FakeLaads(token=token) as laads:
        content = b"q" * 4096
        if flaw == "size":  # the server has a truncated copy of what the listing promises
            laads.add_file("VNP02MOD", DAY, name, content[:1000], size=4096, md5=hashlib.md5(content).hexdigest())
        else:
            laads.add_file("VNP02MOD", DAY, name, content, md5="0" * 32)
        archive = LaadsArchive(laads.url, client, token=token, products=("VNP02MOD",))  # type: ignore[arg-type]
        (item,) = archive.discover(region, DAY)
        with pytest.raises(IntegrityError) as info:
            archive.fetch(item, tmp_path)
    assert name in str(info.value)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # neither the file nor a *.tmp


def test_unsafe_listing_names_are_rejected_and_the_rest_fetched(client: HttpClient, region: Region, tmp_path: Path, token: str) -> None:
    good = granule_name("VNP02MOD", DAY, "1200")
    with FakeLaads(token=token) as laads:
        laads.add_file("VNP02MOD", DAY, good, b"g" * 300)
        for bad in ("../../etc/VNP02MOD.A2024001.1206.002.1.nc", "sub/VNP02MOD.A2024001.1212.002.1.nc", "..\\VNP02MOD.A2024001.1218.002.1.nc"):
            laads.add_entry("VNP02MOD", DAY, {"name": bad, "size": 10})
        archive = LaadsArchive(laads.url, client, token=token, products=("VNP02MOD",))  # type: ignore[arg-type]
        found = archive.discover(region, DAY)
        assert [i.name for i in found] == [good]
        assert len(found.rejected) == 3
        assert {r.reason for r in found.rejected} >= {"contains a path separator"}
        assert archive.fetch(found[0], tmp_path).read_bytes() == b"g" * 300
    forged = RemoteItem(name="../evil.nc", url="http://127.0.0.1:9/x", product="VNP02MOD", day=DAY, key="A2024001.1200", source="laads")
    with pytest.raises(UnsafeNameError):
        archive.fetch(forged, tmp_path)


def test_cache_reuse_makes_no_request(client: HttpClient, region: Region, tmp_path: Path, token: str) -> None:
    with FakeLaads(token=token) as laads:
        _populate(laads)
        archive = LaadsArchive(laads.url, client, token=token, products=PRODUCTS)  # type: ignore[arg-type]
        item = next(iter(archive.discover(region, DAY)))
        first = archive.fetch(item, tmp_path)
        before = len(laads.requests)
        second = archive.fetch(item, tmp_path)
        assert len(laads.requests) == before
        assert first == second
        first.write_bytes(b"corrupted")  # a damaged cache entry is downloaded again
        archive.fetch(item, tmp_path)
        assert len(laads.requests) == before + 1


def test_concurrent_fetches_respect_the_host_limit(region: Region, tmp_path: Path, token: str) -> None:
    client = HttpClient(retries=0, concurrency=3, timeout=5)
    with FakeLaads(token=token, hold_s=0.1) as laads:
        for i in range(9):
            laads.add_file("VNP02MOD", DAY, granule_name("VNP02MOD", DAY, f"{i * 6:04d}"), b"c" * 64)
        archive = LaadsArchive(laads.url, client, token=token, products=("VNP02MOD",))  # type: ignore[arg-type]
        items = archive.discover(region, DAY)
        threads = [threading.Thread(target=archive.fetch, args=(i, tmp_path)) for i in items]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert laads.max_concurrent == 3
    assert len(list((tmp_path / "VNP02MOD").iterdir())) == 9


def test_listing_retry_and_missing_day(client: HttpClient, region: Region, token: str) -> None:
    with FakeLaads(token=token) as laads:
        _populate(laads)
        laads.fail_next("/VNP02MOD/2024/001.json", 504)
        archive = LaadsArchive(laads.url, client, products=PRODUCTS)
        assert len(archive.discover(region, DAY)) == 5
        assert laads.count("/VNP02MOD/2024/001.json") == 2
        later = archive.discover(region, date(2024, 1, 2))
        assert list(later) == [] and len(later.missing) == 2
        laads.fail_always(".json", 503)
        with pytest.raises(SourceUnavailableError):
            archive.discover(region, DAY)


def test_foreign_download_links_are_not_followed(client: HttpClient, region: Region, tmp_path: Path, token: str) -> None:
    name = granule_name("VNP02MOD", DAY, "1200")
    with FakeLaads(token=token) as laads:
        laads.add_file("VNP02MOD", DAY, name, b"d" * 100, link="none")
        laads.listings[laads.day_folder("VNP02MOD", DAY)][0]["downloadsLink"] = f"http://203.0.113.9/steal/{name}"
        archive = LaadsArchive(laads.url, client, token=token, products=("VNP02MOD",))  # type: ignore[arg-type]
        (item,) = archive.discover(region, DAY)
        assert item.url == f"{laads.url}/5200/VNP02MOD/2024/001/{name}"
        assert archive.fetch(item, tmp_path).read_bytes() == b"d" * 100
