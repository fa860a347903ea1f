"""The S3 server stopped or frozen under the cube, and a full disk under the products.

Each fault must end as a one-line retryable error (exit 75 from the command line), and the
re-run after the fault is gone must give the uninterrupted result with cube and cube_day agreeing.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import numpy as np
import pytest

from banet_ops import cube
from banet_ops.cli import main
from banet_ops.errors import StorageUnavailableError
from banet_ops.localstack.s3 import S3Server, s3_server
from banet_ops.regions import load_region
from banet_ops.settings import get_settings
from banet_ops.synthetic import Scenario, write_scenario
from faults.scenarios import FIGURES, cube_inconsistencies

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
START = dt.date(2024, 7, 1)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    box = load_region(FIX / "R_PI.json").subregion("FXs3", 300, 600, 48, 48)
    return write_scenario(tmp_path_factory.mktemp("fx-s3"), box, START, 2, seed=5, formats=("l1b", "firms"))


@pytest.fixture
def own_s3(scenario: Scenario, banet_home: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """A moto server of this test alone (it gets stopped), a cube root on it, the scenario's mirror."""
    with s3_server() as server:
        for key, value in {**server.env, **scenario.env(), "BANET_CMR_URL": "", "BANET_CUBE_ROOT": "s3://cube/r",
                           "BANET_DATABASE_URL": db_url, "BANET_STORAGE_TIMEOUT_S": "8"}.items():
            monkeypatch.setenv(key, value)
        boto3.client("s3", endpoint_url=server.endpoint_url, region_name="us-east-1").create_bucket(Bucket="cube")
        get_settings.cache_clear()
        yield server
        get_settings.cache_clear()


def _ingest(day: dt.date) -> int:
    return main(["ingest", "--region", "FXs3", "--date", str(day)])


def test_s3_stopped_is_a_retryable_one_line_error(own_s3: S3Server, capsys: pytest.CaptureFixture[str]) -> None:
    assert _ingest(START) == 0
    own_s3.process.kill()
    own_s3.process.wait()
    FIGURES["faults"].add("S3 server stopped")
    assert _ingest(START + dt.timedelta(days=1)) == 75
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("banet-ops: error: cube FXs3 at s3://cube/r/FXs3:") and "Traceback" not in err


def test_s3_frozen_mid_write_times_out_and_the_rerun_completes(own_s3: S3Server, scenario: Scenario, db_url: str,
                                                               capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from banet_ops.cube import writer

    assert _ingest(START) == 0
    day = START + dt.timedelta(days=1)
    grow = writer._grow

    def freeze_then_grow(*args: object) -> None:  # the session is open, the day's chunks are about to go
        os.kill(own_s3.process.pid, signal.SIGSTOP)
        grow(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(writer, "_grow", freeze_then_grow)
    FIGURES["faults"].add("S3 server frozen mid-write")
    try:
        t0 = time.monotonic()
        assert _ingest(day) == 75
        assert time.monotonic() - t0 < 60
        assert "expected the storage to answer within 8 s" in capsys.readouterr().err
    finally:
        os.kill(own_s3.process.pid, signal.SIGCONT)
        monkeypatch.setattr(writer, "_grow", grow)
    assert _ingest(day) == 0  # the re-run (the abandoned write may have finished meanwhile: same day, same values)
    settings = get_settings()
    window = cube.read_window(scenario.region, START, day, settings=settings)
    assert window.available.all()
    np.testing.assert_allclose(np.nansum(window.data[1, 3]), scenario.truth_image(day).variables["FRP"].sum(), rtol=1e-4)
    assert cube_inconsistencies(db_url, "FXs3", settings) == []


def test_disk_full_under_the_products_leaves_the_previous_state(db_url: str, tmp_path: Path, banet_home: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC on the third product file: a StorageError, the previous product intact, the re-run completes."""
    from publish.helpers import blob_dates, build_product, new_region

    from banet_ops.publish import publish_product
    from banet_ops.publish import storage as st
    from banet_ops.publish.storage import open_store
    from banet_ops.settings import Settings
    from faults.scenarios import TARGET, publish_inconsistencies

    region = new_region()
    settings = Settings(home=banet_home, database_url=db_url, products_root=str(tmp_path / "products"))
    store = open_store(settings.resolved_products_root)
    publish_product(build_product(region, blob_dates(region, TARGET, seed=1), target=TARGET), settings=settings)
    before = {k: store.get_bytes(k) for k in store.list()}
    real, calls = shutil.copyfile, [0]

    def full(src: object, dst: object, **kw: object) -> object:
        calls[0] += 1
        if calls[0] == 5:  # journal, backups, journal, first file: then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(st.shutil, "copyfile", full)
    new = build_product(region, blob_dates(region, TARGET, seed=2), target=TARGET, snapshot="s2")
    with pytest.raises(st.StorageError, match="No space left"):
        publish_product(new, settings=settings)
    FIGURES["faults"].add("disk full under the products")
    monkeypatch.undo()
    assert {k: store.get_bytes(k) for k in store.list()} == before
    assert publish_inconsistencies(db_url, store, region) == []
    publish_product(new, settings=settings)
    assert publish_inconsistencies(db_url, store, region) == []


def test_storage_errors_are_retryable_project_errors() -> None:
    from banet_ops.cube.storage import cube_location, storage_error

    loc = cube_location("TX")
    err = storage_error(OSError("Connection refused (os error 111)"), loc, "opening the repository")
    assert isinstance(err, StorageUnavailableError) and err.retryable
    denied = storage_error(OSError("service error: AccessDenied"), loc, "opening the repository")
    assert not denied.retryable


def test_an_empty_repository_is_named_as_such(tmp_path: Path, banet_home: Path) -> None:
    import icechunk as ic

    from banet_ops.errors import CubeNotFoundError
    from banet_ops.settings import Settings

    FIGURES["faults"].add("empty cube repository (created, never committed)")
    settings = Settings(home=banet_home, cube_root=str(tmp_path / "cube"))
    ic.Repository.create(ic.local_filesystem_storage(str(tmp_path / "cube" / "TE")))
    with pytest.raises(CubeNotFoundError, match="found an empty repository") as info:
        cube.read_window("TE", START, START, settings=settings)
    assert "object at 0x" not in str(info.value)


def test_orphaned_backups_are_dropped_and_live_ones_kept(tmp_path: Path) -> None:
    from banet_ops.publish.storage import FileTransaction, drop_orphan_backups, open_store, pending_journals

    store = open_store(str(tmp_path / "products"))
    store.put_bytes(b"old", "R/a.tif")
    store.put_bytes(b"left by an old publisher", ".backup/0123456789abcdef/R/a.tif")
    live = FileTransaction(store, scope="R/nrt")
    src = tmp_path / "new.tif"
    src.write_bytes(b"new")
    live.add(src, "R/a.tif")
    live.apply()  # in flight: journal and backup present
    assert drop_orphan_backups(store) == 1
    assert [j.token for j in pending_journals(store)] == [live.token]
    assert store.list(".backup", hidden=True) == [f".backup/{live.token}/R/a.tif"]
    live.finalize()
    assert store.list(hidden=True) == ["R/a.tif"] and store.get_bytes("R/a.tif") == b"new"
