"""banet_monthly_<REGION>: the final monthly product, a configurable lag after month end.

Runs on day ``1 + BANET_MONTHLY_LAG_DAYS`` of each month for the previous month, through the
same inference backend as the NRT product; a manual run takes ``month`` (YYYY-MM).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronTriggerTimetable, Param, dag, get_current_context

from banet_ops.orchestration import dag_support as ds
from banet_ops.orchestration import tasks as t


def build(region_name: str) -> object:
    """The DAG of one region."""

    @dag(
        dag_id=f"banet_monthly_{region_name}",
        description=f"BA-Net monthly product for {region_name}",
        schedule=CronTriggerTimetable(f"0 6 {1 + ds.monthly_lag_days()} * *", timezone="UTC"),
        start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        default_args=ds.default_args(timeout=ds.INFER_TASK_TIMEOUT),
        params={
            "month": Param(None, type=["null", "string"], pattern=r"^\d{4}-\d{2}$", description="Month YYYY-MM (manual runs); default: the previous month")
        },
        deadline=ds.late_product_deadline(hours=12, what=f"monthly product of {region_name}"),
        tags=["banet", "inference", "monthly", f"region:{region_name}"],
        doc_md=__doc__,
    )
    def monthly_dag() -> None:
        @ds.banet_task
        def targets() -> list[dict]:
            ctx = get_current_context()
            return t.monthly_targets(region_name, ctx["logical_date"], ctx["params"])

        ds.pod_task("inference", "infer").expand_kwargs(targets())

    return monthly_dag()


for region in ds.regions_for_dags():
    globals()[f"banet_monthly_{region.name}"] = build(region.name)
