"""banet_infer_nrt_<REGION>: near-real-time burned-area product on every cube update.

Scheduled on the region's cube Asset.  Each triggering event carries ``{day, snapshot}``; one
inference per event runs through the configured backend (a GPU pod or a local subprocess) with
the same ``banet-ops infer`` arguments.  A manual run takes ``day`` (and optionally
``snapshot``) as params, for reprocessing.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from banet_ops.orchestration import dag_support as ds
from banet_ops.orchestration import tasks as t

for region in ds.regions_for_dags():

    @dag(
        dag_id=f"banet_infer_nrt_{region.name}",
        description=f"BA-Net NRT product for {region.name} on each new cube day",
        schedule=[ds.cube_asset(region.name)],
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=ds.INFER_MAX_ACTIVE_RUNS,
        default_args=ds.default_args(timeout=ds.INFER_TASK_TIMEOUT),
        params={
            "day": Param(None, type=["null", "string"], format="date", description="Day D to map (manual runs); default: the triggering cube events"),
            "snapshot": Param(None, type=["null", "string"], description="Cube snapshot to read; default: the event's, else the latest"),
        },
        tags=["banet", "inference", "nrt", f"region:{region.name}"],
        doc_md=__doc__,
    )
    def infer_dag(region_name: str = region.name) -> None:
        @task
        def targets() -> list[dict]:
            ctx = get_current_context()
            return t.infer_targets(region_name, "nrt", ctx.get("triggering_asset_events"), ctx["params"])

        ds.infer_operator(region_name, "nrt").expand_kwargs(targets())

    infer_dag()
