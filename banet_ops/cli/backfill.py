"""`banet-ops backfill --region R --start D1 --end D2 [--dag ingest|nrt|monthly] [--wait]`: a backfill through the Airflow REST API."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from banet_ops.errors import ValidationError
from banet_ops.orchestration import backfill as bf
from banet_ops.orchestration.airflow_api import AirflowAPI
from banet_ops.settings import get_settings


def _day(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, found {value!r}") from None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``backfill`` command."""
    p = sub.add_parser(
        "backfill",
        help="re-run days D1..D2 of a region's DAG in Airflow (REST API at BANET_AIRFLOW_URL)",
        description="Create an Airflow backfill of the UTC days D1..D2 (both included) and optionally wait for it. "
        "A run covers the UTC day of its logical date, so exactly those days are processed.",
    )
    p.add_argument("--region", required=True, help="region name (its DAGs are banet_<dag>_<region>)")
    p.add_argument("--start", required=True, type=_day, metavar="D1", help="first UTC day, YYYY-MM-DD")
    p.add_argument("--end", required=True, type=_day, metavar="D2", help="last UTC day, YYYY-MM-DD (included)")
    p.add_argument(
        "--dag",
        default="ingest",
        choices=sorted(bf.DAG_PREFIX),
        help="which DAG: ingest (default), nrt (one manual run per day), monthly (the months of D1..D2)",
    )
    p.add_argument(
        "--reprocess", default="none", choices=["none", "failed", "completed"], help="re-run days that already have a run: none (default), failed ones, or all"
    )
    p.add_argument("--max-active-runs", type=int, default=2, help="runs of this backfill at a time (default 2)")
    p.add_argument("--unpause", action="store_true", help="unpause the DAG if it is paused (default: refuse, since its runs would stay queued)")
    p.add_argument("--cancel-running", action="store_true", help="cancel a backfill of this DAG that is still running (default: refuse)")
    p.add_argument("--wait", action="store_true", help="show progress until every run finished; exit 1 with the first failed run's reason")
    p.add_argument("--timeout", type=float, default=6 * 3600, help="with --wait: give up after this many seconds (default 21600)")
    p.set_defaults(handler=handle)


def handle(ns: argparse.Namespace) -> int:
    if ns.max_active_runs < 1:
        raise ValidationError(f"--max-active-runs: expected >= 1, found {ns.max_active_runs}")
    plan = bf.BackfillPlan(
        kind=ns.dag,
        region=ns.region,
        start=ns.start,
        end=ns.end,
        reprocess=ns.reprocess,
        max_active_runs=ns.max_active_runs,
        lag_days=get_settings().monthly_lag_days,
    )
    api = AirflowAPI.from_settings()
    started = bf.start_backfill(api, plan, unpause=ns.unpause, cancel_running=ns.cancel_running)
    for line in started.messages:
        print(line, flush=True)
    print(f"runs: {api.url}/dags/{plan.dag_id}/runs", flush=True)
    if not ns.wait:
        return 0
    from tqdm import tqdm

    with tqdm(total=bf.expected_runs(plan), desc=plan.dag_id, unit="run", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        runs = bf.wait(api, started, timeout_s=ns.timeout, progress=progress)
    bf.check(api, plan, runs)
    print(f"{len(runs)} run(s) of {plan.dag_id} succeeded: {plan.start}..{plan.end}", flush=True)
    return 0
