"""Every DAG loads, with no import errors or cycles, and parsing opens no socket."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

REGIONS = ("AK", "AU", "BR", "CA", "MZ", "PI", "PT")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


def test_one_dag_per_region_and_kind(dagbag) -> None:
    expected = {f"banet_{kind}_{r}" for kind in ("ingest", "infer_nrt", "monthly") for r in REGIONS}
    assert expected <= set(dagbag.dags)


def test_dags_are_acyclic_and_wired(dagbag) -> None:
    from airflow.sdk.definitions.dag import DAG

    ingest: DAG = dagbag.dags["banet_ingest_PI"]
    ingest.check_cycle()  # raises on a cycle
    assert set(ingest.task_dict) == {"discover", "fetch_viirs", "fetch_firms", "grid_composite", "commit"}
    assert ingest.task_dict["fetch_viirs"].upstream_task_ids == {"discover"}
    assert ingest.task_dict["fetch_firms"].upstream_task_ids == {"discover"}
    assert ingest.task_dict["grid_composite"].upstream_task_ids == {"discover", "fetch_viirs", "fetch_firms"}
    assert [o.name for o in ingest.task_dict["commit"].outlets] == ["cube/PI"]


def test_ingest_has_a_real_one_day_interval(dagbag) -> None:
    import pendulum
    from airflow.serialization.encoders import coerce_to_core_timetable

    timetable = coerce_to_core_timetable(dagbag.dags["banet_ingest_PI"].timetable)
    interval = timetable.infer_manual_data_interval(run_after=pendulum.datetime(2024, 7, 2, tz="UTC"))
    assert interval.end - interval.start == pendulum.duration(days=1)


def test_infer_is_scheduled_on_the_cube_asset(dagbag) -> None:
    dag = dagbag.dags["banet_infer_nrt_PI"]
    assert [asset.name for asset in dag.timetable.asset_condition.objects] == ["cube/PI"]
    assert dag.task_dict["infer"].pool == "gpu"


def test_task_defaults_follow_the_error_policy(dagbag) -> None:
    from banet_ops.errors import AuthenticationError, SourceUnavailableError

    task = dagbag.dags["banet_ingest_PI"].task_dict["fetch_viirs"]
    assert task.retries >= 3
    assert task.retry_exponential_backoff == 2.0
    assert task.execution_timeout is not None
    assert task.on_failure_callback
    policy = task.retry_policy
    assert policy.evaluate(SourceUnavailableError("503"), 1, 5).action.value == "retry"
    assert policy.evaluate(AuthenticationError("bad token"), 1, 5).action.value == "fail"


def test_parsing_opens_no_socket() -> None:
    """Import the dags folder in a fresh interpreter where any socket use raises."""
    probe = textwrap.dedent(
        f"""
        import socket, sys
        class NoNetwork(RuntimeError): pass
        def refuse(*a, **k): raise NoNetwork(f"socket used at parse time: {{a!r}}")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from airflow.dag_processing.dagbag import DagBag
        bag = DagBag(dag_folder={str(REPO / "dags")!r})
        if bag.import_errors:
            print(bag.import_errors); sys.exit(1)
        print(len(bag.dags))
        """
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert int(proc.stdout.strip().splitlines()[-1]) >= 21
    assert socket.socket.connect is not None


def test_retrain_dag_shape(dagbag) -> None:
    dag = dagbag.dags["banet_retrain"]
    dag.check_cycle()
    assert set(dag.task_dict) == {"plan", "labels", "dataset", "train_target", "train", "trained", "evaluate", "register", "gate"}
    assert dag.task_dict["train"].pool == "gpu"
    assert dag.task_dict["trained"].upstream_task_ids == {"plan", "train"}
    assert dag.task_dict["gate"].upstream_task_ids == {"plan", "register", "evaluate"}
    assert dag.max_active_runs == 1 and dag.task_dict["evaluate"].on_failure_callback
    assert dag.params["from_scratch"] is False and dag.params["margin"] == 0.01
    assert dag.params["architectures"] == ["banet"]  # the architecture list is a param (banet_ops.retrain.params)
    assert dag.params.get_param("architectures").schema["type"] == "array"
