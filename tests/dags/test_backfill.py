"""A season backfill through a real scheduler: five days land in the cube; backfilling them again changes nothing.

A local Airflow (api-server, scheduler, dag-processor, LocalExecutor; ``banet_ops.localstack.airflow``)
on a free port runs ``banet_ingest_BF`` over a synthetic mirror through ``POST /api/v2/backfills``.
The second, identical backfill (``reprocess_behavior=completed``) re-runs every day: the cube must
keep its snapshot (no new commit), and ``banet.cube_day`` / ``banet.granule`` their rows untouched.
The NRT DAG stays paused; the scheduled latest-interval run of the unpaused ingest DAG finds no
data (retryable) and never commits.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from banet_ops.regions import Region
from dags.airflow_helpers import banet_env

REGION = Region(name="BF", bbox=(-8.0, 40.0, -7.76, 40.24), pixel_size=0.01)  # 24 x 24 cells
START = dt.date(2024, 6, 1)
DAYS = 5
SEED = 1  # every day has granules
DAG_ID = f"banet_ingest_{REGION.name}"

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def metadata_db(pg_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for Airflow's metadata (as in production; SQLite races under a scheduler)."""
    from sqlalchemy.engine import make_url

    name = f"airflow_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, db_url: str, metadata_db: str) -> Iterator[dict[str, Any]]:
    from banet_ops.localstack.airflow import free_port, running
    from banet_ops.synthetic import write_scenario

    root = tmp_path_factory.mktemp("backfill")
    scenario = write_scenario(root / "scenario", REGION, START, DAYS, seed=SEED, formats=("l1b", "firms"))
    env = scenario.pipeline_env(root, db_url)
    with banet_env(env), running(root / "airflow", port=free_port(), extra_env=env, metadata_db=metadata_db) as airflow:
        airflow.wait_for_dag(DAG_ID)
        yield {"airflow": airflow, "scenario": scenario, "db_url": db_url, "root": root}


def _state(db_url: str) -> dict[str, Any]:
    """Everything a re-run must not change: cube tip and values, cube_day and granule rows."""
    from banet_ops import cube

    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            days = [tuple(r) for r in conn.execute(sa.text("SELECT * FROM banet.cube_day WHERE region = :r ORDER BY day"), {"r": REGION.name})]
            granules = [
                tuple(r)
                for r in conn.execute(
                    sa.text("SELECT * FROM banet.granule WHERE day BETWEEN :a AND :b ORDER BY file_name"),
                    {"a": START, "b": START + dt.timedelta(days=DAYS - 1)},
                )
            ]
    finally:
        engine.dispose()
    window = cube.read_window(REGION, START, START + dt.timedelta(days=DAYS - 1), variables=("Red", "NIR", "MIR", "FRP"))
    return {"tip": cube.latest_snapshot(REGION.name), "cube_day": days, "granule": granules, "data": window.data, "available": window.available}


def _backfill(airflow: Any, behaviour: str) -> list[dict[str, Any]]:
    last = START + dt.timedelta(days=DAYS - 1)
    created = airflow.backfill(DAG_ID, f"{START}T00:00:00Z", f"{last}T00:00:00Z", reprocess_behavior=behaviour, max_active_runs=DAYS)
    airflow.wait_backfill(created["id"], timeout_s=300)
    runs = [r for r in airflow.dag_runs(DAG_ID) if r["run_type"] == "backfill"]
    return sorted(runs, key=lambda r: r["logical_date"])


def test_backfill_ingests_five_days_then_a_rerun_changes_nothing(deployment: dict[str, Any]) -> None:
    from banet_ops.cube import day_records

    airflow = deployment["airflow"]
    airflow.unpause(DAG_ID)
    runs = _backfill(airflow, "none")
    assert [r["logical_date"][:10] for r in runs] == [str(START + dt.timedelta(days=i)) for i in range(DAYS)]
    assert {r["state"] for r in runs} == {"success"}, runs
    records = {r.day: r for r in day_records(REGION.name)}
    assert sorted(records) == [START + dt.timedelta(days=i) for i in range(DAYS)]
    first = _state(deployment["db_url"])
    assert [row[1] for row in first["cube_day"]] == sorted(records)
    assert first["available"].all() and np.isfinite(first["data"]).any()
    assert len(first["granule"]) >= 2 * DAYS  # L1B + geolocation (+ FIRMS) of every day

    again = _backfill(airflow, "completed")
    assert {r["state"] for r in again} == {"success"}
    assert len(again) == DAYS
    second = _state(deployment["db_url"])
    assert second["tip"] == first["tip"]  # not a single new cube commit
    assert second["cube_day"] == first["cube_day"]
    assert second["granule"] == first["granule"]
    np.testing.assert_array_equal(second["data"], first["data"])

    # every re-run found identical content and skipped its commit (so no asset event either)
    for run in again:
        tis = airflow.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"]
        assert {t["task_id"]: t["state"] for t in tis}["commit"] == "skipped"


def test_scheduled_run_without_data_never_commits_and_inference_stays_paused(deployment: dict[str, Any]) -> None:
    airflow = deployment["airflow"]
    scheduled = [r for r in airflow.dag_runs(DAG_ID) if r["run_type"] == "scheduled"]
    assert len(scheduled) <= 1  # catchup=False: at most the latest interval
    for run in scheduled:
        tis = {t["task_id"]: t for t in airflow.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"]}
        assert tis["commit"]["state"] in (None, "scheduled", "queued", "upstream_failed")
        assert tis["discover"]["state"] in (None, "scheduled", "queued", "running", "up_for_retry", "failed")
    day = dt.date.fromisoformat(scheduled[0]["data_interval_start"][:10]) if scheduled else None
    from banet_ops.cube import day_records

    assert all(r.day < START + dt.timedelta(days=DAYS) for r in day_records(REGION.name))
    assert day is None or day > START + dt.timedelta(days=DAYS)
    infer = airflow.request("GET", f"/api/v2/dags/banet_infer_nrt_{REGION.name}")
    assert infer["is_paused"] is True
    assert airflow.dag_runs(f"banet_infer_nrt_{REGION.name}") == []
    pools = {p["name"]: p for p in airflow.request("GET", "/api/v2/pools")["pools"]}
    assert pools["gpu"]["slots"] >= 1
    assert Path(deployment["root"] / "airflow" / "scheduler.log").is_file()
