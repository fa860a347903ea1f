"""An ephemeral PostgreSQL 15 + PostGIS cluster in a folder, on a free 127.0.0.1 port.

``start()`` is idempotent: a cluster already running in the folder is reused and its URL
returned.  The URL is also written to ``<folder>/url`` so that other processes (the CLI, Airflow
tasks) find it through :meth:`banet_ops.settings.Settings.resolved_database_url`.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from banet_ops.errors import ConfigError, DatabaseUnavailableError

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin",)
DB_NAME = "banet"
SUPERUSER = "banet"


def pg_bin() -> Path:
    """Folder of the PostgreSQL 15 server binaries."""
    for cand in (os.environ.get("BANET_PG_BIN"), *PG_BIN_CANDIDATES):
        if cand and (Path(cand) / "initdb").is_file():
            return Path(cand)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise ConfigError("expected PostgreSQL 15 server binaries (initdb, pg_ctl), found none", hint="apt-get install postgresql-15 postgresql-15-postgis-3")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres_user() -> dict[str, object]:
    """initdb refuses to run as root: when root, run the server as the 'postgres' system user."""
    if os.geteuid() != 0:
        return {}
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ConfigError("running as root needs a 'postgres' system user for the local cluster", hint="apt-get install postgresql-15") from exc
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


@dataclass(frozen=True)
class LocalPostgres:
    """A cluster living in ``folder`` (data in ``folder/data``, socket and log beside it)."""

    folder: Path

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def url_file(self) -> Path:
        return self.folder / "url"

    @property
    def port_file(self) -> Path:
        return self.folder / "port"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(pg_bin() / args[0]), *args[1:]], check=check, capture_output=True, text=True, **_as_postgres_user())  # type: ignore[call-overload]

    def url(self) -> str:
        port = int(self.port_file.read_text())
        return f"postgresql+psycopg2://{SUPERUSER}@127.0.0.1:{port}/{DB_NAME}"

    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists() or not self.port_file.exists():
            return False
        return self._run("pg_ctl", "status", "-D", str(self.data_dir), check=False).returncode == 0

    def start(self, port: int | None = None) -> str:
        """Initialise (first time) and start the cluster; return its SQLAlchemy URL."""
        if self.is_running():
            return self.url()
        self.folder.mkdir(parents=True, exist_ok=True)
        owner = _as_postgres_user()
        if owner:
            os.chown(self.folder, owner["user"], owner["group"])  # type: ignore[arg-type]
        if not (self.data_dir / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C")
        port = port or free_port()
        opts = f"-p {port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        res = self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data_dir), "-l", str(self.folder / "server.log"), "-o", opts, check=False)
        if res.returncode != 0:
            log = (self.folder / "server.log").read_text()[-2000:] if (self.folder / "server.log").exists() else ""
            raise DatabaseUnavailableError(f"pg_ctl start failed for {self.data_dir}: {res.stderr.strip()} {log}")
        self.port_file.write_text(str(port))
        self._wait_ready(port)
        self._create_database(port)
        url = self.url()
        self.url_file.write_text(url + "\n")
        return url

    def _wait_ready(self, port: int, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                return
            time.sleep(0.2)
        raise DatabaseUnavailableError(f"expected PostgreSQL on 127.0.0.1:{port} within {timeout_s}s, found nothing listening")

    def _create_database(self, port: int) -> None:
        psql = [str(pg_bin() / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", SUPERUSER, "-d", "postgres", "-tAc"]
        exists = subprocess.run([*psql, f"SELECT 1 FROM pg_database WHERE datname='{DB_NAME}'"], capture_output=True, text=True, check=True)
        if exists.stdout.strip() != "1":
            subprocess.run([*psql, f"CREATE DATABASE {DB_NAME}"], capture_output=True, text=True, check=True)

    def stop(self) -> None:
        """Stop the cluster (a no-op when it is not running)."""
        if self.is_running():
            self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w")
        self.url_file.unlink(missing_ok=True)

    def destroy(self) -> None:
        """Stop and delete the cluster's folder."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
