"""First run anywhere: a fresh clone in a 0700 folder (as ``~`` is for root) starts its local stack.

The clone uses the suite's virtualenv (PYTHONPATH points at the clone) and ``BANET_HOME`` as
``make`` sets it (``<clone>/.banet``); the steps are those of ``make stack``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def clone_in_private_folder() -> Iterator[Path]:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    parent = Path(tempfile.mkdtemp(prefix="banet-first-run-"))  # mode 0700, like /root
    assert parent.stat().st_mode & 0o777 == 0o700
    clone = parent / "banet-ops"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{REPO}", str(clone)], check=True, capture_output=True)
    yield clone
    shutil.rmtree(parent, ignore_errors=True)


def _cli(clone: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANET_")}
    env.update(PYTHONPATH=str(clone), BANET_HOME=str(clone / ".banet"))
    return subprocess.run([sys.executable, "-m", "banet_ops.cli", *args], cwd=clone, env=env, capture_output=True, text=True, timeout=300)


def test_local_stack_starts_from_a_clone_in_a_0700_folder(clone_in_private_folder: Path) -> None:
    clone = clone_in_private_folder
    started = _cli(clone, "stack", "start")
    try:
        assert started.returncode == 0, started.stderr
        assert "Traceback" not in started.stderr
        migrated = _cli(clone, "db", "upgrade")
        assert migrated.returncode == 0, migrated.stderr
        status = _cli(clone, "stack", "status")
        assert status.returncode == 0 and status.stdout.startswith("running postgresql"), status.stdout + status.stderr
    finally:
        from banet_ops.localstack.postgres import LocalPostgres

        server = LocalPostgres(clone / ".banet" / "pg").server_dir
        stopped = _cli(clone, "stack", "stop")
        LocalPostgres(clone / ".banet" / "pg").destroy()
    assert stopped.returncode == 0, stopped.stderr
    assert not server.exists()
