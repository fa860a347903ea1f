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
from banet_ops.errors import DataFormatError, PermanentError, RetryableError
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
        "BANET_DATABASE_URL": "postgresql+psycopg2://w:pw@db:5432/banet",
        "AWS_ACCESS_KEY_ID": "AK",
        "AWS_SECRET_ACCESS_KEY": "SK",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
    }
    assert env_from_connections(lambda _id: None) == {}


def _fake_cli(folder: Path, code: int, message: str) -> None:
    script = folder / "banet-ops"
    script.write_text(f"#!/bin/sh\necho 'summary line'\necho 'banet-ops: error: {message}' >&2\nexit {code}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


@pytest.mark.parametrize(("code", "error"), [(75, RetryableError), (1, PermanentError)])
def test_local_backend_maps_exit_codes(tmp_path: Path, banet_home: Path, monkeypatch: pytest.MonkeyPatch, code: int, error: type) -> None:
    _fake_cli(tmp_path, code, "cube not reachable")
    monkeypatch.setattr(tasks, "banet_ops_executable", lambda: str(tmp_path / "banet-ops"))
    with pytest.raises(error, match="cube not reachable"):
        tasks.run_local_infer(["infer", "--region", "PI"])


def test_local_backend_passes_secrets_by_environment_only(tmp_path: Path, banet_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "banet-ops"
    script.write_text('#!/bin/sh\necho "args=$*"\necho "token=${BANET_EARTHDATA_TOKEN}"\n')
    script.chmod(0o755)
    monkeypatch.setattr(tasks, "banet_ops_executable", lambda: str(script))
    monkeypatch.setenv("BANET_EARTHDATA_TOKEN", "s3cr3t-token")
    out = tasks.run_local_infer(tasks.infer_arguments("PI", "2024-07-01", "nrt", None))
    assert "token=s3cr3t-token" in out["summary"]
    assert all("s3cr3t" not in a for a in out["summary"][0].split())
    assert os.environ["BANET_EARTHDATA_TOKEN"] == "s3cr3t-token"
