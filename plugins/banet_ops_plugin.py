"""Airflow plugin of banet-ops: a listener that logs one reason line per failed banet task.

The DAGs' ``on_failure_callback`` logs the same line in the task's own log; this listener runs
wherever Airflow sees a task fail (the worker, and the scheduler for tasks that died or timed
out outside their process), so an alerting rule on the ``banet_ops.airflow.failures`` logger
sees every failure exactly as ``dag_support.failure_reason`` words it.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

from banet_ops.orchestration.dag_support import failure_reason

log = logging.getLogger("banet_ops.airflow.failures")


def _data_interval_start(task_instance: Any) -> Any:
    dag_run = getattr(task_instance, "dag_run", None)
    start = getattr(dag_run, "data_interval_start", None)
    if start is None and hasattr(task_instance, "get_template_context"):
        with contextlib.suppress(Exception):  # a runtime instance without its server context
            start = task_instance.get_template_context().get("data_interval_start")
    return start


class BanetFailureListener:
    """Listens to task-instance failures of the ``banet_*`` DAGs."""

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: BaseException | str | None) -> None:
        if not str(getattr(task_instance, "dag_id", "")).startswith("banet_"):
            return
        context = {"task_instance": task_instance, "exception": error, "data_interval_start": _data_interval_start(task_instance)}
        log.error("%s", failure_reason(context))


def _interval_seconds(interval: Any) -> float:
    """A deadline alert's interval as stored: seconds, or the serialized ``timedelta`` dict."""
    if isinstance(interval, dict):
        return float(interval.get("__data__", 0.0))
    return float(interval)


def patch_deadline_recalculation() -> None:
    """Work around Airflow 3.3.2: clearing a run whose ``DAGRUN_QUEUED_AT`` deadline is pending fails.

    ``clear_task_instances`` recomputes such deadlines with ``timedelta(seconds=alert.interval)``
    while the alert stores the serialized ``timedelta`` (a dict), so every clear of a failed or
    unfinished banet run (a backfill with ``reprocess_behavior`` failed/completed, the UI's Clear)
    answered HTTP 500.  The replacement is the same computation with the interval decoded.
    """
    from datetime import timedelta

    from airflow.models import taskinstance as ti_module

    if getattr(ti_module._recalculate_dagrun_queued_at_deadlines, "banet_patched", False):
        return
    from airflow.models.deadline import Deadline, ReferenceModels
    from airflow.models.deadline_alert import DeadlineAlert as DeadlineAlertModel
    from sqlalchemy import false, select

    def recalculate(dagrun: Any, new_queued_at: Any, session: Any) -> None:
        results = session.execute(
            select(Deadline, DeadlineAlertModel)
            .join(DeadlineAlertModel, Deadline.deadline_alert_id == DeadlineAlertModel.id)
            .where(
                Deadline.dagrun_id == dagrun.id,
                Deadline.missed == false(),
                DeadlineAlertModel.reference[ReferenceModels.REFERENCE_TYPE_FIELD].as_string() == ReferenceModels.DagRunQueuedAtDeadline.__name__,
            )
        ).all()
        for deadline, alert in results:
            deadline.deadline_time = new_queued_at + timedelta(seconds=_interval_seconds(alert.interval))

    recalculate.banet_patched = True  # type: ignore[attr-defined]
    ti_module._recalculate_dagrun_queued_at_deadlines = recalculate


with contextlib.suppress(ImportError):  # another Airflow version: nothing to patch
    patch_deadline_recalculation()


class BanetOpsPlugin(AirflowPlugin):
    """Registers :class:`BanetFailureListener`."""

    name = "banet_ops"
    listeners = [BanetFailureListener()]  # noqa: RUF012 - AirflowPlugin declares class attributes
