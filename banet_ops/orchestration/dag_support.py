"""What every banet-ops DAG shares: retry policy, default args, callbacks, deadlines, the pod task.

The Airflow side of :mod:`banet_ops.orchestration`: with ``dags/`` and ``plugins/`` the only code
that imports Airflow at module level (the import-linter contract in .importlinter holds the
exceptions); it holds no domain logic.  The retry policy maps the error hierarchy of :mod:`banet_ops.errors` onto
Airflow: permanent errors fail the task at once with their reason, retryable ones retry with
exponential back-off.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from airflow.sdk import Asset, Param, task
from airflow.sdk.definitions.callback import SyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference
from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy, RetryAction, RetryRule
from airflow.sdk.exceptions import AirflowSkipException
from pydantic import BaseModel

from banet_ops.errors import InsufficientDataError, PermanentError, RetryableError
from banet_ops.orchestration.backend import Backend, Job
from banet_ops.regions import Region, load_regions
from banet_ops.settings import get_settings

log = logging.getLogger("banet_ops.airflow")
retry_log = logging.getLogger("banet_ops.airflow.retries")

# Concurrency: a season backfill (its own max_active_runs) runs beside the daily runs, which
# keep these slots; inference is serialised per region by the `gpu` pool and max_active_runs.
INGEST_MAX_ACTIVE_RUNS = 4
INFER_MAX_ACTIVE_RUNS = 2
GPU_POOL = "gpu"
INGEST_TASK_TIMEOUT = timedelta(minutes=45)
INFER_TASK_TIMEOUT = timedelta(minutes=30)
# discover raises RetryableError while the day is not yet in the archive (LAADS NRT latency is
# hours): 10, 20, 40, then hourly retries cover about 10 hours before the task gives up.
DISCOVER_RETRY: dict[str, Any] = {"retries": 12, "retry_delay": timedelta(minutes=10), "max_retry_delay": timedelta(hours=1)}
INGEST_DEADLINE_HOURS = 6.0  # a cube day is late when its run has not finished 6 h after being queued


def regions_for_dags() -> list[Region]:
    """Regions to generate DAGs for: the files in BANET_REGIONS_DIR (never the DB or network)."""
    return list(load_regions(get_settings().regions_dir).values())


def monthly_lag_days() -> int:
    return get_settings().monthly_lag_days


def cube_asset(region_name: str) -> Asset:
    """The Asset a region's cube commits emit; its events carry ``{day, snapshot}``."""
    root = get_settings().resolved_cube_root.rstrip("/")
    uri = f"{root}/{region_name}" if "://" in root else f"file://{root}/{region_name}"
    return Asset(name=f"cube/{region_name}", uri=uri, group="banet-cube")


def interval_day(context: Any) -> str:
    """The UTC day (ISO) a run covers: the UTC day of its logical date.

    Scheduled and backfill runs of the daily timetable have logical date = data interval start,
    so they agree; a manual run covers the day it was triggered for (not the day before, as its
    inferred data interval would say).  A manual run without a logical date covers its data
    interval: the last whole day before it was triggered.
    """
    when = context.get("logical_date") or context["data_interval_start"]
    when = when.astimezone(dt.UTC) if when.tzinfo else when
    return dt.date(when.year, when.month, when.day).isoformat()


RETRY_POLICY = ExceptionRetryPolicy(
    rules=[
        RetryRule(exception=PermanentError, action=RetryAction.FAIL, reason="permanent error: retrying cannot fix it"),
        RetryRule(exception=[RetryableError, ConnectionError, TimeoutError], action=RetryAction.RETRY, reason="transient error"),
    ],
    default=RetryAction.DEFAULT,
)


def model_params(model: type[BaseModel]) -> dict[str, Param]:
    """One Airflow ``Param`` per field of ``model``: its default, JSON schema (type, bounds, pattern) and description."""
    properties = model.model_json_schema()["properties"]
    params = {}
    for name, field in model.model_fields.items():
        schema = {k: v for k, v in properties[name].items() if k not in ("default", "title")}
        params[name] = Param(field.get_default(call_default_factory=True), **schema)
    return params


REASON_XCOM = "banet_failure_reason"  # the failed try's one-line reason; the plugin copies it into notes


def failure_reason(context: dict[str, Any]) -> str:
    """One line saying which task failed, for which UTC day (:func:`interval_day`), and why."""
    ti = context.get("task_instance") or context.get("ti")
    exc = context.get("exception")
    where = f"{getattr(ti, 'dag_id', '?')}.{getattr(ti, 'task_id', '?')}"
    when = ""
    if context.get("logical_date") is not None or context.get("data_interval_start") is not None:
        when = f" for {interval_day(context)}"
    reason = " ".join(str(exc).split()) if exc else "unknown reason (see the task log)"
    kind = type(exc).__name__ if isinstance(exc, BaseException) else "Failure"  # the scheduler reports a str
    return f"banet-ops: {where}{when} failed: {kind}: {reason}"


