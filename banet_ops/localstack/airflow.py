"""A local Airflow 3 deployment (api-server, scheduler, dag-processor, triggerer) in a folder.

Used by ``make airflow`` (the UI on 127.0.0.1:8080 over the demo's runs), by the demo, and by
the backfill tests.  ``make airflow`` and the demo keep the metadata in the local PostGIS
cluster (database ``airflow``); tests may pass their own database, else SQLite under ``home``.
Tasks run with the LocalExecutor; authentication is the simple auth manager with every user an
admin, which is only acceptable because everything listens on 127.0.0.1.  ``home/deployment.json``
(written by the demo) holds extra ``AIRFLOW__*`` settings of that deployment.
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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from banet_ops.errors import ConfigError
from banet_ops.orchestration.airflow_api import AirflowAPI, AirflowRefusedError

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
DEPLOYMENT_FILE = "deployment.json"
METADATA_DB_NAME = "airflow"


def deployment_overrides(home: Path) -> dict[str, str]:
    """Extra ``AIRFLOW__*`` settings kept in ``home/deployment.json`` (empty when absent)."""
    path = home / DEPLOYMENT_FILE
    return {str(k): str(v) for k, v in json.loads(path.read_text()).items()} if path.is_file() else {}


def write_deployment_overrides(home: Path, values: dict[str, str]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / DEPLOYMENT_FILE).write_text(json.dumps(values, indent=1, sort_keys=True) + "\n")


def local_metadata_db(pg_url: str) -> str:
    """The ``airflow`` database of the local PostGIS cluster at ``pg_url`` (created when missing).

    Its URL names psycopg2, the driver of Airflow's own metadata database.
    """
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    from banet_ops.db.engine import sqlalchemy_url

    admin = sa.create_engine(sqlalchemy_url(pg_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": METADATA_DB_NAME}).first() is None:
                conn.execute(sa.text(f'CREATE DATABASE "{METADATA_DB_NAME}"'))
    finally:
        admin.dispose()
    return make_url(pg_url).set(drivername="postgresql+psycopg2", database=METADATA_DB_NAME).render_as_string(hide_password=False)


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
        "BANET_AIRFLOW_PRELOAD": "1",  # plugins/airflow_local_settings.py: task modules imported before the workers fork
    }


def _airflow_bin() -> str:
    beside = Path(sys.executable).with_name("airflow")
    if not beside.exists():
        raise ConfigError(f"expected the airflow command beside {sys.executable}, found none", hint="run `make install`")
    return str(beside)


def migrate(home: Path, env: dict[str, str]) -> None:
    """Create or upgrade the metadata database (idempotent)."""
    home.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([_airflow_bin(), "db", "migrate"], env={**os.environ, **env}, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"expected `airflow db migrate` to prepare the metadata database of {home}, found it failing: {last[0][:300]}")


@dataclass
class LocalAirflow:
    """Handle on a running local deployment: REST helpers over its api-server."""

    home: Path
    port: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> AirflowAPI:
        return AirflowAPI(url=self.url)

    def token(self) -> str:
        return self.api.bearer(renew=True)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None, *, attempts: int = 6) -> Any:
        """One REST call; a 503 (a busy metadata DB; nothing was written) is retried."""
        return self.api.request(method, path, body, attempts=attempts)

    def wait_for_dag(self, dag_id: str, timeout_s: float = 240) -> None:
        """Block until the dag-processor has parsed ``dag_id`` and the API serves it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(AirflowRefusedError, OSError, ValueError):
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
        except AirflowRefusedError as exc:
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

    def stop(self, timeout_s: float = 30) -> None:
        """Stop every component and whatever they started (task processes); the port is free after."""
        for proc in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for proc in self.processes:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for pid in processes_of(self.home):  # children that left the components' process groups
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _wait_port_free(self.port)


