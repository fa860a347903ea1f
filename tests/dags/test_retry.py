"""Retries follow the error split: a transient LAADS failure retries and then succeeds, a permanent one fails at once.

The ingest DAG runs (``dag.test``) against a fake LAADS archive on 127.0.0.1 serving real L1B and
geolocation files of a small synthetic scenario.  ``BANET_HTTP_RETRIES=1``: two 503s in a row
exhaust the HTTP client's own retries, so the task fails its first try; Airflow's retry (delay
shortened on the DAG object) then succeeds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sources.fakeservers import FakeLaads

from banet_ops.regions import Region
from dags.airflow_helpers import banet_env, parse_dags, run_dag, task_states

REGION = Region(name="RT", bbox=(-8.0, 40.0, -7.76, 40.24), pixel_size=0.01)  # 24 x 24 cells
START = dt.date(2024, 7, 1)
TOKEN = "rt-good-token-3b9e"

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def laads_world(tmp_path_factory: pytest.TempPathFactory, airflow_db: str) -> Iterator[dict[str, Any]]:
    from banet_ops.synthetic import write_scenario

    root = tmp_path_factory.mktemp("retry")
    scenario = write_scenario(root / "scenario", REGION, START, 4, seed=1, formats=("l1b", "firms"))
    days = [d for d in scenario.day_list if scenario.granules[d]][:3]
    with FakeLaads(token=TOKEN) as laads:
        for path in scenario.files:
            if path.suffix == ".nc":  # L1B and geolocation granules; FIRMS stays a local folder
                day = dt.datetime.strptime(path.name.split(".")[1], "A%Y%j").date()
                laads.add_file(path.name.split(".")[0], day, path.name, path.read_bytes(), illumination="D")
        env = {
            "BANET_HOME": str(root / "home"),
            "BANET_REGIONS_DIR": str(scenario.regions_dir),
            "BANET_ARCHIVE_URL": laads.url,
            "BANET_CMR_URL": "",
            "BANET_FIRMS_URL": scenario.firms_url,
            "BANET_EARTHDATA_TOKEN": TOKEN,
            "BANET_HTTP_RETRIES": "1",
            "BANET_CUBE_ROOT": str(root / "cube"),
        }
        with banet_env(env):
            dag = parse_dags()[f"banet_ingest_{REGION.name}"]
            for task in dag.tasks:
                task.retry_delay = timedelta(seconds=1)
                task.max_retry_delay = timedelta(seconds=2)
            yield {"dag": dag, "laads": laads, "days": days, "scenario": scenario, "root": root}


@pytest.fixture
def failure_lines(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The one-line reasons the DAGs' failure callback logs."""
    from banet_ops.orchestration import dag_support

    lines: list[str] = []
    monkeypatch.setattr(dag_support, "log", SimpleNamespace(error=lambda msg, *a: lines.append(msg % a if a else msg)))
    return lines


def _granule(world: dict[str, Any], day: dt.date) -> str:
    return next(name for name in world["scenario"].granules[day] if name.startswith(("VNP02MOD", "VJ102MOD")))


def test_a_503_on_a_download_retries_the_fetch_then_succeeds(laads_world: dict[str, Any], failure_lines: list[str]) -> None:
    day = laads_world["days"][0]
    name = _granule(laads_world, day)
    laads_world["laads"].fail_next(name, 503, 503)  # the first try's request and its one HTTP retry
    dr = run_dag(laads_world["dag"], day)
    states = task_states(dr)
    assert str(dr.state) == "success", states
    assert states["fetch_viirs"] == ("success", 2)
    assert states["discover"] == ("success", 1) and states["commit"] == ("success", 1)
    assert laads_world["laads"].count(name) == 3  # 2 failed + 1 served
    assert failure_lines == []  # a retried try is not a failure


def test_a_503_on_the_listing_retries_discovery_then_succeeds(laads_world: dict[str, Any], failure_lines: list[str]) -> None:
    day = laads_world["days"][1]
    doy = f"{day:%Y}/{day.timetuple().tm_yday:03d}.json"
    laads_world["laads"].fail_next(doy, 503, 503)
    dr = run_dag(laads_world["dag"], day)
    states = task_states(dr)
    assert str(dr.state) == "success", states
    assert states["discover"] == ("success", 2)
    assert states["commit"][0] == "success"


def test_a_wrong_token_fails_at_once_with_its_reason(
    laads_world: dict[str, Any], failure_lines: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    wrong = "rt-wrong-token-marker-51aa"
    monkeypatch.setenv("BANET_EARTHDATA_TOKEN", wrong)
    monkeypatch.setenv("BANET_CACHE_DIR", str(tmp_path / "cache"))  # nothing cached: the download must ask LAADS
    day = laads_world["days"][2]
    dr = run_dag(laads_world["dag"], day)
    states = task_states(dr)
    assert str(dr.state) == "failed"
    assert states["fetch_viirs"] == ("failed", 1)  # no retry for a permanent error
    assert states["commit"][0] == "upstream_failed"
    [line] = [ln for ln in failure_lines if ".fetch_viirs " in ln]
    assert line.startswith(f"banet-ops: banet_ingest_{REGION.name}.fetch_viirs for {day.isoformat()}")
    assert "AuthenticationError" in line and "login" in line.lower()
    assert wrong not in line and TOKEN not in line and "\n" not in line
    # the same line is the failed task's note and the run's note (the plugin's listener)
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id=dr.dag_id, run_id=dr.run_id).one()
        notes = {ti.task_id: ti.note for ti in run.get_task_instances(session=session)}
        assert run.note == line
    assert notes["fetch_viirs"] == line and notes["commit"] is None
