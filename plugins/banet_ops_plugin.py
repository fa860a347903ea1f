"""Airflow plugin of banet-ops: the "Burned areas" map page and a failure listener.

The map app (``banet_ops.web``) is mounted on the api-server under ``MAP_PREFIX`` with Airflow's
own authentication on every route (a request without a valid Airflow token gets 401/403), and
an external view puts it in the navigation.

The failure listener logs one reason line per failed banet task and puts it in the notes of a
failed run and its failed tasks (where the UI shows it first); when a cleared run succeeds, it
takes the stale reasons off again.

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

from banet_ops.orchestration import notes
from banet_ops.orchestration.dag_support import REASON_XCOM, failure_reason

log = logging.getLogger("banet_ops.airflow.failures")


def _run_dates(task_instance: Any) -> dict[str, Any]:
    """``logical_date`` and ``data_interval_start`` of the task's run (what ``interval_day`` reads)."""
    dag_run = getattr(task_instance, "dag_run", None)
    dates = {key: getattr(dag_run, key, None) for key in ("logical_date", "data_interval_start")}
    if dates["data_interval_start"] is None and hasattr(task_instance, "get_template_context"):
        with contextlib.suppress(Exception):  # a runtime instance without its server context
            context = task_instance.get_template_context()
            dates = {key: context.get(key) for key in dates}
    return dates


class BanetFailureListener:
    """Listens to task-instance failures of the ``banet_*`` DAGs."""

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: BaseException | str | None) -> None:
        if not str(getattr(task_instance, "dag_id", "")).startswith("banet_"):
            return
        context = {"task_instance": task_instance, "exception": error, **_run_dates(task_instance)}
        log.error("%s", failure_reason(context))

    @hookimpl
    def on_dag_run_failed(self, dag_run: Any, msg: str) -> None:
        if not str(getattr(dag_run, "dag_id", "")).startswith("banet_"):
            return
        try:
            reason = note_failure_reasons(dag_run)
        except Exception:  # never break the scheduler for a note
            log.exception("banet-ops: could not note the failure reason of %s", getattr(dag_run, "run_id", "?"))
            return
        if reason:
            log.error("%s (run %s)", reason, dag_run.run_id)

    @hookimpl
    def on_dag_run_success(self, dag_run: Any, msg: str) -> None:
        if not str(getattr(dag_run, "dag_id", "")).startswith("banet_"):
            return
        try:
            clear_stale_reasons(dag_run)
        except Exception:  # never break the scheduler for a note
            log.exception("banet-ops: could not clear the stale notes of %s", getattr(dag_run, "run_id", "?"))


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


def _reason_of(session: Any, ti: Any) -> str | None:
    """The ``banet_failure_reason`` XCom the failed try of ``ti`` pushed (see ``dag_support.reason_first``)."""
    from airflow.models.xcom import XComModel
    from sqlalchemy import select

    row = session.scalar(
        select(XComModel).where(
            XComModel.dag_id == ti.dag_id,
            XComModel.run_id == ti.run_id,
            XComModel.task_id == ti.task_id,
            XComModel.map_index == ti.map_index,
            XComModel.key == REASON_XCOM,
        )
    )
    return str(XComModel.deserialize_value(row)) if row is not None else None


def _attached(dag_run: Any) -> tuple[Any, Any]:
    """The run and the session it belongs to (a detached copy from ``dag.test``: the thread's session)."""
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    if session is None:  # its caller commits the scoped session
        from airflow import settings
        from airflow.models.dagrun import DagRun

        session = settings.Session()
        dag_run = session.get(DagRun, dag_run.id)
    return dag_run, session


def note_failure_reasons(dag_run: Any) -> str | None:
    """Put each failed task's one-line reason in its note and the first one on the run's note.

    Runs in the scheduler, in the session that is marking the run failed (so no second
    transaction waits on its locks); the wording rules are :mod:`banet_ops.orchestration.notes`
    (an operator's own note is never overwritten; the run's origin stays below the reason).
    """
    dag_run, session = _attached(dag_run)
    if dag_run is None:
        return None
    reasons = []
    for ti in dag_run.get_task_instances(state=["failed"], session=session):
        reason = _reason_of(session, ti)
        if reason:
            reasons.append(reason)
            if (note := notes.task_note_after_failure(ti.note, reason)) is not None:
                ti.note = note
    if (note := notes.run_note_after_failure(dag_run.note, reasons)) is not None:
        dag_run.note = note
    return reasons[0] if reasons else None


def clear_stale_reasons(dag_run: Any) -> None:
    """A run that succeeded (after a clear) keeps its origin note but no failure reason."""
    dag_run, session = _attached(dag_run)
    if dag_run is None:
        return
    for holder in (dag_run, *dag_run.get_task_instances(session=session)):
        kept = notes.note_after_success(holder.note)
        if kept != holder.note:  # most successful runs have nothing to change: write nothing
            holder.note = kept


MAP_PREFIX = "/banet-map"


def _map_app() -> Any:
    """The map app guarded by Airflow's user dependency (token in the header or the UI's cookie)."""
    from airflow.api_fastapi.core_api.security import get_user

    from banet_ops.web.app import create_app

    return create_app(auth=get_user, in_airflow=True)


def _lazy_map_app() -> Any:
    """Built on the first request: processes that only load the plugin skip the map's imports."""
    from banet_ops.web.app import LazyApp

    return LazyApp(_map_app)


class BanetOpsPlugin(AirflowPlugin):
    """Registers :class:`BanetFailureListener`, the map app and its navigation entry."""

    name = "banet_ops"
    listeners = [BanetFailureListener()]  # noqa: RUF012 - AirflowPlugin declares class attributes
    fastapi_apps = [{"app": _lazy_map_app(), "url_prefix": MAP_PREFIX, "name": "banet-ops map"}]  # noqa: RUF012
    external_views = [  # noqa: RUF012
        {
            "name": "Burned areas",
            "href": f"{MAP_PREFIX}/",
            "destination": "nav",
            "url_route": "burned-areas",
            "nav_top_level": True,
            "icon": f"{MAP_PREFIX}/static/icon.svg",
        },
    ]
