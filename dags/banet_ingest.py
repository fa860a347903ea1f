"""banet_ingest_<REGION>: one DAG per region file, ingesting one UTC day per run.

discover -> fetch (LAADS and FIRMS in parallel) -> grid and composite -> commit to the cube,
which emits the region's cube Asset with ``{day, snapshot}``.  Thin wiring only: every task
calls :mod:`banet_ops.orchestration.tasks`; the region list comes from files at parse time.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

from banet_ops.orchestration import dag_support as ds
from banet_ops.orchestration import tasks as t


def build(region_name: str) -> object:
    """The DAG of one region."""

    @dag(
        dag_id=f"banet_ingest_{region_name}",
        description=f"Ingest VIIRS L1B + FIRMS into the {region_name} cube, one UTC day per run",
        schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=ds.INGEST_MAX_ACTIVE_RUNS,
        default_args=ds.default_args(timeout=ds.INGEST_TASK_TIMEOUT),
        deadline=ds.late_product_deadline(hours=ds.INGEST_DEADLINE_HOURS, what=f"cube day of {region_name}"),
        tags=["banet", "ingest", f"region:{region_name}"],
        doc_md=__doc__,
    )
    def ingest_dag() -> None:
        @task
        def discover() -> dict:
            return t.discover(region_name, ds.interval_day(get_current_context()))

        @task
        def fetch_viirs(found: dict) -> list[str]:
            return t.fetch_viirs(found)

        @task
        def fetch_firms(found: dict) -> list[str]:
            return t.fetch_firms(found)

        @task
        def grid_composite(found: dict, viirs: list[str], firms: list[str]) -> str:
            return t.grid_composite(region_name, found, viirs, firms)

        @task(outlets=[ds.cube_asset(region_name)])
        def commit(staged: str) -> dict:
            result = t.commit(region_name, staged)
            get_current_context()["outlet_events"][ds.cube_asset(region_name)].extra = result
            return result

        found = discover()
        commit(grid_composite(found, fetch_viirs(found), fetch_firms(found)))

    return ingest_dag()


for region in ds.regions_for_dags():
    globals()[f"banet_ingest_{region.name}"] = build(region.name)