def on_failure(context: dict[str, Any]) -> None:
    """Task failure callback: log one clear reason line (alerting hooks read this line).

    A failure raised in a task body was already logged by :func:`reason_first`, before Airflow's
    traceback; this logs the others (timeouts, killed tasks).
    """
    if not getattr(context.get("exception"), "banet_reason_logged", False):
        log.error(failure_reason(context))


_CONTROL_FLOW = ("AirflowSkipException", "AirflowRescheduleException", "TaskDeferred", "DownstreamTasksSkipped")


def reason_first(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a task body: on an error, log its one-line reason first (above Airflow's traceback in
    the log view) and keep it as the ``banet_failure_reason`` XCom for the run and task notes."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if type(exc).__name__ in _CONTROL_FLOW:
                raise
            from airflow.sdk import get_current_context

            context: dict[str, Any] = dict(get_current_context())
            line = failure_reason({**context, "exception": exc})
            ti = context["ti"]
            try_number, max_tries = int(getattr(ti, "try_number", 1) or 1), int(getattr(ti, "max_tries", 0) or 0)
            if not isinstance(exc, PermanentError) and try_number <= max_tries:
                retry_log.warning("%s (try %d of %d; Airflow retries it)", line, try_number, max_tries + 1)
                raise
            log.error(line)
            with contextlib.suppress(Exception):  # the reason is already in the log
                ti.xcom_push(key=REASON_XCOM, value=line)
            with contextlib.suppress(AttributeError):
                exc.banet_reason_logged = True  # type: ignore[attr-defined]
            raise

    return wrapper


def banet_task(*args: Any, **kwargs: Any) -> Any:
    """``@task`` of every banet-ops DAG: Airflow's ``task`` with :func:`reason_first` around the body."""
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return task(reason_first(args[0]))

    def decorate(fn: Callable[..., Any]) -> Any:
        return task(*args, **kwargs)(reason_first(fn))

    return decorate


def on_deadline_missed(context: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Deadline callback: a run has not finished in time, so its product is late."""
    run = (context or {}).get("dag_run") or {}
    get = run.get if isinstance(run, dict) else lambda key, default=None: getattr(run, key, default)
    log.error(
        "banet-ops: deadline missed: %s run %s (state %s) has not finished; the %s is late",
        get("dag_id", "?"),
        get("dag_run_id", get("run_id", "?")),
        get("state", "?"),
        kwargs.get("what", "product"),
    )


def default_args(*, retries: int = 4, timeout: timedelta = timedelta(hours=1)) -> dict[str, Any]:
    """Default task arguments of every banet-ops DAG."""
    return {
        "owner": "banet-ops",
        "retries": retries,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(hours=1),
        "execution_timeout": timeout,
        "on_failure_callback": on_failure,
        "retry_policy": RETRY_POLICY,
    }


def late_product_deadline(hours: float, what: str) -> DeadlineAlert:
    """Alert when a run has not finished ``hours`` after it was queued (backfills included)."""
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(hours=hours),
        callback=SyncCallback(on_deadline_missed, kwargs={"what": what}),
    )


RETRAIN_TASK_TIMEOUT = timedelta(hours=2)  # labels, dataset, evaluation (CPU steps on the worker)
RETRAIN_TRAIN_TIMEOUT = timedelta(hours=24)

# KubernetesPodOperator behaviour (the pod itself comes from the chart's pod template).
POD_OPERATOR_OPTIONS: dict[str, Any] = {
    "get_logs": True,
    "log_events_on_failure": True,
    "on_finish_action": "delete_succeeded_pod",
    "do_xcom_push": False,
    "durable": True,  # reattach to a running pod after a worker restart instead of starting a second one
}


def pod_task(job: Job, task_id: str, **task_kwargs: Any) -> Any:
    """The partial task running ``banet-ops`` for ``job`` on the configured backend, in the ``gpu`` pool.

    ``expand_kwargs`` it over :meth:`Backend.target` dicts (``arguments``, ``labels``, ``name``):
    a ``KubernetesPodOperator`` building each pod from the job's pod template, or a local
    subprocess with the same arguments.  Exit code 66 (``InsufficientDataError``: too few
    ingested days in the window) marks the task skipped with the reason, on both backends.
    """
    backend = Backend.from_settings()
    if backend.on_kubernetes:
        from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

        from banet_ops.orchestration.tasks import EXIT_INSUFFICIENT_DATA

        return KubernetesPodOperator.partial(
            task_id=task_id,
            pool=GPU_POOL,
            pod_template_file=str(backend.template_file(job)),
            startup_timeout_seconds=backend.startup_timeout_s,
            skip_on_exit_code=EXIT_INSUFFICIENT_DATA,  # too few ingested days in the window: skipped, not failed
            **POD_OPERATOR_OPTIONS,
            **task_kwargs,
        )

    @banet_task(task_id=task_id, pool=GPU_POOL, **task_kwargs)
    def run_local(arguments: list[str], labels: dict[str, str], name: str) -> dict:
        from banet_ops.orchestration import tasks

        try:
            return tasks.run_local_cli(arguments)
        except InsufficientDataError as exc:  # exit 66: the window has too few ingested days
            raise AirflowSkipException(f"skipped: {exc}") from exc

    return run_local
