"""banet_retrain: monthly retraining of BA-Net against MCD64A1, with a gated promotion.

plan → labels (MCD64A1 → label cube) → dataset → train (``banet-ops train`` in a GPU pod or a
local subprocess, in the ``gpu`` pool) → evaluate → register (candidate) → gate (promoted only
when it beats production by ``margin``).  Scheduled on the 15th of each month for the month
``label_lag_months`` before (MCD64A1 is published about two months late); a manual run takes
any of the params (regions, months, val, from_scratch, steps, margin, …).  Thin wiring only:
every task calls :mod:`banet_ops.orchestration.retrain_tasks`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronTriggerTimetable, Param, dag, get_current_context, task

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
    params={
        "regions": Param(None, type=["null", "array"], items={"type": "string"}, description="Regions (default: every region file)"),
        "months": Param(None, type=["null", "array"], items={"type": "string", "pattern": r"^\d{4}-\d{2}$"}, description="Months YYYY-MM to train on"),
        "val": Param([], type="array", items={"type": "string"}, description="Validation region-months R:YYYY-MM (default: a seeded share)"),
        "from_scratch": Param(False, type="boolean", description="Random initial weights instead of fine-tuning production"),
        "steps": Param(1000, type="integer", minimum=1, description="Optimiser steps"),
        "batch": Param(4, type="integer", minimum=1),
        "lr": Param(1e-3, type="number", exclusiveMinimum=0),
        "tile": Param(128, type="integer", minimum=32),
        "days": Param(64, type="integer", minimum=16),
        "min_burned": Param(20, type="integer", minimum=0, description="Keep tiles with at least this many burned cells"),
        "max_samples": Param(None, type=["null", "integer"], minimum=1, description="Cap on tiles per region-month"),
        "stride": Param(None, type=["null", "integer"], minimum=8, description="Tile spacing (default: 3/4 of the tile)"),
        "seed": Param(0, type="integer"),
        "threads": Param(None, type=["null", "integer"], minimum=1, description="torch CPU threads of a local trainer"),
        "eval_tile": Param(512, type="integer", minimum=32),
        "metric": Param("dice", type="string"),
        "margin": Param(0.01, type="number", minimum=0, description="Required improvement over production"),
        "architectures": Param(["banet"], type="array", items={"type": "string"}, description="Architectures to train, register, gate"),
    },
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
    training = ds.train_operator().expand_kwargs(train_target(p, d))
    result = trained(p)
    training >> result
    e = evaluate(p, d, result)
    gate(p, register(p, d, result, e), e)


banet_retrain()
