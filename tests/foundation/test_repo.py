"""The repository's entry points stay true: README settings, docs, CI script, install script."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from banet_ops.db.migrate import migration_ids
from banet_ops.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def test_readme_documents_every_setting_and_the_two_commands() -> None:
    readme = (REPO / "README.md").read_text()
    documented = set(re.findall(r"^\| `(BANET_[A-Z0-9_]+)` \|", readme, flags=re.MULTILINE))
    assert documented == {f"BANET_{name.upper()}" for name in Settings.model_fields}
    assert "make demo" in readme and "make test" in readme


def test_architecture_lists_every_migration() -> None:
    text = (REPO / "docs" / "architecture.md").read_text()
    for migration_id in migration_ids():
        assert f"`{migration_id}`" in text


def test_ci_runs_make_test() -> None:
    script = REPO / ".ci" / "run"
    assert os.access(script, os.X_OK)
    commands = [line.strip() for line in script.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert "make test" in commands


def test_migrations_ship_inside_the_package() -> None:
    import banet_ops

    packaged = Path(banet_ops.__file__).parent / "sql" / "migrations"
    assert sorted(p.stem for p in packaged.glob("*.sql")) == migration_ids()


@pytest.mark.skipif(
    not Path("/usr/share/postgresql/15/extension/postgis.control").is_file() or not shutil.which("chromium") or not shutil.which("chromedriver"),
    reason="install.sh would call apt-get",
)
def test_install_script_is_instant_when_stamped_and_clear_when_python_is_missing(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    fake_cli = venv / "bin" / "banet-ops"
    fake_cli.write_text("#!/bin/sh\n")
    fake_cli.chmod(0o755)
    digest = hashlib.sha256((REPO / "requirements.lock").read_bytes() + (REPO / "pyproject.toml").read_bytes()).hexdigest()
    stamp = venv / ".banet-install-stamp"
    stamp.write_text(digest + "\n")
    env = {**os.environ, "VENV": str(venv), "PYTHON": "/nonexistent/python3.11"}
    done = subprocess.run([str(REPO / "scripts" / "install.sh")], env=env, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    stamp.write_text("outdated\n")  # lock changed: must reinstall, and says why it cannot
    redo = subprocess.run([str(REPO / "scripts" / "install.sh")], env=env, capture_output=True, text=True, timeout=60)
    assert redo.returncode == 1
    assert "expected /nonexistent/python3.11 on PATH, found none" in redo.stderr
    assert not (venv / "bin" / "python").exists()
