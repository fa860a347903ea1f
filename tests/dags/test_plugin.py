"""The banet-ops Airflow plugin loads, registers its listener, and words failures like the callback."""

from __future__ import annotations

import datetime as dt
import logging
from types import SimpleNamespace

from banet_ops.errors import AuthenticationError


def test_plugin_loads_without_errors() -> None:
    from airflow import plugins_manager

    plugins_manager.ensure_plugins_loaded()
    errors = plugins_manager.get_import_errors()
    assert not {k: v for k, v in errors.items() if "banet" in k.lower()}, errors
    info = {p["name"]: p for p in plugins_manager.get_plugin_info(["listeners"])}
    assert info["banet_ops"]["listeners"] == ["banet_ops_plugin.BanetFailureListener"]


def test_listener_is_registered_with_airflow() -> None:
    from airflow.listeners.listener import get_listener_manager

    manager = get_listener_manager()
    names = {type(p).__name__ for p in manager.pm.get_plugins()}
    assert "BanetFailureListener" in names


def test_listener_logs_one_reason_line_for_banet_tasks_only() -> None:
    from airflow import plugins_manager

    plugins_manager.ensure_plugins_loaded()
    [plugin] = [p for p in plugins_manager._get_plugins()[0] if p.name == "banet_ops"]
    [listener] = plugin.listeners
    run = SimpleNamespace(data_interval_start=dt.datetime(2024, 7, 1, tzinfo=dt.UTC))
    ti = SimpleNamespace(dag_id="banet_ingest_PI", task_id="fetch_viirs", dag_run=run)
    error = AuthenticationError("VNP02MOD.A2024183.1200.002.x.nc: expected data, found an HTML login page\nat https://ladsweb")
    # a handler of its own: Airflow's dag.test (other tests in this worker) reconfigures logging and
    # can stop records from reaching caplog's root handler
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append  # type: ignore[method-assign]
    failures = logging.getLogger("banet_ops.airflow.failures")
    failures.addHandler(handler)
    level, failures.level = failures.level, logging.ERROR
    try:
        listener.on_task_instance_failed(previous_state=None, task_instance=ti, error=error)
        listener.on_task_instance_failed(previous_state=None, task_instance=SimpleNamespace(dag_id="other", task_id="x"), error=error)
        listener.on_task_instance_failed(previous_state=None, task_instance=SimpleNamespace(dag_id="banet_monthly_PI", task_id="infer"), error="killed")
    finally:
        failures.removeHandler(handler)
        failures.level = level
    lines = [r.getMessage() for r in records]
    assert lines == [
        "banet-ops: banet_ingest_PI.fetch_viirs for 2024-07-01 failed: AuthenticationError: "
        "VNP02MOD.A2024183.1200.002.x.nc: expected data, found an HTML login page at https://ladsweb",
        "banet-ops: banet_monthly_PI.infer failed: Failure: killed",
    ]
