"""Fixtures of the ingestion tests: the real legacy files, the PI region, a small synthetic scenario."""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
from pathlib import Path

import pytest

from banet_ops.regions import Region, load_region
from banet_ops.synthetic import Scenario, write_scenario

HERE = Path(__file__).resolve().parent
FIX = HERE.parent / "fixtures" / "ingest"
LEGACY_DIR = FIX / "viirs750_legacy_PI_2017300"
FIRMS_GZ = FIX / "firms" / "J1_VIIRS_C2_Global_VJ114IMGTDL_NRT_2023313.txt.gz"
START = dt.date(2024, 7, 1)


@pytest.fixture(scope="session")
def pi_region() -> Region:
    return load_region(FIX / "R_PI.json")


@pytest.fixture(scope="session")
def box(pi_region: Region) -> Region:
    """A 96 x 96 box of the PI grid (central Spain)."""
    return pi_region.subregion("PIbox", 300, 600, 96, 96)


@pytest.fixture(scope="session")
def legacy_files() -> list[Path]:
    return sorted(LEGACY_DIR.glob("*.hdf"))


@pytest.fixture(scope="session")
def real_firms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real 47,906-row LANCE daily file (stored gzipped in the repository)."""
    out = tmp_path_factory.mktemp("firms") / FIRMS_GZ.name.removesuffix(".gz")
    with gzip.open(FIRMS_GZ, "rb") as src, out.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return out


@pytest.fixture(scope="session")
def scenario(tmp_path_factory: pytest.TempPathFactory, box: Region) -> Scenario:
    """Four days over the box: L1B + geolocation NetCDF pairs of two platforms and FIRMS files."""
    return write_scenario(tmp_path_factory.mktemp("scenario"), box, START, 4, seed=0, formats=("l1b", "firms"))


def copy_mirror(scenario: Scenario, dest: Path) -> tuple[str, str]:
    """A writable copy of a scenario's archive and FIRMS folder; returns their file:// URLs."""
    shutil.copytree(scenario.root / "archive", dest / "archive")
    shutil.copytree(scenario.root / "firms", dest / "firms")
    return (dest / "archive").as_uri(), (dest / "firms").as_uri()
