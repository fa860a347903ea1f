"""banet_retrain end to end with the local backend (``dag.test``): labels → dataset → train → evaluate → register → gate.

Two 64 x 64 synthetic regions (in different MODIS tiles) with real cubes and real MCD64A1 HDF4
tiles in a mirror: RA burns in July 2020 (training), RB in August 2020 (validation).  Training runs ``banet-ops train`` in a
subprocess for two steps; the candidate is registered in PostGIS and the gate decides.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from banet_ops.regions import Region
from dags.airflow_helpers import banet_env, parse_dags, run_dag, task_states, xcom

RA = Region(name="RA", bbox=(-8.3, 39.8, -7.66, 40.44), pixel_size=0.01)
RB = Region(name="RB", bbox=(20.0, 39.8, 20.64, 40.44), pixel_size=0.01)  # another MCD64A1 tile than RA's
CONF = {
    "regions": ["RA"], "months": ["2020-07"], "val": ["RB:2020-08"], "from_scratch": True,
    "steps": 2, "batch": 2, "tile": 32, "days": 32, "stride": 32, "min_burned": 10, "max_samples": 2,
    "eval_tile": 64, "threads": 1, "margin": 0.05,
}  # fmt: skip

pytestmark = [pytest.mark.airflow]  # ~1.5 min: part of `make test`


@pytest.fixture(scope="module")
def retrain_world(tmp_path_factory: pytest.TempPathFactory, db_url: str, airflow_db: str) -> Iterator[dict[str, Any]]:
    from banet_ops.retrain.synthetic_world import WorldRegion, build_world

    root = tmp_path_factory.mktemp("retrain")
    world = build_world(
        root / "world",
        [WorldRegion(RA, seed=5), WorldRegion(RB, seed=3)],  # RA: ~700 cells burn in July; RB: ~500 in August
        start=dt.date(2020, 6, 1),
        days=92,
        cube_first=dt.date(2020, 6, 30),
        cube_last=dt.date(2020, 8, 31),
        label_months=[],
    )
    env = {**world.env, "BANET_DATABASE_URL": db_url, "BANET_DEVICE": "cpu", "BANET_PRODUCTS_ROOT": str(root / "products")}
    with banet_env(env):
        yield {"dags": parse_dags(), "db_url": db_url, "home": Path(world.env["BANET_HOME"])}


def test_retrain_dag_runs_end_to_end(retrain_world: dict[str, Any]) -> None:
    dag = retrain_world["dags"]["banet_retrain"]
    assert dag.task_dict["train"].pool == "gpu"
    dr = run_dag(dag, conf=CONF)
    states = task_states(dr)
    assert str(dr.state) == "success", states
    assert {k: s for k, (s, _n) in states.items()} == dict.fromkeys(
        ("plan", "labels", "dataset", "train_target", "train[0]", "trained", "evaluate", "register", "gate"), "success"
    )

    plan = xcom(dr, "plan")
    assert plan["region_months"] == ["RA:2020-07"] and plan["val_region_months"] == ["RB:2020-08"]
    labels = {f"{r['region']}:{r['month']}": r for r in xcom(dr, "labels")["labelled"]}
    assert labels["RA:2020-07"]["burned_cells"] > 100 and labels["RB:2020-08"]["burned_cells"] > 100
    dataset = xcom(dr, "dataset")
    assert dataset["n_train"] >= 1 and dataset["val_region_months"] == ["RB:2020-08"]
    [target] = xcom(dr, "train_target")
    assert target["arguments"][:3] == ["train", "--manifest", dataset["manifest"]]
    assert target["arguments"][-2:] == ["--device", "cpu"] and "scratch" in target["arguments"]
    trained = xcom(dr, "trained")
    assert trained["steps"] == 2 and trained["init"] == "scratch" and Path(trained["weights"]).is_file()
    assert Path(trained["run_dir"]).parent == retrain_world["home"] / "retrain" / plan["key"]
    evaluated = xcom(dr, "evaluate")
    assert evaluated["val_set_id"] == dataset["val_set_id"]
    registered = xcom(dr, "register")
    decision = xcom(dr, "gate")
    assert decision["candidate"] == registered["model_id"]

    engine = sa.create_engine(retrain_world["db_url"])
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text("SELECT sha256, status, config, metrics FROM banet.model WHERE id = :id"), {"id": registered["model_id"]}).one()
    finally:
        engine.dispose()
    assert row.sha256 == trained["sha256"]
    assert row.config["retrain"]["steps"] == 2 and row.config["retrain"]["val"] == ["RB:2020-08"]
    assert row.metrics["validation"][dataset["val_set_id"]]["dice"] == evaluated["candidate"]["overall"]["dice"]
    assert (row.status == "production") == bool(decision["promoted"])
    if decision["production"] is None:  # nothing in production yet: the first candidate is promoted
        assert decision["promoted"]


def test_bad_params_fail_the_plan_at_once(retrain_world: dict[str, Any]) -> None:
    dag = retrain_world["dags"]["banet_retrain"]
    dr = run_dag(dag, conf={**CONF, "regions": ["NOPE"]})
    states = task_states(dr)
    assert str(dr.state) == "failed"
    assert states["plan"] == ("failed", 1) and states["labels"][0] == "upstream_failed"
