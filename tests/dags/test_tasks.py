"""The task bodies behind the DAGs, tested without Airflow running."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from banet_ops.daily_image import DailyImage
from banet_ops.errors import DataFormatError, InsufficientDataError, PermanentError, RetryableError
from banet_ops.orchestration import tasks
from banet_ops.orchestration.connections import env_from_connections
from banet_ops.regions import Region

REGION = Region(name="T1", bbox=(-8.0, 40.0, -7.8, 40.1), pixel_size=0.01)


def test_infer_targets_from_param_and_events(banet_home: Path) -> None:
    by_param = tasks.infer_targets("PI", "nrt", None, {"day": "2024-07-05", "snapshot": "SNAP1"})
    assert by_param == [tasks.backend_kwargs("PI", "2024-07-05", "nrt", "SNAP1")]
    assert by_param[0]["arguments"][:8] == ["infer", "--region", "PI", "--date", "2024-07-05", "--mode", "nrt", "--snapshot"]

    events = {"cube/PI": [SimpleNamespace(extra={"day": "2024-07-02", "snapshot": "A"}), SimpleNamespace(extra={"day": "2024-07-01", "snapshot": "B"}),
                          SimpleNamespace(extra={"day": "2024-07-02", "snapshot": "C"})]}  # fmt: skip
    targets = tasks.infer_targets("PI", "nrt", events, {})
    assert [(t["labels"]["banet.io/date"], t["arguments"][t["arguments"].index("--snapshot") + 1]) for t in targets] == [
        ("2024-07-01", "B"),
        ("2024-07-02", "C"),  # the re-ingested day keeps its latest snapshot
    ]
    with pytest.raises(PermanentError, match="expected cube events"):
        tasks.infer_targets("PI", "nrt", {}, {})


def test_monthly_target_is_previous_month_unless_given(banet_home: Path) -> None:
    [target] = tasks.monthly_targets("PI", dt.datetime(2024, 3, 11, 6, tzinfo=dt.UTC), {})
    assert target["labels"]["banet.io/date"] == "2024-02-01"
    [target] = tasks.monthly_targets("PI", dt.datetime(2024, 1, 11, 6, tzinfo=dt.UTC), {})
    assert target["labels"]["banet.io/date"] == "2023-12-01"
    [target] = tasks.monthly_targets("PI", dt.datetime(2024, 3, 11, tzinfo=dt.UTC), {"month": "2023-08"})
    assert target["labels"]["banet.io/mode"] == "monthly" and target["labels"]["banet.io/date"] == "2023-08-01"


def test_staging_round_trip_and_corrupt_file(tmp_path: Path) -> None:
    image = DailyImage.empty(REGION, dt.date(2024, 7, 1))
    image.variables["Red"][:] = np.random.default_rng(0).random(REGION.shape, dtype=np.float32)
    image.granules.append("VNP02MOD.A2024183.1200.002.x.nc")
    path = tasks.stage_image(image, tmp_path / "T1" / "2024-07-01.npz")
    back = tasks.load_staged(path)
    assert back.day == image.day and back.region == REGION and back.granules == image.granules
    np.testing.assert_array_equal(back.variables["Red"], image.variables["Red"])
    assert not list(path.parent.glob(".*.tmp"))
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataFormatError, match=r"2024-07-01\.npz"):
        tasks.load_staged(path)


def test_connections_map_onto_settings() -> None:
    class Conn(SimpleNamespace):
        @property
        def extra_dejson(self) -> dict:
            return self.extra

        def get_uri(self) -> str:
            return f"postgresql://{self.login}:{self.password}@{self.host}:{self.port}/{self.schema}"

    conns = {
        "banet_laads": Conn(host=None, login=None, password="edl-token", extra={}),
        "banet_firms": Conn(host="https://firms.example", login=None, password="0123abcd", extra={}),
        "banet_postgis": Conn(host="db", login="w", password="pw", port=5432, schema="banet", extra={}),
        "banet_s3": Conn(host=None, login="AK", password="SK", extra={"endpoint_url": "http://127.0.0.1:9000"}),
    }
    env = env_from_connections(conns.get)
    assert env == {
        "BANET_EARTHDATA_TOKEN": "edl-token",
        "BANET_FIRMS_MAP_KEY": "0123abcd",
        "BANET_FIRMS_URL": "https://firms.example",
        "BANET_DATABASE_URL": "postgresql+psycopg://w:pw@db:5432/banet",
        "AWS_ACCESS_KEY_ID": "AK",
        "AWS_SECRET_ACCESS_KEY": "SK",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
    }
    assert env_from_connections(lambda _id: None) == {}


def _fake_cli(folder: Path, code: int, message: str) -> None:
    script = folder / "banet-ops"
    script.write_text(f"#!/bin/sh\necho 'summary line'\necho 'banet-ops: error: {message}' >&2\nexit {code}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


@pytest.mark.parametrize(("code", "error"), [(75, RetryableError), (1, PermanentError), (66, InsufficientDataError)])
def test_local_backend_maps_exit_codes(tmp_path: Path, banet_home: Path, monkeypatch: pytest.MonkeyPatch, code: int, error: type) -> None:
    _fake_cli(tmp_path, code, "cube not reachable")
    monkeypatch.setattr(tasks, "banet_ops_executable", lambda: str(tmp_path / "banet-ops"))
    with pytest.raises(error, match="cube not reachable") as raised:
        tasks.run_local_cli(["infer", "--region", "PI"])
    assert str(raised.value).count("banet-ops") == 1  # the child's "banet-ops: error:" prefix is not nested in ours


def test_local_backend_passes_secrets_by_environment_only(tmp_path: Path, banet_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "banet-ops"
    script.write_text('#!/bin/sh\necho "args=$*"\necho "token=${BANET_EARTHDATA_TOKEN}"\n')
    script.chmod(0o755)
    monkeypatch.setattr(tasks, "banet_ops_executable", lambda: str(script))
    monkeypatch.setenv("BANET_EARTHDATA_TOKEN", "s3cr3t-token")
    out = tasks.run_local_cli(tasks.infer_arguments("PI", "2024-07-01", "nrt", None))
    assert "token=s3cr3t-token" in out["summary"]
    assert all("s3cr3t" not in a for a in out["summary"][0].split())
    assert os.environ["BANET_EARTHDATA_TOKEN"] == "s3cr3t-token"


# --- discover / fetch error split ---------------------------------------------------------------


def _item(name: str, product: str = "VNP02MOD", source: str = "laads") -> object:
    from banet_ops.sources import RemoteItem

    return RemoteItem(name=name, url=f"https://archive.example/{name}", product=product, day=dt.date(2024, 7, 1), key="A2024183.1200", source=source)


class _FakeSources:
    """Stands in for ``make_sources(settings)``: canned discovery and fetch outcomes."""

    def __init__(self, pairing: object = None, errors: dict | None = None) -> None:
        from banet_ops.sources import Discovery

        self.pairing = pairing
        self.errors = errors or {}
        self.archive = object()  # not a local mirror: no legacy files
        self.fires = Discovery()

    def viirs_pairs(self, region: object, day: dt.date) -> object:
        return self.pairing

    def fire_items(self, region: object, day: dt.date) -> object:
        return self.fires

    def is_cached(self, item: object) -> bool:
        return False

    def fetch_many(self, items: list) -> object:
        from banet_ops.sources import FetchReport

        report = FetchReport()
        for item in items:
            if item.name in self.errors:
                report.errors[item.name] = self.errors[item.name]
            else:
                report.paths[item.name] = Path("/data") / item.name
        return report


@pytest.fixture
def pi_regions(banet_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from banet_ops.settings import get_settings

    folder = banet_home / "regions"
    folder.mkdir()
    (folder / "R_T1.json").write_text(REGION.model_dump_json())
    monkeypatch.setenv("BANET_REGIONS_DIR", str(folder))
    get_settings.cache_clear()


def test_discover_retries_until_the_day_arrives_but_commits_a_night_only_day(pi_regions: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import banet_ops.sources as sources_pkg
    from banet_ops.sources import GranulePair, PairingResult

    def use(pairing: PairingResult) -> None:
        monkeypatch.setattr(sources_pkg, "make_sources", lambda settings=None: _FakeSources(pairing))

    use(PairingResult(missing=["https://archive.example/5200/VNP02MOD/2024/183.json"]))
    with pytest.raises(RetryableError, match="not yet available"):
        tasks.discover("T1", "2024-07-01")
    use(PairingResult(unpaired=[_item("VNP02MOD.A2024183.1200.002.x.nc")]))  # the geolocation file is still missing
    with pytest.raises(RetryableError, match="1 unpaired files"):
        tasks.discover("T1", "2024-07-01")
    use(PairingResult(night=[_item("VNP02MOD.A2024183.0100.002.x.nc")]))
    found = tasks.discover("T1", "2024-07-01")
    assert found["pairs"] == [] and found["night"] == ["VNP02MOD.A2024183.0100.002.x.nc"]
    pair = GranulePair(_item("VNP02MOD.A2024183.1200.002.x.nc"), _item("VNP03MOD.A2024183.1200.002.y.nc", "VNP03MOD"))
    use(PairingResult(pairs=[pair]))
    assert [p["key"] for p in tasks.discover("T1", "2024-07-01")["pairs"]] == ["A2024183.1200"]


def test_fetch_rejects_a_missing_file_but_raises_for_credentials_and_outages(pi_regions: None, monkeypatch: pytest.MonkeyPatch) -> None:
    import banet_ops.sources as sources_pkg
    from banet_ops.errors import AuthenticationError, NotFoundError, SourceUnavailableError

    l1b, geo = _item("VNP02MOD.A2024183.1200.002.x.nc"), _item("VNP03MOD.A2024183.1200.002.y.nc", "VNP03MOD")
    l1b2, geo2 = _item("VJ102MOD.A2024183.1218.021.x.nc", "VJ102MOD"), _item("VJ103MOD.A2024183.1218.021.y.nc", "VJ103MOD")
    found = {"pairs": [{"key": a.key, "l1b": tasks.item_to_json(a), "geo": tasks.item_to_json(b)} for a, b in ((l1b, geo), (l1b2, geo2))]}

    def with_errors(errors: dict) -> None:
        monkeypatch.setattr(sources_pkg, "make_sources", lambda settings=None: _FakeSources(errors=errors))

    with_errors({geo2.name: NotFoundError(f"{geo2.name}: expected a file, found 404")})
    out = tasks.fetch_viirs(found)
    assert out["pairs"] == [[f"/data/{l1b.name}", f"/data/{geo.name}"]]
    status = {f["name"]: (f["status"], f["fetch"]) for f in out["files"]}
    assert status[geo2.name] == ("rejected", "downloaded") and status[l1b2.name][0] == "skipped" and status[l1b.name] == ("ingested", "downloaded")

    with_errors({geo2.name: NotFoundError("gone"), l1b.name: AuthenticationError(f"{l1b.name}: expected data, found an HTML login page")})
    with pytest.raises(AuthenticationError, match="login page"):
        tasks.fetch_viirs(found)
    with_errors({l1b.name: SourceUnavailableError("503 after 5 retries")})
    with pytest.raises(SourceUnavailableError):
        tasks.fetch_viirs(found)
