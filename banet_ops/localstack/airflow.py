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
import socket
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


def airflow_env(home: Path, *, port: int = 8080, dags_folder: Path | None = None, metadata_db: str | None = None) -> dict[str, str]:
    """Environment for every Airflow process of a local deployment living in ``home``.

    The metadata database is SQLite in ``home`` unless ``metadata_db`` (a SQLAlchemy URL, e.g. a
    PostgreSQL database) is given; SQLite lets the API and the scheduler race on busy moments.
    """
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder or REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db or f"sqlite:///{home}/airflow.db",
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

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, *, attempts: int = 6) -> Any:
        """One REST call; a 503 (SQLite metadata DB locked by the scheduler; nothing was written) is retried."""
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(attempts):
            req = urllib.request.Request(f"{self.url}{path}", data=data, method=method)  # noqa: S310 - loopback
            req.add_header("Authorization", f"Bearer {self.token()}")
            req.add_header("Content-Type", "application/json")
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - loopback
                    raw = resp.read()
            except urllib.error.HTTPError as exc:
                if exc.code != 503 or attempt == attempts - 1:
                    raise
                time.sleep(1.0 + attempt)
                continue
            return json.loads(raw) if raw else None
        return None

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

    def ensure_pool(self, name: str, slots: int, description: str) -> None:
        """Create the pool ``name`` unless it exists (its slots are then left as the operator set them)."""
        try:
            self.request("GET", f"/api/v2/pools/{name}")
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
            self.request("POST", "/api/v2/pools", {"name": name, "slots": slots, "description": description})

    def backfill(self, dag_id: str, from_date: str, to_date: str, *, reprocess_behavior: str = "none", max_active_runs: int = 2) -> dict[str, Any]:
        """Start a backfill over ``from_date``..``to_date`` (ISO dates or datetimes); returns the backfill."""
        body = {"dag_id": dag_id, "from_date": from_date, "to_date": to_date, "reprocess_behavior": reprocess_behavior, "max_active_runs": max_active_runs}
        return dict(self.request("POST", "/api/v2/backfills", body))

    def wait_backfill(self, backfill_id: int, timeout_s: float = 300) -> dict[str, Any]:
        """Block until the scheduler marks the backfill completed; returns it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = dict(self.request("GET", f"/api/v2/backfills/{backfill_id}"))
            if found.get("completed_at"):
                return found
            time.sleep(2)
        raise TimeoutError(f"expected backfill {backfill_id} completed within {timeout_s}s, found it still running; see {self.home}/scheduler.log")

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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


GPU_POOL_SLOTS = 1  # one inference at a time on a workstation's GPU


def start(
    home: Path,
    *,
    port: int = 8080,
    extra_env: dict[str, str] | None = None,
    metadata_db: str | None = None,
    components: tuple[str, ...] = ("api-server", "scheduler", "dag-processor"),
) -> LocalAirflow:
    """Migrate and start the components in the background; logs go to ``home/<component>.log``.

    Also creates the ``gpu`` pool that the inference tasks run in.
    """
    env = {**os.environ, **airflow_env(home, port=port, metadata_db=metadata_db), **(extra_env or {})}
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
            deployment.ensure_pool("gpu", GPU_POOL_SLOTS, "BA-Net inference (one slot per GPU)")
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


def main(argv: list[str] | None = None) -> int:
    """``make airflow``: the local deployment on 127.0.0.1:8080 over ``$BANET_HOME/airflow``, until Ctrl-C."""
    import argparse

    from banet_ops.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m banet_ops.localstack.airflow", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--home", type=Path, default=None, help="AIRFLOW_HOME (default: $BANET_HOME/airflow)")
    args = parser.parse_args(argv)
    home = (args.home or get_settings().home / "airflow").resolve()
    print(f"starting Airflow in {home} (logs: {home}/<component>.log) ...", flush=True)
    try:
        deployment = start(home, port=args.port)
    except (ConfigError, subprocess.CalledProcessError) as exc:
        print(f"airflow: error: {exc}", file=sys.stderr)
        return 1
    print(f"Airflow UI: {deployment.url}  (all users are admins: local use only; Ctrl-C stops it)", flush=True)
    try:
        while all(p.poll() is None for p in deployment.processes):
            time.sleep(1)
        print(f"airflow: a component exited; see the logs in {home}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopping Airflow ...", flush=True)
        return 0
    finally:
        deployment.stop()


if __name__ == "__main__":
    sys.exit(main())
