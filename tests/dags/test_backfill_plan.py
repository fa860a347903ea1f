"""`banet-ops backfill` without a server: the ranges it asks Airflow for, its refusals, and the
failed run's reason it reports (from the task's note, else the `banet-ops:` line of its log).

The whole command against a real deployment runs in tests/journey/test_journey.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from banet_ops.cli import main
from banet_ops.errors import ConfigError, PermanentError, ValidationError
from banet_ops.orchestration import backfill as bf
from banet_ops.orchestration.airflow_api import AirflowAPI, AirflowRefusedError

D = dt.date


class FakeAPI:
    """The calls of :class:`AirflowAPI` that the backfill logic makes, over in-memory state."""

    url = "http://airflow.test"

    def __init__(self, *, paused: bool = False, stale: bool = False) -> None:
        self.dags = {"banet_ingest_PI": {"is_paused": paused, "is_stale": stale}}
        self.created: list[tuple[str, str, str]] = []
        self.runs: list[dict[str, Any]] = []
        self.tis: dict[str, list[dict[str, Any]]] = {}
        self.logs: dict[tuple[str, str], str] = {}

    def dag(self, dag_id: str) -> dict[str, Any]:
        if dag_id not in self.dags:
            raise ConfigError(f"expected DAG {dag_id} at {self.url}, found none")
        return self.dags[dag_id]

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.dags[dag_id]["is_paused"] = paused

    def active_backfills(self, dag_id: str) -> list[dict[str, Any]]:
        return []

    def backfill(self, dag_id: str, first: str, last: str, **kwargs: Any) -> dict[str, Any]:
        self.created.append((dag_id, first, last))
        return {"id": 7}

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.runs

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.tis[run_id]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        return self.logs[(run_id, task_id)]


def test_ingest_and_monthly_ranges_cover_exactly_the_days_asked_for() -> None:
    plan = bf.BackfillPlan("ingest", "PI", D(2024, 8, 18), D(2024, 8, 19))
    assert plan.dag_id == "banet_ingest_PI" and plan.logical_range() == ("2024-08-18T00:00:00Z", "2024-08-19T00:00:00Z")
    monthly = bf.BackfillPlan("monthly", "PI", D(2024, 6, 3), D(2024, 8, 30), lag_days=10)
    # the monthly product of month M runs on day 1 + lag of M+1
    assert monthly.logical_range() == ("2024-07-11T00:00:00Z", "2024-09-11T23:59:59Z") and bf.expected_runs(monthly) == 3
    assert bf.BackfillPlan("nrt", "PI", D(2024, 8, 1), D(2024, 8, 9), selected=(D(2024, 8, 9), D(2024, 8, 1))).days == [D(2024, 8, 1), D(2024, 8, 9)]
    with pytest.raises(ValidationError, match="--end"):
        bf.BackfillPlan("ingest", "PI", D(2024, 8, 19), D(2024, 8, 18))
    with pytest.raises(ValidationError, match="--dag"):
        bf.BackfillPlan("weekly", "PI", D(2024, 8, 18), D(2024, 8, 18))


def test_progress_is_full_only_once_airflow_says_the_backfill_is_complete() -> None:
    # both days already have finished runs (from before the backfill), but Airflow has not closed it yet
    api = FakeAPI()
    api.runs = [{"logical_date": f"2024-08-{d}T00:00:00Z", "state": "success", "dag_run_id": f"r{d}"} for d in (18, 19)]
    polls: list[tuple[int, int]] = []
    answers = iter([None, None, "2024-08-20T00:00:00Z"])
    api.get_backfill = lambda backfill_id: {"completed_at": next(answers)}  # type: ignore[attr-defined]
    started = bf.Started(bf.BackfillPlan("ingest", "PI", D(2024, 8, 18), D(2024, 8, 19)), backfill_id=7)
    runs = bf.wait(api, started, timeout_s=60, poll_s=0, progress=lambda done, total: polls.append((done, total)))  # type: ignore[arg-type]
    assert polls == [(1, 2), (1, 2), (2, 2)] and len(runs) == 2


def test_a_paused_dag_is_refused_unless_asked_to_unpause_and_a_stale_one_always() -> None:
    plan = bf.BackfillPlan("ingest", "PI", D(2024, 8, 18), D(2024, 8, 19))
    api = FakeAPI(paused=True)
    with pytest.raises(ConfigError, match=r"paused.*--unpause"):
        bf.start_backfill(api, plan)  # type: ignore[arg-type]
    assert api.created == []
    started = bf.start_backfill(api, plan, unpause=True)  # type: ignore[arg-type]
    assert api.dags["banet_ingest_PI"]["is_paused"] is False and started.backfill_id == 7
    assert started.messages[0].startswith("unpaused banet_ingest_PI")
    assert api.created == [("banet_ingest_PI", "2024-08-18T00:00:00Z", "2024-08-19T00:00:00Z")]
    with pytest.raises(ConfigError, match="deactivated"):
        bf.start_backfill(FakeAPI(stale=True), plan, unpause=True)  # type: ignore[arg-type]


def _run(day: str, state: str) -> dict[str, Any]:
    return {"dag_run_id": f"backfill__{day}", "logical_date": f"{day}T00:00:00Z", "state": state}


def test_the_failed_runs_reason_comes_from_its_note_else_its_log_line() -> None:
    plan = bf.BackfillPlan("ingest", "PI", D(2024, 8, 18), D(2024, 8, 19))
    api = FakeAPI()
    api.runs = [_run("2024-08-17", "failed"), _run("2024-08-18", "success"), _run("2024-08-19", "failed")]
    reason = "banet-ops: banet_ingest_PI.discover for 2024-08-19 failed: AuthenticationError: bad token"
    api.tis["backfill__2024-08-19"] = [
        {"task_id": "discover", "state": "failed", "note": None, "try_number": 1, "map_index": -1},
        {"task_id": "commit", "state": "upstream_failed", "note": None},
    ]
    api.logs[("backfill__2024-08-19", "discover")] = f"Traceback ...\n[error] {reason}\nmore"
    runs = bf.runs_in_range(api, plan)  # type: ignore[arg-type]
    assert [r["logical_date"][:10] for r in runs] == ["2024-08-18", "2024-08-19"]  # 08-17 is outside
    with pytest.raises(PermanentError) as exc:
        bf.check(api, plan, runs)  # type: ignore[arg-type]
    assert str(exc.value) == f"2024-08-19: {reason}"
    api.tis["backfill__2024-08-19"][0]["note"] = reason + " (from the note)"
    with pytest.raises(PermanentError, match=r"\(from the note\)"):
        bf.check(api, plan, runs)  # type: ignore[arg-type]


def test_the_command_says_in_one_line_when_no_airflow_answers(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from banet_ops.localstack.airflow import free_port
    from banet_ops.settings import get_settings

    monkeypatch.setenv("BANET_AIRFLOW_URL", f"http://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    try:
        code = main(["backfill", "--region", "PI", "--start", "2024-08-18", "--end", "2024-08-19"])
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert code == 75 and err.count("\n") == 1 and "make airflow" in err  # retryable: nothing answered


@pytest.mark.parametrize(
    ("listing", "hint"),
    [
        ({"dags": [{"dag_id": "banet_ingest_DEMO"}, {"dag_id": "banet_ingest_DEMO2"}]}, "found banet_ingest_DEMO: DAG ids and region names are case-sensitive"),
        ({"dags": []}, "is its region file in BANET_REGIONS_DIR"),
        (AirflowRefusedError("GET /api/v2/dags: HTTP 403: forbidden", 403), "is its region file in BANET_REGIONS_DIR"),
    ],
    ids=["other-case", "none", "listing-refused"],
)
def test_an_unknown_dag_names_the_one_that_differs_only_in_case(monkeypatch: pytest.MonkeyPatch, listing: Any, hint: str) -> None:
    def request(self: AirflowAPI, method: str, path: str, body: Any = None, *, attempts: int = 6) -> Any:
        if path.startswith("/api/v2/dags/"):
            raise AirflowRefusedError(f"{method} {path}: HTTP 404: not found", 404)
        if isinstance(listing, Exception):
            raise listing
        assert "dag_id_pattern=banet_ingest_demo" in path
        return listing

    monkeypatch.setattr(AirflowAPI, "request", request)
    with pytest.raises(ConfigError, match=r"expected DAG banet_ingest_demo at \S+, found none") as raised:
        AirflowAPI(url="http://airflow.test", token="t").dag("banet_ingest_demo")
    assert hint in str(raised.value)
