"""banet_retrain: monthly retraining of BA-Net against MCD64A1, with a gated promotion.

plan → labels (MCD64A1 → label cube) → dataset → train (``banet-ops train`` in a GPU pod or a
local subprocess, in the ``gpu`` pool) → evaluate → register (candidate) → gate (promoted only
when it beats production by ``margin``).  Scheduled on the 15th of each month for the month
``label_lag_months`` before (MCD64A1 is published about two months late); a manual run takes
any of the params (regions, months, val, from_scratch, steps, margin, …: the fields of
:class:`banet_ops.retrain.params.RetrainParams`).  Thin wiring only: every task calls
:mod:`banet_ops.orchestration.retrain_tasks`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronTriggerTimetable, dag, get_current_context, task

from banet_ops.orchestration import dag_support as ds
from banet_ops.orchestration import retrain_tasks as rt


@dag(
    dag_id="banet_retrain",
    description="Retrain BA-Net on new MCD64A1 months; promote only a better model",
    schedule=CronTriggerTimetable("0 8 15 * *", timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=ds.default_args(retries=2, timeout=ds.RETRAIN_TASK_TIMEOUT),
    params=ds.model_params(rt.RetrainParams),  # generated: banet_ops/retrain/params.py declares them
    deadline=ds.late_product_deadline(hours=36, what="monthly retraining"),
    tags=["banet", "retrain"],
    doc_md=__doc__,
)
def banet_retrain() -> None:
    @task
    def plan() -> dict:
        ctx = get_current_context()
        return rt.plan(ctx["params"], ctx["logical_date"] or ctx["run_after"])

    @task
    def labels(the_plan: dict) -> dict:
        return rt.labels(the_plan)

    @task
    def dataset(the_plan: dict, _labels: dict) -> dict:
        return rt.dataset(the_plan)

    @task
    def train_target(the_plan: dict, the_dataset: dict) -> list[dict]:
        return rt.train_targets(the_plan, the_dataset)

    @task
    def trained(the_plan: dict) -> dict:
        return rt.trained(the_plan)

    @task
    def evaluate(the_plan: dict, the_dataset: dict, the_training: dict) -> dict:
        return rt.evaluate(the_plan, the_dataset, the_training)

    @task
    def register(the_plan: dict, the_dataset: dict, the_training: dict, evaluated: dict) -> dict:
        return rt.register(the_plan, the_dataset, the_training, evaluated)

    @task
    def gate(the_plan: dict, registered: dict, evaluated: dict) -> dict:
        return rt.gate(the_plan, registered, evaluated)

    p = plan()
    d = dataset(p, labels(p))
    training = ds.pod_task("training", "train", execution_timeout=ds.RETRAIN_TRAIN_TIMEOUT).expand_kwargs(train_target(p, d))
    result = trained(p)
    training >> result
    e = evaluate(p, d, result)
    gate(p, register(p, d, result, e), e)


banet_retrain()
