"""Ingest under bad inputs and races: good data is never replaced by worse, cube and cube_day agree."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from banet_ops import cube
from banet_ops.cli import main
from banet_ops.cube.writer import write_day
from banet_ops.ingest.pipeline import BuildReport, ingest_day, record_day
from banet_ops.regions import Region, load_region
from banet_ops.settings import Settings
from banet_ops.synthetic import Scenario, write_scenario
from faults.scenarios import FIGURES, cube_day_row, cube_inconsistencies

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"
START = dt.date(2024, 7, 1)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    box = load_region(FIX / "R_PI.json").subregion("FXbox", 300, 600, 64, 64)
    return write_scenario(tmp_path_factory.mktemp("fx-scenario"), box, START, 2, seed=3, formats=("l1b", "firms"))


@pytest.fixture
def world(scenario: Scenario, tmp_path: Path, banet_home: Path, db_url: str) -> tuple[Scenario, Settings]:
    """A writable copy of the scenario's mirror, a fresh cube root, the test database."""
    shutil.copytree(scenario.root / "archive", tmp_path / "archive")
    shutil.copytree(scenario.root / "firms", tmp_path / "firms")
    settings = Settings(
        home=banet_home, archive_url=(tmp_path / "archive").as_uri(), firms_url=(tmp_path / "firms").as_uri(), cmr_url="",
        cube_root=str(tmp_path / "cube"), database_url=db_url, regions_dir=scenario.regions_dir,
    )
    return scenario, settings


def _granule_files(settings: Settings, day: dt.date) -> list[Path]:
    root = Path(settings.archive_url.removeprefix("file://"))
    return sorted(root.rglob(f"VNP02MOD.A{day:%Y%j}.*.nc"))


def test_a_corrupt_file_does_not_replace_a_good_day(world: tuple[Scenario, Settings], db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    scenario, settings = world
    region: Region = scenario.region
    first = ingest_day(region, START, settings=settings)
    assert not first.rejected
    row = cube_day_row(db_url, region.name, START)
    snapshot = cube.latest_snapshot(region.name, settings=settings)

    victim = _granule_files(settings, START)[0]
    victim.write_bytes(victim.read_bytes()[:2000])  # the mirror's copy went bad since
    FIGURES["bad_inputs"].add("a stored day's file truncated since")
    again = ingest_day(region, START, settings=settings)
    assert again.status == "kept" and again.rejected
    # read in place from the mirror: deleting it would fetch nothing again
    assert "re-sync the mirror" in caplog.text and "downloaded again" not in caplog.text
    assert cube.latest_snapshot(region.name, settings=settings) == snapshot  # nothing committed
    assert cube_day_row(db_url, region.name, START) == row
    assert cube_inconsistencies(db_url, region.name, settings) == []

    forced = ingest_day(region, START, settings=settings, force=True)  # the operator's call
    assert forced.status == "partial" and forced.snapshot != snapshot
    assert cube_day_row(db_url, region.name, START)[:2] == (forced.snapshot, "partial")
    assert cube_inconsistencies(db_url, region.name, settings) == []


@pytest.mark.parametrize(("date", "code", "message"), [
    ("2099-01-01", 1, "expected a day no later than today"),
    ("2020-02-02", 75, "the day is not yet available"),  # in the past, but nothing in the archive
])
def test_nothing_published_yet_commits_nothing(world: tuple[Scenario, Settings], monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str], date: str, code: int, message: str) -> None:
    scenario, settings = world
    for key, value in {**scenario.env(), "BANET_ARCHIVE_URL": settings.archive_url, "BANET_FIRMS_URL": settings.firms_url,
                       "BANET_CMR_URL": "", "BANET_CUBE_ROOT": settings.cube_root or ""}.items():
        monkeypatch.setenv(key, value)
    FIGURES["bad_inputs"].add(f"ingest --date {date}")
    assert main(["ingest", "--region", scenario.region.name, "--date", date]) == code
    assert message in capsys.readouterr().err
    assert not Path(str(settings.cube_root)).exists()


def test_same_day_writers_whose_records_land_out_of_order(world: tuple[Scenario, Settings], db_url: str) -> None:
    """Writer A commits, writer B commits the same day, B records, A's record lands late: cube_day says B."""
    scenario, settings = world
    region = scenario.region
    a, b = scenario.truth_image(START), scenario.truth_image(START)
    b.variables["FRP"][0, 0] += 7.0
    snap_a = write_day(a, settings=settings)
    snap_b = write_day(b, settings=settings)
    report = BuildReport(region=region.name, day=START)
    record_day(settings, region, START, report, snap_b, cube.day_status(cube.valid_fraction(b)), cube.valid_fraction(b))
    record_day(settings, region, START, report, snap_a, cube.day_status(cube.valid_fraction(a)), cube.valid_fraction(a))
    FIGURES["faults"].add("same-day writers, records out of order")
    assert cube_day_row(db_url, region.name, START)[0] == snap_b
    assert cube_inconsistencies(db_url, region.name, settings) == []


def test_unchanged_reingest_keeps_the_record(world: tuple[Scenario, Settings], db_url: str) -> None:
    scenario, settings = world
    region = scenario.region
    ingest_day(region, START, settings=settings)
    row = cube_day_row(db_url, region.name, START)
    ingest_day(region, START + dt.timedelta(days=1), settings=settings)  # moves the tip
    again = ingest_day(region, START, settings=settings)
    assert again.snapshot == row[0]
    assert cube_day_row(db_url, region.name, START) == row  # not rewritten to the tip
    assert cube_inconsistencies(db_url, region.name, settings) == []


def test_log_lines_go_around_the_progress_bar_and_each_day_is_told_once(world: tuple[Scenario, Settings], db_url: str) -> None:
    """`banet-ops ingest` of two days from a terminal: the bar is cleared before each log line
    (no line glued to a bar) and each day's summary line is printed once."""
    scenario, settings = world
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANET_")}
    env.update({**scenario.env(), "BANET_HOME": str(settings.home), "BANET_ARCHIVE_URL": settings.archive_url, "BANET_FIRMS_URL": settings.firms_url,
                "BANET_CMR_URL": "", "BANET_CUBE_ROOT": str(settings.cube_root), "BANET_DATABASE_URL": db_url})  # fmt: skip
    end = START + dt.timedelta(days=1)
    cmd = [sys.executable, "-m", "banet_ops.cli", "ingest", "--region", scenario.region.name, "--date", str(START), "--end", str(end)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    stamp = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} [A-Z]+ ")
    logged = [line for line in out.stderr.split("\n") if stamp.search(line.split("\r")[-1])]
    assert logged and all(stamp.match(line.split("\r")[-1]) and not line.split("\r")[-1].count("%|") for line in logged)
    bar_then_log = [line for line in out.stderr.split("\n") if re.search(r"\]\d{4}-\d{2}-\d{2} \d{2}:", line)]
    assert bar_then_log == [], bar_then_log[:2]
    for day in (START, end):  # the day's summary: once, on stdout (the INFO lines above it are its details)
        summary = re.compile(rf"{scenario.region.name} {day}: (complete|partial|empty|kept)")
        told = [ln for ln in (out.stdout + out.stderr).replace("\r", "\n").split("\n") if summary.match(ln)]
        assert len(told) == 1 and told[0] in out.stdout, told
