"""The foundation's CLI: --version, stack, db upgrade, regions add/list (against real PostGIS)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from banet_ops import __version__
from banet_ops.cli import main
from banet_ops.db.engine import safe_url
from banet_ops.db.migrate import migration_ids
from banet_ops.settings import get_settings

from .conftest import REGION_FIXTURES

FIXTURE_FILES = sorted(str(p) for p in REGION_FIXTURES.glob("R_*.json"))


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    get_settings.cache_clear()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def database(banet_home: Path, make_database: Callable[[], str], monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty database of its own, set as BANET_DATABASE_URL."""
    url = make_database()
    monkeypatch.setenv("BANET_DATABASE_URL", url)
    get_settings.cache_clear()
    return url


def count_regions(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM banet.region")).scalar_one()
    engine.dispose()
    return int(n)


def test_console_script_version() -> None:
    exe = Path(sys.executable).with_name("banet-ops")
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == f"banet-ops {__version__}"


def test_db_upgrade_regions_add_and_list(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "regions", "list")
    assert code == 1
    assert err.count("\n") == 1 and "banet-ops db upgrade" in err

    code, out, _ = cli(capsys, "db", "upgrade")
    assert code == 0
    assert "applied 0001_base_schema" in out and out.strip().endswith(f"schema at {migration_ids()[-1]}")
    code, out, _ = cli(capsys, "db", "upgrade")
    assert (code, out.strip().endswith(f"up to date ({migration_ids()[-1]})")) == (0, True)
    assert cli(capsys, "db", "status")[0] == 0

    code, out, _ = cli(capsys, "regions", "add", *FIXTURE_FILES)
    assert code == 0, out
    assert "7 region(s): 7 inserted, 0 updated, 0 unchanged" in out
    code, out, _ = cli(capsys, "regions", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["name", "bbox"]
    table = {line.split()[0]: line for line in lines[1:-1]}
    assert sorted(table) == ["AK", "AU", "BR", "CA", "MZ", "PI", "PT"]
    assert "800x1500" in table["PI"] and "1,200,000" in table["PI"] and "[-10, 36, 5, 44]" in table["PI"]
    assert "1600x4000" in table["AK"] and "800x400" in table["PT"]
    assert lines[-1] == "7 region(s) (database)"
    code, out, _ = cli(capsys, "regions", "add", FIXTURE_FILES[0])
    assert "0 inserted, 0 updated, 1 unchanged" in out


def test_regions_list_says_how_to_fix_a_region_in_only_one_place(
    database: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli(capsys, "db", "upgrade")[0] == 0
    assert cli(capsys, "regions", "add", FIXTURE_FILES[0])[0] == 0  # in the database only
    folder = tmp_path / "regions"
    folder.mkdir()
    (folder / "R_NEW.json").write_text(json.dumps({"name": "NEW", "bbox": [-8.0, 40.0, -7.9, 40.1], "pixel_size": 0.01}))
    monkeypatch.setenv("BANET_REGIONS_DIR", str(folder))
    code, out, _ = cli(capsys, "regions", "list")
    name = Path(FIXTURE_FILES[0]).stem.removeprefix("R_")
    assert code == 0
    assert f"note: {name} is in the database but has no file in BANET_REGIONS_DIR {folder}" in out
    assert f"note: NEW has a file in BANET_REGIONS_DIR but is not in the database: run `banet-ops regions add {folder / 'R_NEW.json'}`" in out
    code, _, err = cli(capsys, "infer", "--region", name, "--date", "2024-07-01")
    assert code == 1 and err.count("\n") == 1 and f"put R_{name}.json there" in err


def test_regions_add_validates_every_file_first(database: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli(capsys, "db", "upgrade")[0] == 0
    bad = tmp_path / "R_BAD.json"
    bad.write_text(json.dumps({"name": "BAD", "bbox": [10, 36, -6, 44], "pixel_size": 0.01}))
    code, out, err = cli(capsys, "regions", "add", FIXTURE_FILES[0], str(bad), FIXTURE_FILES[1])
    assert code == 1
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"banet-ops: error: {bad}: field 'bbox': expected left < right, found left=10.0, right=-6.0")
    assert count_regions(database) == 0  # nothing written, not even the valid files
    code, _, err = cli(capsys, "regions", "add", FIXTURE_FILES[0], FIXTURE_FILES[0])
    assert code == 1 and "expected each region once" in err
    code, _, err = cli(capsys, "regions", "add", str(tmp_path / "R_NONE.json"))
    assert code == 1 and "found nothing at that path" in err


def test_verbose_shows_the_traceback(database: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = cli(capsys, "--verbose", "regions", "add", str(tmp_path / "R_NONE.json"))
    assert code == 1
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("banet-ops: error:")


def test_regions_list_files(banet_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANET_REGIONS_DIR", str(REGION_FIXTURES))
    code, out, _ = cli(capsys, "regions", "list", "--files")
    assert code == 0
    assert out.splitlines()[-1] == f"7 region(s) ({REGION_FIXTURES})"


@pytest.fixture
def stack_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A BANET_HOME the `postgres` user can reach when the tests run as root."""
    for key in ("BANET_DATABASE_URL", "BANET_HOME"):
        monkeypatch.delenv(key, raising=False)
    home = Path(tempfile.mkdtemp(prefix="banet-test-home-"))
    home.chmod(0o755)
    monkeypatch.setenv("BANET_HOME", str(home))
    get_settings.cache_clear()
    yield home
    from banet_ops.localstack.postgres import LocalPostgres

    LocalPostgres(home / "pg").destroy()
    shutil.rmtree(home, ignore_errors=True)
    get_settings.cache_clear()


@pytest.mark.skipif(os.geteuid() != 0, reason="the server switches to the postgres user only when run as root")
def test_stack_starts_in_a_home_postgres_cannot_reach(stack_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 0700 BANET_HOME (a clone under /root, any mkdtemp): the server's files live in a folder
    the `postgres` user owns, keyed by the home; url/port stay in the home; stop and destroy clean up."""
    from banet_ops.localstack.postgres import LocalPostgres

    stack_home.chmod(0o700)
    code, out, err = cli(capsys, "stack", "start")
    assert code == 0, err
    url = out.strip().splitlines()[-1]
    assert url.startswith("postgresql+psycopg://banet:***@127.0.0.1:")
    assert safe_url((stack_home / "pg" / "url").read_text().strip()) == url
    pg = LocalPostgres(stack_home / "pg")
    assert pg.server_dir != (stack_home / "pg").resolve()
    assert pg.server_dir.stat().st_uid == pwd.getpwnam("postgres").pw_uid
    assert (stack_home / "pg" / "server").resolve() == pg.server_dir
    assert cli(capsys, "stack", "status")[0] == 0
    assert cli(capsys, "stack", "stop")[0] == 0
    server = pg.server_dir
    pg.destroy()
    assert not server.exists()


def test_stack_start_status_stop_and_the_demo_steps(stack_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "stack", "status")[0] == 3
    code, out, _ = cli(capsys, "stack", "start")
    url = out.strip()
    assert code == 0 and url.startswith("postgresql+psycopg://banet:***@127.0.0.1:")
    full = (stack_home / "pg" / "url").read_text().strip()
    password = (stack_home / "pg" / "password").read_text().strip()
    assert safe_url(full) == url and f"banet:{password}@" in full and len(password) >= 24
    for name in ("url", "password"):  # the secret is readable by its owner only
        assert stat.S_IMODE((stack_home / "pg" / name).stat().st_mode) == 0o600, name
    assert cli(capsys, "stack", "start")[1].strip() == url  # idempotent
    code, out, _ = cli(capsys, "stack", "status")
    assert code == 0 and out.startswith(f"running {url}")
    # the fallback body of `make demo`: migrate, load the shared regions, list them
    assert cli(capsys, "db", "upgrade")[0] == 0
    assert cli(capsys, "regions", "add", *FIXTURE_FILES)[0] == 0
    code, out, _ = cli(capsys, "regions", "list")
    assert code == 0 and out.splitlines()[-1] == "7 region(s) (database)"
    code, out, _ = cli(capsys, "stack", "stop")
    assert code == 0 and out.startswith("stopped")
    assert cli(capsys, "stack", "status")[0] == 3
    assert not (stack_home / "pg" / "url").exists()
    code, _, err = cli(capsys, "db", "upgrade")
    assert code == 1 and "banet-ops stack start" in err


def test_every_option_has_help_and_the_tile_rule_matches_the_readme() -> None:
    import argparse
    import re

    from banet_ops.cli import build_parser

    missing: list[str] = []
    helps: dict[str, str] = {}

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, f"{path} {name}")
            elif action.dest != "help":
                key = f"{path} {'/'.join(action.option_strings) or action.dest}"
                helps[key] = action.help or ""
                if not action.help:
                    missing.append(key)

    walk(build_parser(), "banet-ops")
    assert missing == []
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    [tile_row] = re.findall(r"^\| `BANET_TILE_SIZE` \|.*$", readme, flags=re.MULTILINE)
    assert "multiple of 32" in tile_row and "multiple of 32" in helps["banet-ops infer --tile"]
    for option in ("--region", "--start", "--end", "--dag", "--wait"):
        assert f"{option}" in readme and helps[f"banet-ops backfill {option}"]
