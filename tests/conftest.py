"""Shared fixtures: a real PostGIS cluster, a real S3-compatible server, isolated settings.

Every test runs with outbound network blocked except loopback, so nothing can reach the internet.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from banet_ops.localstack.postgres import LocalPostgres
from banet_ops.localstack.s3 import S3Server, s3_server
from banet_ops.settings import get_settings

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Airflow reads its configuration when first imported: point it at a private home (one per
# xdist worker) before any test module imports it, so no test touches ~/airflow.
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="banet-airflow-")
os.environ["AIRFLOW_HOME"] = _AIRFLOW_HOME
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME}/airflow.db"

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: object) -> None:
    if isinstance(address, tuple) and self.family in (socket.AF_INET, socket.AF_INET6):
        host = str(address[0])
        try:
            ok = ipaddress.ip_address(host).is_loopback
        except ValueError:
            ok = host == "localhost"
        if not ok:
            raise ConnectionRefusedError(f"tests may not reach {host}: only 127.0.0.1 is allowed")
    _real_connect(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True, scope="session")
def _no_internet() -> Iterator[None]:
    socket.socket.connect = _loopback_only  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL 15 + PostGIS cluster, one per test session (per xdist worker)."""
    # Not under pytest's basetemp: as root the server runs as `postgres`, which cannot enter the
    # 0700 /tmp/pytest-of-root; a mkdtemp folder directly in the temp dir is reachable.
    folder = Path(tempfile.mkdtemp(prefix="banet-test-pg-"))
    cluster = LocalPostgres(folder)
    url = cluster.start()
    yield url
    cluster.destroy()


@pytest.fixture(scope="session")
def db_url(pg_url: str) -> str:
    """The `pg_url` cluster with the banet schema migrated (`banet-ops db upgrade`)."""
    from banet_ops.db.migrate import upgrade

    upgrade(pg_url)
    return pg_url


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """A moto S3 server on 127.0.0.1 for the whole session."""
    with s3_server() as server:
        yield server


@pytest.fixture
def s3_bucket(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the test S3 server, with the AWS variables pointing at it; returns its name."""
    import boto3

    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    name = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3.endpoint_url, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@pytest.fixture
def banet_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings isolated in a temp BANET_HOME, with no BANET_* variable leaking in from outside."""
    for key in list(os.environ):
        if key.startswith("BANET_"):
            monkeypatch.delenv(key)
    home = tmp_path / "banet-home"
    home.mkdir()
    monkeypatch.setenv("BANET_HOME", str(home))
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture
def registry_engine(db_url: str, banet_home: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    """An engine on the migrated test database with an empty model registry, set as BANET_DATABASE_URL."""
    import sqlalchemy as sa

    from banet_ops.db.engine import get_engine

    monkeypatch.setenv("BANET_DATABASE_URL", db_url)
    get_settings.cache_clear()
    eng = get_engine(db_url)
    with eng.begin() as conn:
        conn.execute(sa.text("DELETE FROM banet.model"))
    return eng
