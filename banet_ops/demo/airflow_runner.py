"""Child process of the demo: runs the demo region's DAGs through Airflow with ``dag.test``.

Started by :func:`banet_ops.demo.run_demo` with ``AIRFLOW_HOME`` and the ``BANET_*`` settings
already in the environment (Airflow reads its configuration when first imported).  Each run is
recorded in the demo's Airflow metadata database, so ``make airflow`` shows them in the UI.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys

from tqdm import tqdm


def _quiet() -> None:
    for name in ("airflow", "airflow.task", "sqlalchemy", "alembic", "banet_ops"):
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: list[str]) -> int:
    plan = json.loads(argv[0])
    region = plan["region"]
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import DagRunState

    _quiet()
    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        print(f"DAG import errors: {bag.import_errors}", file=sys.stderr)
        return 1
    ingest = bag.dags[f"banet_ingest_{region}"]
    infer = bag.dags[f"banet_infer_nrt_{region}"]
    # Airflow 3.3's dag.test() cannot prune deadline alerts (it passes the serialized alert where
    # an id is expected); the scheduler handles them, so only these in-process runs drop them.
    ingest.deadline = None
    infer.deadline = None
    failed: list[str] = []
    for day in tqdm(plan["ingest"], desc=f"banet_ingest_{region}", unit="day", file=sys.stdout):
        # A manual run's data interval is the last whole day before its logical date.
        d = dt.date.fromisoformat(day) + dt.timedelta(days=1)
        run = ingest.test(logical_date=dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC))
        if run.state != DagRunState.SUCCESS:
            failed.append(f"ingest {day}")
    for day in tqdm(plan["infer"], desc=f"banet_infer_nrt_{region}", unit="run", file=sys.stdout):
        run = infer.test(logical_date=None, run_conf={"day": day})
        if run.state != DagRunState.SUCCESS:
            failed.append(f"infer {day}")
    if failed:
        print(f"failed runs: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
