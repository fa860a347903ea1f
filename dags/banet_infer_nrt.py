"""banet_infer_nrt_<REGION>: near-real-time burned-area product on every cube update.

Scheduled on the region's cube Asset.  Each triggering event carries ``{day, snapshot}``; one
inference per event runs through the configured backend (a GPU pod or a local subprocess) with
the same ``banet-ops infer`` arguments.  A manual run takes ``day`` (and optionally
``snapshot``) as params, for reprocessing.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, get_current_context

from banet_ops.orchestration import dag_support as ds
from banet_ops.orchestration import tasks as t


def build(region_name: str) -> object:
    """The DAG of one region."""

    @dag(
        dag_id=f"banet_infer_nrt_{region_name}",
        description=f"BA-Net NRT product for {region_name} on each new cube day",
        schedule=[ds.cube_asset(region_name)],
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=ds.INFER_MAX_ACTIVE_RUNS,
        default_args=ds.default_args(timeout=ds.INFER_TASK_TIMEOUT),
        params={
            "day": Param(None, type=["null", "string"], format="date", description="Day D to map (manual runs); default: the triggering cube events"),
            "snapshot": Param(None, type=["null", "string"], description="Cube snapshot to read; default: the event's, else the latest"),
        },
        deadline=ds.late_product_deadline(hours=3, what=f"NRT product of {region_name}"),
        tags=["banet", "inference", "nrt", f"region:{region_name}"],
        doc_md=__doc__,
    )
    def infer_dag() -> None:
        @ds.banet_task
        def targets() -> list[dict]:
            ctx = get_current_context()
            return t.infer_targets(region_name, "nrt", ctx.get("triggering_asset_events"), ctx["params"])

        ds.pod_task("inference", "infer").expand_kwargs(targets())

    return infer_dag()


for region in ds.regions_for_dags():
    globals()[f"banet_infer_nrt_{region.name}"] = build(region.name)
