"""Local mirror, the make_sources factory and the Sources facade (pairs, spatial filter, fetch_many)."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from pathlib import Path

import pytest

from banet_ops.errors import ConfigError, IntegrityError, NotFoundError
from banet_ops.http import HttpClient
from banet_ops.regions import Region
from banet_ops.settings import Settings
from banet_ops.sources import FirmsApi, FirmsFolder, LaadsArchive, LocalMirror, make_sources
from sources.fakeservers import FakeCmr, FakeLaads, granule_name

DAY = date(2024, 1, 1)


def _mirror(root: Path, keys: list[str], *, products: tuple[str, str] = ("VNP02MOD", "VNP03MOD")) -> dict[str, Path]:
    paths = {}
    for product in products:
        folder = root / "5200" / product / "2024" / "001"
        folder.mkdir(parents=True, exist_ok=True)
        for hhmm in keys:
            name = granule_name(product, DAY, hhmm, stamp=f"2024001{hhmm}{len(product)}0")
            (folder / name).write_bytes(name.encode() * 10)
            paths[name] = folder / name
    return paths


def test_mirror_scan_pairs_and_fetch_in_place(tmp_path: Path, region: Region) -> None:
    paths = _mirror(tmp_path / "mirror", ["1200", "1206"])
    (tmp_path / "mirror" / "5200" / "VNP02MOD" / "2024" / "001" / "partial.nc.1234.ab.tmp").write_bytes(b"x")
    mirror = LocalMirror((tmp_path / "mirror").as_uri())
    found = mirror.discover(region, DAY)
    assert sorted(i.name for i in found) == sorted(paths)
    item = found[0]
    assert mirror.fetch(item, tmp_path / "cache") == paths[item.name]
    assert not (tmp_path / "cache").exists()  # used in place, nothing copied
    assert mirror.discover(region, date(2024, 1, 2)).missing


def test_mirror_listing_file_gives_metadata_and_flags(tmp_path: Path, region: Region) -> None:
    root = tmp_path / "mirror"
    paths = _mirror(root, ["1200", "0000"], products=("VNP02MOD", "VNP03MOD"))
    for product in ("VNP02MOD", "VNP03MOD"):
        folder = root / "5200" / product / "2024" / "001"
        entries = [
            {"name": p.name, "size": p.stat().st_size, "md5sum": hashlib.md5(p.read_bytes()).hexdigest(), "illuminations": "N" if ".0000." in p.name else "D"}
            for p in sorted(folder.iterdir())
        ]
        entries.append({"name": granule_name(product, DAY, "1800"), "size": 10})  # listed, not mirrored
        folder.with_name("001.json").write_text(json.dumps({"content": entries}))
    mirror = LocalMirror(root)
    found = mirror.discover(region, DAY)
    assert {i.key for i in found} == {"A2024001.1200"} and {i.key for i in found.night} == {"A2024001.0000"}
    assert all(i.md5 for i in found) and len(found.rejected) == 2
    item = found[0]
    paths[item.name].write_bytes(b"changed")
    with pytest.raises(IntegrityError, match=item.name):
        mirror.fetch(item)
    paths[item.name].write_bytes(b"")
    with pytest.raises(IntegrityError, match="empty"):
        mirror.fetch(item)
    paths[item.name].unlink()
    with pytest.raises(NotFoundError, match=item.name):
        mirror.fetch(item)


def test_make_sources_chooses_by_scheme(banet_home: Path, tmp_path: Path) -> None:
    local = make_sources(Settings(archive_url=tmp_path.as_uri(), firms_url=tmp_path.as_uri()))
    assert isinstance(local.archive, LocalMirror) and isinstance(local.firms, FirmsFolder)
    assert local.archive.products == ("VNP02MOD", "VNP03MOD", "VJ102MOD", "VJ103MOD")
    assert local.cache_dir == banet_home / "cache"
    remote = make_sources(Settings(earthdata_token="t0ken-value", firms_map_key="k3y-value"))
    assert isinstance(remote.archive, LaadsArchive) and isinstance(remote.firms, FirmsApi)
    assert remote.archive.root_url == "https://ladsweb.modaps.eosdis.nasa.gov/archive/allData"
    with pytest.raises(ConfigError, match="BANET_ARCHIVE_URL"):
        make_sources(Settings(archive_url="ftp://example.org/allData"))
    with pytest.raises(ConfigError, match="VNP99MOD"):
        make_sources(Settings(archive_url=tmp_path.as_uri(), viirs_products=("VNP99MOD",)))


def test_sources_on_a_mirror(banet_home: Path, tmp_path: Path, region: Region) -> None:
    _mirror(tmp_path / "m", ["1200", "1206", "1212"])
    (tmp_path / "m" / "5200" / "VNP03MOD" / "2024" / "001" / granule_name("VNP03MOD", DAY, "1212", stamp="20240011212" + "80")).unlink()
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "SUOMI_VIIRS_C2_Global_VNP14IMGTDL_NRT_2024001.txt").write_text("latitude,longitude\n")
    sources = make_sources(Settings(archive_url=(tmp_path / "m").as_uri(), firms_url=(tmp_path / "f").as_uri(), viirs_products=("VNP02MOD",)))
    result = sources.viirs_pairs(region, DAY)
    assert [p.key for p in result.pairs] == ["A2024001.1200", "A2024001.1206"]
    assert [i.key for i in result.unpaired] == ["A2024001.1212"]
    l1b, geo = sources.fetch_pair(result.pairs[0])
    assert l1b.name.startswith("VNP02MOD") and geo.name.startswith("VNP03MOD") and l1b.is_file() and geo.is_file()
    fires = sources.fire_items(region, DAY, date(2024, 1, 3))
    assert [sources.fetch(i).name for i in fires] == ["SUOMI_VIIRS_C2_Global_VNP14IMGTDL_NRT_2024001.txt"]


def test_remote_archive_narrowed_to_the_region_with_cmr(banet_home: Path, tmp_path: Path, region: Region, token: str) -> None:
    client = HttpClient(retries=1, base_delay=0.001, max_delay=0.002, timeout=2, concurrency=2)
    with FakeLaads(token=token) as laads, FakeCmr(token=token) as cmr:
        for hhmm in ("1200", "1206", "1212"):
            for product in ("VNP02MOD", "VNP03MOD"):
                laads.add_file(product, DAY, granule_name(product, DAY, hhmm), f"{product}{hhmm}".encode() * 30, illumination="D")
        # CMR knows the footprints: only 1200 and 1206 cover the region; 1212 is over Asia
        for hhmm, bbox in (("1200", (-12.0, 30.0, 0.0, 45.0)), ("1206", (-8.0, 38.0, 5.0, 50.0)), ("1212", (90.0, 10.0, 110.0, 30.0))):
            cmr.add_granule("VNP03MOD", "2", granule_name("VNP03MOD", DAY, hhmm), datetime(2024, 1, 1, int(hhmm[:2]), int(hhmm[2:])), bbox=bbox)
        settings = Settings(archive_url=laads.url, cmr_url=cmr.url, earthdata_token=token, viirs_products=("VNP02MOD",), firms_url=tmp_path.as_uri())
        sources = make_sources(settings, client=client)
        result = sources.viirs_pairs(region, DAY)
        assert [p.key for p in result.pairs] == ["A2024001.1200", "A2024001.1206"]
        assert not sources.is_cached(result.pairs[0].l1b)
        report = sources.fetch_many([f for p in result.pairs for f in (p.l1b, p.geo)])
        assert sources.is_cached(result.pairs[0].l1b)
        assert sorted(report.paths) == sorted(f.name for p in result.pairs for f in (p.l1b, p.geo)) and report.errors == {}
        assert all(path.parent.parent == banet_home / "cache" for path in report.paths.values())
        laads.fail_always(granule_name("VNP02MOD", DAY, "1212"), 503)
        cmr.fail_always("granules.json", 503)  # CMR down: keep every pair rather than lose data
        result = sources.viirs_pairs(region, DAY)
        assert len(result.pairs) == 3
        report = sources.fetch_many([p.l1b for p in result.pairs])
        assert list(report.errors) == [granule_name("VNP02MOD", DAY, "1212")] and len(report.paths) == 2


def test_mirror_lists_legacy_per_band_files(tmp_path: Path, region: Region) -> None:
    from banet_ops.sources import group_by_key

    folder = tmp_path / "5000" / "NPP_VMAES_L1" / "2017" / "300"
    folder.mkdir(parents=True)
    stem = "NPP_VMAES_L1.A2017300.1406.001.2017300192651.psrpgscs_000501412525"
    layers = ("Reflectance_M5", "Reflectance_M7", "Reflectance_M10", "Radiance_M12", "Radiance_M15", "SolarZenithAngle", "SatelliteZenithAngle")
    for layer in layers:
        (folder / f"{stem}.{layer}.hdf").write_bytes(b"\x0e\x03\x13\x01" + layer.encode())
    found = LocalMirror(tmp_path).list_day("NPP_VMAES_L1", date(2017, 10, 27))
    assert found.rejected == [] and len(found) == 7
    assert list(group_by_key(found)) == ["A2017300.1406"]
    assert all(i.product == "NPP_VMAES_L1" and i.extra["archive_set"] == "5000" for i in found)