def processes_of(home: Path) -> list[int]:
    """Processes (other than this one) whose environment has ``AIRFLOW_HOME=home``."""
    needle = f"AIRFLOW_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


def _wait_port_free(port: int, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.2)


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


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
    components: tuple[str, ...] = COMPONENTS,
) -> LocalAirflow:
    """Migrate and start the components in the background; logs go to ``home/<component>.log``.

    ``home/deployment.json`` overrides the defaults, ``extra_env`` overrides both.  Also creates
    the ``gpu`` pool that the inference tasks run in.
    """
    env = {**os.environ, **airflow_env(home, port=port, metadata_db=metadata_db), **deployment_overrides(home), **(extra_env or {})}
    if _port_taken(port):
        raise ConfigError(
            f"expected 127.0.0.1:{port} free for the Airflow api-server, found it taken", hint="is `make airflow` already running? stop it, or pass --port"
        )
    migrate(home, env)
    deployment = LocalAirflow(home=home, port=port)
    for component in components:
        args = [_airflow_bin(), component] + (["--port", str(port)] if component == "api-server" else [])
        log = (home / f"{component}.log").open("ab")
        deployment.processes.append(subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(AirflowRefusedError, OSError):
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


class StopRequestedError(Exception):
    """Raised by the signal handler: SIGTERM or SIGHUP asks ``make airflow`` to stop."""


def _raise_stop(signum: int, _frame: Any) -> None:
    raise StopRequestedError(signal.Signals(signum).name)


def local_deployment_env(home: Path) -> tuple[dict[str, str], str]:
    """``BANET_*`` settings and metadata URL of the local deployment over ``home`` (the local stack is started)."""
    from banet_ops.localstack.postgres import LocalPostgres
    from banet_ops.settings import get_settings

    settings = get_settings()
    pg_url = LocalPostgres(settings.home / "pg").start()
    env = {"BANET_HOME": str(settings.home)}
    return env, local_metadata_db(pg_url)


def serve(deployment: LocalAirflow) -> int:
    """Wait until Ctrl-C, SIGTERM, SIGHUP, a component exiting or the parent (make) going away."""
    parent = os.getppid()
    while True:
        if any(p.poll() is not None for p in deployment.processes):
            print(f"airflow: a component exited; see the logs in {deployment.home}", file=sys.stderr)
            return 1
        if os.getppid() != parent:
            print("airflow: the parent process went away; stopping", file=sys.stderr)
            return 0
        time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    """``make airflow``: the local deployment on 127.0.0.1:8080 over ``$BANET_HOME/airflow``, until Ctrl-C or SIGTERM."""
    import argparse

    from banet_ops.errors import BanetError
    from banet_ops.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m banet_ops.localstack.airflow", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080, help="port of the api-server and UI on 127.0.0.1")
    parser.add_argument("--home", type=Path, default=None, help="AIRFLOW_HOME (default: $BANET_HOME/airflow)")
    args = parser.parse_args(argv)
    home = (args.home or get_settings().home / "airflow").resolve()
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_stop)
    deployment: LocalAirflow | None = None
    try:
        env, metadata_db = local_deployment_env(home)
        print(f"starting Airflow in {home} (logs: {home}/<component>.log) ...", flush=True)
        deployment = start(home, port=args.port, extra_env=env, metadata_db=metadata_db)
        print(f"Airflow UI: {deployment.url}  (all users are admins: local use only; Ctrl-C stops it)", flush=True)
        for key, value in sorted(deployment_overrides(home).items()):
            print(f"  {key}={value} (from {home / DEPLOYMENT_FILE})", flush=True)
        return serve(deployment)
    except (BanetError, OSError) as exc:
        print(f"airflow: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, StopRequestedError):
        return 0
    finally:
        if deployment is not None:
            print("stopping Airflow ...", flush=True)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            deployment.stop()
            print(f"stopped; 127.0.0.1:{deployment.port} is free", flush=True)


if __name__ == "__main__":
    sys.exit(main())
