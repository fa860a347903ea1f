"""One ingest path: `banet-ops ingest` and the ingest DAG's task functions give the same cube and rows.

Two days of a synthetic region, one with a corrupt geolocation file, are ingested twice into
fresh cubes: once by the command line, once task by task as the DAG runs them (every
intermediate result through JSON, as XCom carries it).  The cube values, the days' status,
valid fraction and granules, and the ``banet.cube_day`` and ``banet.granule`` rows must be the
same (only the snapshot ids and commit times differ); a re-run of the DAG path writes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from banet_ops.bands import CUBE_VARIABLES
from banet_ops.regions import load_region
from banet_ops.settings import get_settings
from banet_ops.synthetic import Scenario, write_scenario

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
START = dt.date(2024, 7, 1)
DAYS = (START, START + dt.timedelta(days=1))
NAME = "OnePath"


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scenario, Path]:
    """The scenario, and a copy of its mirror whose first day has one corrupt geolocation file."""
    box = load_region(FIX / "R_PI.json").subregion(NAME, 300, 600, 48, 48)
    root = tmp_path_factory.mktemp("one-path")
    scenario = write_scenario(root / "scenario", box, START, 2, seed=5, formats=("l1b", "firms"))
    shutil.copytree(scenario.root / "archive", root / "archive")
    doy = f"{DAYS[0].timetuple().tm_yday:03d}"
    geo = sorted((root / "archive").glob(f"*/V*03MOD/*/{doy}/*.nc"))[0]
    geo.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)  # an HDF5 signature and nothing else
    return scenario, geo


def _use(scenario: Scenario, archive: Path, home: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**scenario.env(), "BANET_ARCHIVE_URL": archive.as_uri(), "BANET_CMR_URL": "", "BANET_HOME": str(home),
           "BANET_CUBE_ROOT": str(home / "cube"), "BANET_DATABASE_URL": db_url}  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()


def _state(scenario: Scenario, db_url: str) -> dict[str, Any]:
    """The cube's content and records, and the database rows of the region's days and files."""
    from banet_ops import cube

    window = cube.read_window(NAME, DAYS[0], DAYS[1], variables=CUBE_VARIABLES)
    records = {r.day: r for r in cube.day_records(NAME)}
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            days = conn.execute(
                sa.text("SELECT day, snapshot_id, granules, valid_fraction, status FROM banet.cube_day WHERE region = :r ORDER BY day"), {"r": NAME}
            ).all()
            files = conn.execute(
                sa.text(
                    "SELECT file_name, product, day, size_bytes, checksum, source_url, status, message FROM banet.granule "
                    "WHERE day = ANY(:days) AND file_name = ANY(:names) ORDER BY file_name"
                ),
                {"days": list(DAYS), "names": _file_names(scenario)},
            ).all()
    finally:
        engine.dispose()
    assert [(r.day, r.snapshot_id) for r in days] == [(d, records[d].snapshot_id) for d in DAYS]  # the rows name the cube's commits
    return {
        "data": np.nan_to_num(window.data, nan=-999.0).tobytes(),
        "records": [(r.day, r.status, r.valid_fraction, r.granules) for r in records.values()],
        "cube_day": [(r.day, sorted(r.granules), r.valid_fraction, r.status) for r in days],
        "granule": [tuple(r) for r in files],
    }


def _file_names(scenario: Scenario) -> list[str]:
    names = [p.name for p in (scenario.root / "archive").rglob("*.nc")]
    return names + [p.name for p in (scenario.root / "firms").rglob("*") if p.is_file()]


def _forget(db_url: str, scenario: Scenario) -> None:
    """Remove this test's rows (granule rows are keyed by file name alone)."""
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM banet.cube_day WHERE region = :r"), {"r": NAME})
            conn.execute(sa.text("DELETE FROM banet.granule WHERE file_name = ANY(:names)"), {"names": _file_names(scenario)})
    finally:
        engine.dispose()


def _xcom(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _dag_tasks(day: dt.date) -> dict[str, Any]:
    """The ingest DAG's tasks for one day, in its order, with JSON between them."""
    from banet_ops.orchestration import tasks

    found = _xcom(tasks.discover(NAME, day.isoformat()))
    viirs, firms = _xcom(tasks.fetch_viirs(found)), _xcom(tasks.fetch_firms(found))
    staged = _xcom(tasks.grid_composite(NAME, found, viirs, firms))
    return _xcom(tasks.commit(NAME, staged))


def test_the_cli_and_the_dag_tasks_give_the_same_cube_and_rows(
    scenario: tuple[Scenario, Path], tmp_path: Path, banet_home: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from banet_ops.cli import main

    scen, corrupt = scenario
    archive = next(p for p in corrupt.parents if p.name == "archive")
    _forget(db_url, scen)
    _use(scen, archive, tmp_path / "cli", db_url, monkeypatch)
    assert main(["ingest", "--region", NAME, "--date", str(DAYS[0]), "--end", str(DAYS[1])]) == 0, capsys.readouterr()
    by_cli = _state(scen, db_url)

    _forget(db_url, scen)
    _use(scen, archive, tmp_path / "dag", db_url, monkeypatch)
    results = [_dag_tasks(day) for day in DAYS]
    assert [r["changed"] for r in results] == [True, True]
    by_dag = _state(scen, db_url)

    assert by_dag == by_cli
    statuses = [status for _day, status, _vf, _g in by_cli["records"]]
    assert statuses[0] == "partial" and [r["status"] for r in results] == statuses  # the corrupt file made day 1 partial
    rejected = {name: status for name, _p, _d, _s, _c, _u, status, _m in by_cli["granule"] if status == "rejected"}
    assert corrupt.name in rejected and len(rejected) == 2  # the granule cannot be read: its L1B file goes with it
    assert not list((tmp_path / "dag" / "staging").rglob("*.npz"))  # commit removes the staging file

    again = _dag_tasks(DAYS[0])  # a re-run: the cube already holds this version of the day
    assert again["changed"] is False and again["snapshot"] == results[0]["snapshot"]
    assert _state(scen, db_url) == by_dag
