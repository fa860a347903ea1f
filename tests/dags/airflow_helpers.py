"""Helpers of the DAG tests: a test environment, DAGs parsed under it, dag.test runs and their states.

The DAG files read their settings (regions, cube root) at parse time, so every test module sets
its ``BANET_*`` environment first and parses the DAGs afterwards (:func:`parse_dags`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pendulum
import pytest

from banet_ops.settings import get_settings

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def banet_env(values: Mapping[str, str]) -> Iterator[None]:
    """Replace every ``BANET_*`` variable by ``values`` for the block (module-scoped fixtures use it)."""
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("BANET_"):
                mp.delenv(key)
        for key, value in values.items():
            mp.setenv(key, value)
        get_settings.cache_clear()
        try:
            yield
        finally:
            get_settings.cache_clear()


def parse_dags() -> dict[str, Any]:
    """The DAGs of ``dags/`` as parsed now (under the current environment), by id."""
    from airflow.dag_processing.dagbag import DagBag

    get_settings.cache_clear()
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}, bag.import_errors
    return dict(bag.dags)


def run_dag(dag: Any, day: dt.date | None = None, *, conf: dict[str, Any] | None = None) -> Any:
    """``dag.test`` of one run; with ``day``, the run covering that UTC day (logical date = the day,
    see :func:`banet_ops.orchestration.dag_support.interval_day`).  Airflow 3.3's ``dag.test`` cannot evaluate deadline alerts (it hands the
    serialized alert, not its id, to the deadline pruning), so the copy under test drops them;
    the deadline itself is checked in test_dagbag and runs in the real scheduler of test_backfill.
    """
    dag.deadline = None
    logical = pendulum.datetime(day.year, day.month, day.day, tz="UTC") if day else pendulum.now("UTC")
    return dag.test(logical_date=logical, run_conf=conf)


def task_states(dag_run: Any) -> dict[str, tuple[str, int]]:
    """``{task_id[map_index]: (state, try_number)}`` of a finished run."""
    out = {}
    for ti in dag_run.get_task_instances():
        key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        out[key] = (str(ti.state.value if hasattr(ti.state, "value") else ti.state), int(ti.try_number))
    return out


def region_file(folder: Path, name: str, bbox: tuple[float, float, float, float], pixel_size: float = 0.01) -> Path:
    """Write ``R_<name>.json`` into ``folder`` (the DAGs are generated from such files)."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"R_{name}.json"
    path.write_text(json.dumps({"name": name, "bbox": list(bbox), "pixel_size": pixel_size}))
    return path


def xcom(dag_run: Any, task_id: str, map_index: int = -1) -> Any:
    """The return value a task of ``dag_run`` pushed."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(XComModel).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, map_index=map_index, key="return_value").one()
        return XComModel.deserialize_value(row)
