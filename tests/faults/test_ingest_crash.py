"""SIGKILL at each point of an ingest (the ``banet-ops ingest`` command), then a re-run.

The re-run must give what an uninterrupted ingest gives (same cube values, same cube_day
status, valid fraction and granules), and the cube and ``banet.cube_day`` must agree.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from banet_ops import cube
from banet_ops.bands import CUBE_VARIABLES
from banet_ops.ingest.pipeline import ingest_day
from banet_ops.regions import load_region
from banet_ops.settings import Settings
from banet_ops.synthetic import Scenario, write_scenario
from faults.scenarios import FIGURES, cube_day_row, cube_inconsistencies, killed, run_child

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
START = dt.date(2024, 7, 1)
DAY2 = START + dt.timedelta(days=1)
POINTS = [
    "banet_ops.ingest.stages:image_from_files:after",  # read and composited, nothing written
    "banet_ops.cube.storage:CubeLocation.commit_lock:before:1",  # the day's chunks written, not committed
    "banet_ops.cube:commit_day:after",  # committed to the cube, not recorded in PostGIS
    "banet_ops.ingest.stages:record_day:after",  # all done, before the summary
]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    box = load_region(FIX / "R_PI.json").subregion("FXcrash", 300, 600, 64, 64)
    return write_scenario(tmp_path_factory.mktemp("fx-crash"), box, START, 2, seed=4, formats=("l1b", "firms"))


def _settings(scenario: Scenario, home: Path, cube_root: Path, db_url: str) -> Settings:
    return Settings(home=home, archive_url=scenario.archive_url, firms_url=scenario.firms_url, cmr_url="", cube_root=str(cube_root),
                    database_url=db_url, regions_dir=scenario.regions_dir)


def _state(scenario: Scenario, settings: Settings, db_url: str) -> dict[str, Any]:
    window = cube.read_window(scenario.region.name, START, DAY2, variables=CUBE_VARIABLES, settings=settings)
    rows = [cube_day_row(db_url, scenario.region.name, d) for d in (START, DAY2)]
    return {"data": np.nan_to_num(window.data, nan=-999.0).tobytes(), "rows": [r[1:4] if r else None for r in rows]}


@pytest.fixture(scope="module")
def reference(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory, db_url: str) -> dict[str, Any]:
    """Both days ingested without interruption, into a region of another name (same grid)."""
    home = tmp_path_factory.mktemp("fx-ref")
    settings = _settings(scenario, home, home / "cube", db_url)
    for day in (START, DAY2):
        ingest_day(scenario.region, day, settings=settings)
    return _state(scenario, settings, db_url)


@pytest.mark.parametrize("point", POINTS, ids=[p.split(":", 1)[1] for p in POINTS])
def test_sigkill_during_ingest(point: str, scenario: Scenario, tmp_path: Path, banet_home: Path, db_url: str, reference: dict[str, Any]) -> None:
    settings = _settings(scenario, banet_home, tmp_path / "cube", db_url)
    with _own_database_rows(db_url, scenario.region.name):
        ingest_day(scenario.region, START, settings=settings)
        env = {**scenario.env(), "BANET_HOME": str(banet_home), "BANET_CMR_URL": "", "BANET_CUBE_ROOT": str(tmp_path / "cube"), "BANET_DATABASE_URL": db_url}
        proc = run_child(["cli", "ingest", "--region", scenario.region.name, "--date", str(DAY2)], crash_at=point, env=env)
        assert killed(proc), proc.stderr[-2000:]
        FIGURES["crash_points"].add(point)
        ingest_day(scenario.region, DAY2, settings=settings)  # the re-run (the Airflow retry)
        problems = cube_inconsistencies(db_url, scenario.region.name, settings)
        if problems:
            FIGURES["inconsistent"].add(point)
        assert problems == []
        state = _state(scenario, settings, db_url)
        if state != reference:
            FIGURES["lost"].add(point)
        assert state == reference


class _own_database_rows:  # noqa: N801 - used as a context manager
    """Start and end with no cube_day rows of the region (the reference and each case share the name)."""

    def __init__(self, db_url: str, region: str) -> None:
        self.db_url, self.region = db_url, region

    def _clear(self) -> None:
        import sqlalchemy as sa

        from banet_ops.db.engine import get_engine

        with get_engine(self.db_url).begin() as conn:
            conn.execute(sa.text("DELETE FROM banet.cube_day WHERE region = :r"), {"r": self.region})

    def __enter__(self) -> None:
        self._clear()

    def __exit__(self, *exc: object) -> None:
        self._clear()


def test_concurrent_same_day_writers(scenario: Scenario, tmp_path: Path, banet_home: Path, db_url: str, reference: dict[str, Any]) -> None:
    """Two ``banet-ops ingest`` processes of the same day at once: one complete version, recorded as the cube holds it."""
    import subprocess
    import sys

    from faults.scenarios import CHILD, REPO

    settings = _settings(scenario, banet_home, tmp_path / "cube", db_url)
    with _own_database_rows(db_url, scenario.region.name):
        ingest_day(scenario.region, START, settings=settings)
        env = {**os.environ, **scenario.env(), "BANET_HOME": str(banet_home), "BANET_CMR_URL": "", "BANET_CUBE_ROOT": str(tmp_path / "cube"),
               "BANET_DATABASE_URL": db_url, "PYTHONPATH": str(REPO), "BANET_CRASH_AT": ""}
        args = [sys.executable, str(CHILD), "cli", "ingest", "--region", scenario.region.name, "--date", str(DAY2)]
        procs = [subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        errors = [p.communicate(timeout=180)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errors
        FIGURES["faults"].add("concurrent same-day writers")
        assert cube_inconsistencies(db_url, scenario.region.name, settings) == []
        assert _state(scenario, settings, db_url) == reference
