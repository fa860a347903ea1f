"""The demo's runs through a real Airflow scheduler: a backfill of ``banet_ingest_DEMO``, then one
manual run of ``banet_infer_nrt_DEMO`` per inference day.

The deployment is the one ``make airflow`` starts afterwards (``$BANET_HOME/airflow``, metadata in
the local cluster's ``airflow`` database), on a free port for the demo's duration, so the UI
later shows exactly what ran: every run with its true duration and task logs.  Its
``deployment.json`` turns off scheduled and asset-triggered runs (``use_job_schedule``): the
scenario has no data for today, so a scheduled run would only retry for hours; backfills and
manual runs (``banet-ops backfill``, the UI's Trigger) still run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
import urllib.parse
from pathlib import Path

from tqdm import tqdm

from banet_ops.localstack import airflow as local_airflow
from banet_ops.orchestration import backfill as bf
from banet_ops.orchestration.airflow_api import AirflowAPI, AirflowRefusedError

DEMO_DEPLOYMENT = {
    # the demo's scenario ends in 2024: no scheduled or asset-triggered runs in this deployment
    "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
}
INGEST_AT_A_TIME = 4  # banet_ingest's max_active_runs; the LocalExecutor runs 4 tasks at a time


def _follow(api: AirflowAPI, started: bf.Started, unit: str, timeout_s: float) -> list[dict]:
    plan = started.plan
    with tqdm(total=bf.expected_runs(plan), desc=plan.dag_id, unit=unit, file=sys.stdout) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        runs = bf.wait(api, started, timeout_s=timeout_s, poll_s=2.0, progress=progress)
    bf.check(api, plan, runs)
    return runs


def drop_unfinished(api: AirflowAPI, dag_id: str) -> None:
    """Delete the runs an interrupted earlier demo left unfinished (Airflow 3.3 cannot clear a run
    whose deadline is still pending), and say so."""
    for backfill in api.active_backfills(dag_id):
        with contextlib.suppress(AirflowRefusedError):  # 409: it completed meanwhile
            api.cancel_backfill(int(backfill["id"]))
    left = [r for r in api.dag_runs(dag_id) if r["state"] not in bf.FINISHED]
    for run in left:
        if run["state"] == "running":  # a running run cannot be deleted
            api.request("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run['dag_run_id'])}", {"state": "failed"})
        api.delete_run(dag_id, run["dag_run_id"])
    if left:
        print(f"      deleted {len(left)} unfinished run(s) of {dag_id} left by an interrupted earlier demo", flush=True)


def run_through_airflow(home: Path, env: dict[str, str], region: str, ingest_days: list[dt.date], infer_days: list[dt.date]) -> None:
    """Start the deployment, run the demo's DAGs in it, stop it; raises with the first failed run's reason."""
    local_airflow.write_deployment_overrides(home, DEMO_DEPLOYMENT)
    base_env, metadata_db = local_airflow.local_deployment_env(home)
    with local_airflow.running(home, port=local_airflow.free_port(), extra_env={**base_env, **env}, metadata_db=metadata_db) as deployment:
        print(f"      Airflow (scheduler, LocalExecutor) on {deployment.url} while the demo runs", flush=True)
        api = deployment.api
        for dag_id in (bf.dag_id_of("ingest", region), bf.dag_id_of("nrt", region)):
            deployment.wait_for_dag(dag_id)
            api.set_paused(dag_id, False)
            drop_unfinished(api, dag_id)
        plan = bf.BackfillPlan("ingest", region, ingest_days[0], ingest_days[-1], reprocess="completed", max_active_runs=INGEST_AT_A_TIME)
        _follow(api, bf.start_backfill(api, plan, cancel_running=True), "day", timeout_s=3600)
        nrt_plan = bf.BackfillPlan("nrt", region, infer_days[0], infer_days[-1], selected=tuple(infer_days))
        _follow(api, bf.start_backfill(api, nrt_plan, note="banet-ops demo"), "run", timeout_s=3600)
