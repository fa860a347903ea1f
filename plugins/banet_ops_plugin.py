"""Airflow plugin of banet-ops: the "Burned areas" map page and a failure listener.

The map app (``banet_ops.web``) is mounted on the api-server under ``MAP_PREFIX`` with Airflow's
own authentication on every route (a request without a valid Airflow token gets 401/403), and
an external view puts it in the navigation.

The failure listener logs one reason line per failed banet task.

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
