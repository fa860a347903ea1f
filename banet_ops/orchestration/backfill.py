"""Backfills a person can run: days D1..D2 of a region's DAG through the Airflow REST API.

``ingest`` and ``monthly`` go through ``POST /api/v2/backfills`` (the scheduler runs them with
the backfill's own ``max_active_runs``); ``nrt`` is scheduled on cube updates, which Airflow
cannot backfill, so it gets one manual run per day with ``{"day": D}``.  A run covers the UTC
day of its logical date (:func:`banet_ops.orchestration.dag_support.interval_day`), so a
backfill of D1..D2 processes exactly those days.  A paused DAG is refused (its runs would stay
queued) unless the caller asks to unpause it; a failed run's one-line reason is read back from
its failed task's note or log.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from banet_ops.errors import ConfigError, PermanentError, ValidationError
from banet_ops.orchestration.airflow_api import AirflowAPI, AirflowRefusedError

log = logging.getLogger(__name__)

DagKind = Literal["ingest", "nrt", "monthly"]
DAG_PREFIX: dict[str, str] = {"ingest": "banet_ingest", "nrt": "banet_infer_nrt", "monthly": "banet_monthly"}
FINISHED = {"success", "failed"}
REASON_PREFIX = "banet-ops: "


def dag_id_of(kind: str, region: str) -> str:
    return f"{DAG_PREFIX[kind]}_{region}"


def _midnight(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def monthly_run_date(month_day: dt.date, lag_days: int) -> dt.date:
    """The day the monthly product of ``month_day``'s month runs: day ``1 + lag`` of the next month."""
    first_next = (month_day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return first_next + dt.timedelta(days=lag_days)


@dataclass
class BackfillPlan:
    """What one backfill asks Airflow for."""

    kind: str
    region: str
    start: dt.date
    end: dt.date
    reprocess: str = "none"
    max_active_runs: int = 2
    lag_days: int = 10
    selected: tuple[dt.date, ...] | None = None  # nrt only: these days of D1..D2 instead of all

    def __post_init__(self) -> None:
        if self.kind not in DAG_PREFIX:
            raise ValidationError(f"--dag: expected one of {', '.join(DAG_PREFIX)}, found {self.kind!r}")
        if self.end < self.start:
            raise ValidationError(f"--end: expected a day on or after --start {self.start}, found {self.end}")

    @property
    def dag_id(self) -> str:
        return dag_id_of(self.kind, self.region)

    @property
    def days(self) -> list[dt.date]:
        if self.selected is not None:
            return sorted(self.selected)
        return [self.start + dt.timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def logical_range(self) -> tuple[str, str]:
        """``from_date``/``to_date`` of the backfill: the days themselves, or the monthly runs' dates."""
        if self.kind == "monthly":
            first, last = monthly_run_date(self.start, self.lag_days), monthly_run_date(self.end, self.lag_days)
            return _midnight(first), f"{last.isoformat()}T23:59:59Z"
        return _midnight(self.start), _midnight(self.end)


@dataclass
class Started:
    """A started backfill: its id (None for the NRT's manual runs) and the runs it waits for."""

    plan: BackfillPlan
    backfill_id: int | None
    messages: list[str] = field(default_factory=list)


def ensure_runnable(api: AirflowAPI, dag_id: str, *, unpause: bool) -> list[str]:
    """Refuse a stale DAG; unpause a paused one when asked, else refuse it. Returns what was done."""
    dag = api.dag(dag_id)
    if dag.get("is_stale"):
        raise ConfigError(
            f"expected {dag_id} active at {api.url}, found it deactivated (stale): its region file is not in that deployment's BANET_REGIONS_DIR",
            hint="add the region file there (and `banet-ops regions add` it), then retry",
        )
    if not dag.get("is_paused"):
        return []
    if not unpause:
        raise ConfigError(
            f"expected {dag_id} unpaused, found it paused: the scheduler would leave the backfill's runs queued",
            hint="pass --unpause, or unpause it in the UI",
        )
    api.set_paused(dag_id, False)
    return [f"unpaused {dag_id} (it was paused); pause it again in the UI if it should not run on schedule"]


def start_backfill(api: AirflowAPI, plan: BackfillPlan, *, unpause: bool = False, cancel_running: bool = False, note: str | None = None) -> Started:
    """Create the backfill (or the NRT's manual runs); one-line errors for Airflow's refusals."""
    messages = ensure_runnable(api, plan.dag_id, unpause=unpause)
    if plan.kind == "nrt":
        for day in plan.days:
            api.trigger(plan.dag_id, _midnight(day), {"day": day.isoformat()}, note=note or f"banet-ops backfill {plan.start}..{plan.end}")
        messages.append(f"triggered {len(plan.days)} manual run(s) of {plan.dag_id} (one per day; NRT runs on cube updates and has no backfill)")
        return Started(plan, None, messages)
    for running in api.active_backfills(plan.dag_id):
        if not cancel_running:
            raise ConfigError(
                f"expected no other backfill of {plan.dag_id} running, found backfill {running['id']} ({running['from_date'][:10]}..{running['to_date'][:10]})",
                hint="wait for it, cancel it in the UI (Backfills), or pass --cancel-running",
            )
        api.cancel_backfill(int(running["id"]))
        messages.append(f"cancelled backfill {running['id']} of {plan.dag_id} ({running['from_date'][:10]}..{running['to_date'][:10]}), still running")
    first, last = plan.logical_range()
    try:
        created = api.backfill(plan.dag_id, first, last, reprocess_behavior=plan.reprocess, max_active_runs=plan.max_active_runs)
    except AirflowRefusedError as exc:
        raise ConfigError(f"expected Airflow to accept a backfill of {plan.dag_id} {plan.start}..{plan.end}, found {exc}") from None
    messages.append(f"backfill {created['id']} of {plan.dag_id}: {plan.start}..{plan.end} (reprocess: {plan.reprocess}, {plan.max_active_runs} at a time)")
    return Started(plan, int(created["id"]), messages)


def runs_in_range(api: AirflowAPI, plan: BackfillPlan) -> list[dict[str, Any]]:
    """The DAG's runs whose logical date falls in the plan's range (whatever created them)."""
    first, last = plan.logical_range()
    lo, hi = dt.datetime.fromisoformat(first), dt.datetime.fromisoformat(last)
    wanted = {d.isoformat() for d in plan.days} if plan.selected is not None else None
    out = []
    for run in api.dag_runs(plan.dag_id):
        if not run.get("logical_date"):
            continue
        when = dt.datetime.fromisoformat(run["logical_date"].replace("Z", "+00:00"))
        if lo <= when <= hi and (wanted is None or when.date().isoformat() in wanted):
            out.append(run)
    return out


def expected_runs(plan: BackfillPlan) -> int:
    if plan.kind == "monthly":
        months = {(d.year, d.month) for d in plan.days}
        return len(months)
    return len(plan.days)


def wait(
    api: AirflowAPI, started: Started, *, timeout_s: float, poll_s: float = 3.0, progress: Callable[[int, int], None] | None = None
) -> list[dict[str, Any]]:
    """Poll until every run of the range has finished; ``progress(done, total)`` after each poll."""
    total = expected_runs(started.plan)
    deadline = time.monotonic() + timeout_s
    while True:
        runs = runs_in_range(api, started.plan)
        done = sum(1 for r in runs if r["state"] in FINISHED)
        backfill_done = started.backfill_id is None or bool(api.get_backfill(started.backfill_id).get("completed_at"))
        shown = max(total, len(runs))
        if progress:  # full only once Airflow says the backfill is complete (runs from before it count as done)
            progress(done if backfill_done else min(done, shown - 1), shown)
        if backfill_done and len(runs) >= total and done == len(runs):
            return sorted(runs, key=lambda r: r["logical_date"])
        if time.monotonic() > deadline:
            states = ", ".join(f"{r['logical_date'][:10]} {r['state']}" for r in runs) or "no runs"
            raise PermanentError(f"expected {started.plan.dag_id} {started.plan.start}..{started.plan.end} finished within {timeout_s:.0f} s, found {states}")
        time.sleep(poll_s)


def failure_reason(api: AirflowAPI, dag_id: str, run: dict[str, Any]) -> str:
    """The one-line reason of a failed run: its failed task's note or ``banet-ops:`` log line."""
    run_id = run["dag_run_id"]
    for ti in api.task_instances(dag_id, run_id):
        if ti["state"] != "failed":
            continue
        if ti.get("note"):
            return str(ti["note"]).splitlines()[0]
        try:
            text = api.task_log(dag_id, run_id, ti["task_id"], int(ti.get("try_number") or 1), int(ti.get("map_index", -1)))
        except AirflowRefusedError:
            text = ""
        lines = [line for line in text.splitlines() if REASON_PREFIX in line]
        if lines:
            return lines[0][lines[0].index(REASON_PREFIX) :]
        return f"{dag_id}.{ti['task_id']} failed in run {run_id} (no reason line; see its log in the UI)"
    return f"{dag_id} run {run_id} failed (see the run in the UI)"


def check(api: AirflowAPI, plan: BackfillPlan, runs: list[dict[str, Any]]) -> None:
    """Raise with the first failed run's reason (and how many failed)."""
    failed = [r for r in runs if r["state"] == "failed"]
    if failed:
        reason = failure_reason(api, plan.dag_id, failed[0])
        more = f" ({len(failed)} of {len(runs)} runs failed)" if len(failed) > 1 else ""
        raise PermanentError(f"{failed[0]['logical_date'][:10]}: {reason}{more}")
