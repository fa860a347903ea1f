"""Manual, backfill and scheduled runs of banet_ingest agree on which UTC day a run covers.

The rule (``dag_support.interval_day``): the UTC day of the run's logical date.  Each kind of run
is built here from the DAG's own timetable, as the scheduler builds it, and handed to the task
code as its context would be.  Before this rule a manual run for 2024-08-18 ingested 08-17 (its
inferred data interval), so a backfill that cleared such runs re-processed the wrong days.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pendulum
import pytest

from banet_ops.orchestration.dag_support import interval_day

REPO = Path(__file__).resolve().parents[2]
D1, D2 = dt.date(2024, 8, 18), dt.date(2024, 8, 19)


@pytest.fixture(scope="module")
def timetable():
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.encoders import coerce_to_core_timetable

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["banet_ingest_PT"]
    return coerce_to_core_timetable(dag.timetable)


def _context(logical_date, interval) -> dict:
    return {"logical_date": logical_date, "data_interval_start": interval.start, "data_interval_end": interval.end}


def test_backfill_runs_cover_the_days_asked_for(timetable) -> None:
    from airflow.timetables.base import TimeRestriction

    restriction = TimeRestriction(earliest=pendulum.datetime(2024, 1, 1, tz="UTC"), latest=None, catchup=True)
    start = pendulum.datetime(D1.year, D1.month, D1.day, tz="UTC")
    infos = []
    last = None
    while True:  # the scheduler's walk from D1, as a backfill of D1..D2 (logical dates) does
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        last = info.data_interval
        if info.logical_date < start:
            continue
        if info.logical_date.date() > D2:
            break
        infos.append(info)
    assert [interval_day(_context(i.logical_date, i.data_interval)) for i in infos] == [D1.isoformat(), D2.isoformat()]


def test_a_scheduled_run_covers_its_data_interval(timetable) -> None:
    from airflow.timetables.base import DataInterval, TimeRestriction

    restriction = TimeRestriction(earliest=pendulum.datetime(2024, 1, 1, tz="UTC"), latest=None, catchup=True)
    previous = DataInterval(pendulum.datetime(2024, 8, 17, tz="UTC"), pendulum.datetime(2024, 8, 18, tz="UTC"))
    info = timetable.next_dagrun_info(last_automated_data_interval=previous, restriction=restriction)
    assert info.data_interval.start.date() == D1 and info.run_after.date() == D2  # runs after its day ended
    assert interval_day(_context(info.logical_date, info.data_interval)) == D1.isoformat()


def test_a_manual_run_covers_the_day_of_its_logical_date_not_the_day_before(timetable) -> None:
    logical = pendulum.datetime(D1.year, D1.month, D1.day, tz="UTC")
    interval = timetable.infer_manual_data_interval(run_after=logical)
    assert interval.start.date() == D1 - dt.timedelta(days=1)  # what Airflow infers ...
    assert interval_day(_context(logical, interval)) == D1.isoformat()  # ... and what the run ingests


def test_a_manual_run_without_a_logical_date_covers_the_last_whole_day(timetable) -> None:
    now = pendulum.datetime(2024, 8, 20, 9, 30, tz="UTC")
    interval = timetable.infer_manual_data_interval(run_after=now)
    assert interval_day(_context(None, interval)) == "2024-08-19"


def test_a_logical_date_in_another_timezone_counts_in_utc() -> None:
    from airflow.timetables.base import DataInterval

    local = pendulum.datetime(2024, 8, 19, 1, 0, tz="Europe/Lisbon")  # 2024-08-19T00:00Z
    assert interval_day(_context(local, DataInterval(local, local))) == "2024-08-19"
    assert interval_day(_context(pendulum.datetime(2024, 8, 18, 23, 30, tz="America/Sao_Paulo"), DataInterval(local, local))) == "2024-08-19"
