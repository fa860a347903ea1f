"""banet_ingest_<REGION>: one DAG per region file, ingesting one UTC day per run.

discover -> fetch (LAADS and FIRMS in parallel) -> grid and composite -> commit to the cube,
which emits the region's cube Asset with ``{day, snapshot}``.  A re-run that finds the cube
already holding identical content writes nothing and skips ``commit`` (no asset event).  Thin wiring only: every task
calls :mod:`banet_ops.orchestration.tasks`, one line per stage of :mod:`banet_ops.ingest.stages`; the region list comes from files at parse time.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context
from airflow.sdk.exceptions import AirflowSkipException

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
        # data not yet published makes discover retry for hours, not minutes
        @ds.banet_task(**ds.DISCOVER_RETRY)
        def discover() -> dict:
            return t.discover(region_name, ds.interval_day(get_current_context()))

        @ds.banet_task
        def fetch_viirs(found: dict) -> dict:
            return t.fetch_viirs(found)

        @ds.banet_task
        def fetch_firms(found: dict) -> dict:
            return t.fetch_firms(found)

        @ds.banet_task
        def grid_composite(found: dict, viirs: dict, firms: dict) -> str:
            return t.grid_composite(region_name, found, viirs, firms)

        @ds.banet_task(outlets=[ds.cube_asset(region_name)])
        def commit(staged: str) -> dict:
            result = t.commit(region_name, staged)
            if not result["changed"]:
                # no new cube version: skipping emits no asset event, so no inference re-runs
                raise AirflowSkipException(f"the cube already holds this content for {result['day']} (snapshot {result['snapshot']})")
            get_current_context()["outlet_events"][ds.cube_asset(region_name)].extra = {"day": result["day"], "snapshot": result["snapshot"]}
            return result

        found = discover()
        commit(grid_composite(found, fetch_viirs(found), fetch_firms(found)))

    return ingest_dag()


for region in ds.regions_for_dags():
    globals()[f"banet_ingest_{region.name}"] = build(region.name)
