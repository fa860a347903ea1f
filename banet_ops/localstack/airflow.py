"""A local Airflow 3 deployment (api-server, scheduler, dag-processor) in a folder.

Used by ``make airflow`` (the UI on 127.0.0.1:8080 over the demo's runs), by the demo, and by
the backfill tests.  Metadata lives in SQLite under ``home`` and tasks run with the
LocalExecutor; authentication is the simple auth manager with every user an admin, which is
only acceptable because everything listens on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from banet_ops.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]


def airflow_env(home: Path, *, port: int = 8080, dags_folder: Path | None = None) -> dict[str, str]:
    """Environment for every Airflow process of a local deployment living in ``home``."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder or REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
    }


def _airflow_bin() -> str:
    beside = Path(sys.executable).with_name("airflow")
    if not beside.exists():
        raise ConfigError(f"expected the airflow command beside {sys.executable}, found none", hint="run `make install`")
    return str(beside)


def migrate(home: Path, env: dict[str, str]) -> None:
    """Create or upgrade the metadata database (idempotent)."""
    home.mkdir(parents=True, exist_ok=True)
    subprocess.run([_airflow_bin(), "db", "migrate"], env={**os.environ, **env}, check=True, capture_output=True, text=True)


@dataclass
class LocalAirflow:
    """Handle on a running local deployment: REST helpers over its api-server."""

    home: Path
    port: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(self) -> str:
        with urllib.request.urlopen(f"{self.url}/auth/token", timeout=30) as resp:  # noqa: S310 - loopback
            return str(json.load(resp)["access_token"])

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method)  # noqa: S310 - loopback
        req.add_header("Authorization", f"Bearer {self.token()}")
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - loopback
            raw = resp.read()
        return json.loads(raw) if raw else None

    def wait_for_dag(self, dag_id: str, timeout_s: float = 240) -> None:
        """Block until the dag-processor has parsed ``dag_id`` and the API serves it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(urllib.error.URLError, OSError, ValueError):
                self.request("GET", f"/api/v2/dags/{dag_id}")
                return
            time.sleep(2)
        raise TimeoutError(f"expected DAG {dag_id} served by {self.url} within {timeout_s}s, found nothing")

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=1000")["dag_runs"])

    def stop(self) -> None:
        for proc in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)


def start(
    home: Path, *, port: int = 8080, extra_env: dict[str, str] | None = None, components: tuple[str, ...] = ("api-server", "scheduler", "dag-processor")
) -> LocalAirflow:
    """Migrate and start the components in the background; logs go to ``home/<component>.log``."""
    env = {**os.environ, **airflow_env(home, port=port), **(extra_env or {})}
    migrate(home, env)
    deployment = LocalAirflow(home=home, port=port)
    for component in components:
        args = [_airflow_bin(), component] + (["--port", str(port)] if component == "api-server" else [])
        log = (home / f"{component}.log").open("ab")
        deployment.processes.append(subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(urllib.error.URLError, OSError):
            deployment.token()
            return deployment
        if any(p.poll() is not None for p in deployment.processes):
            deployment.stop()
            raise ConfigError(f"an Airflow component exited at start; see the logs in {home}")
        time.sleep(1)
    deployment.stop()
    raise ConfigError(f"expected the Airflow api-server on 127.0.0.1:{port} within 120 s; see {home}/api-server.log")


@contextlib.contextmanager
def running(home: Path, **kwargs: Any) -> Iterator[LocalAirflow]:
    """Run a local deployment for the duration of the block."""
    deployment = start(home, **kwargs)
    try:
        yield deployment
    finally:
        deployment.stop()
