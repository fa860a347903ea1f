"""An ephemeral PostgreSQL 15 + PostGIS cluster in a folder, on a free 127.0.0.1 port.

``start()`` is idempotent: a cluster already running in the folder is reused and its URL
returned.  The URL is also written to ``<folder>/url`` so that other processes (the CLI, Airflow
tasks) find it through :meth:`banet_ops.settings.Settings.resolved_database_url`.

Authentication is real: every connection, TCP or Unix socket, needs a password
(``scram-sha-256`` in ``pg_hba.conf``, rewritten at every start).  The superuser's password is
generated on first start and kept in ``<folder>/password``; it and the URL file that embeds it
are mode 0600 and never printed or logged (print :func:`banet_ops.db.engine.safe_url`).  A
cluster made by an older version (``trust``) gets a password on its next start.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import secrets
import shutil
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from banet_ops.errors import ConfigError, DatabaseUnavailableError
from banet_ops.util import atomic_write

PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin",)
DB_NAME = "banet"
SUPERUSER = "banet"
PG_HBA = """\
# Written by banet-ops at every start (banet_ops/localstack/postgres.py): passwords for everyone.
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 scram-sha-256
host    all       all   127.0.0.1/32  scram-sha-256
host    all       all   ::1/128       scram-sha-256
"""


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


def _postgres_account() -> pwd.struct_passwd | None:
    """The `postgres` system account the server runs as when we are root; None when not root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError as exc:
        raise ConfigError("running as root needs a 'postgres' system user for the local cluster", hint="apt-get install postgresql-15") from exc


def _as_postgres_user() -> dict[str, object]:
    """initdb refuses to run as root: when root, run the server as the 'postgres' system user."""
    pw = _postgres_account()
    if pw is None:
        return {}
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def reachable_by(folder: Path, uid: int) -> bool:
    """Whether a process of ``uid`` (not root, in no shared group) can traverse to ``folder``."""
    for parent in [folder, *folder.parents]:
        if not parent.exists():
            continue
        st = parent.stat()
        if st.st_uid != uid and not st.st_mode & stat.S_IXOTH:
            return False
    return True


def server_dir_for(folder: Path) -> Path:
    """Where the server's own files (data, socket, log) live for a cluster kept in ``folder``.

    ``folder`` itself, unless we are root and the `postgres` account cannot reach its parent (a checkout
    under ``/root`` or a 0700 temp folder): then a folder owned by `postgres` in its home
    (``/var/lib/postgresql/banet-ops/<key>``), keyed by the resolved path of ``folder``.
    """
    link = folder / "server"
    if link.is_symlink():
        return link.readlink()
    pw = _postgres_account()
    folder = folder.resolve()
    if pw is None or reachable_by(folder.parent, pw.pw_uid):
        return folder  # the folder itself is handed to `postgres` by start()
    key = hashlib.sha256(str(folder).encode()).hexdigest()[:16]
    return Path(pw.pw_dir) / "banet-ops" / f"{folder.parent.name or 'root'}-{key}"


def _owned_by_postgres(path: Path) -> None:
    """Create ``path`` (and its missing parents) and give it to `postgres` when we are root."""
    path.mkdir(parents=True, exist_ok=True)
    pw = _postgres_account()
    if pw is not None:
        os.chown(path, pw.pw_uid, pw.pw_gid)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (mode 0600 from the start)."""
    atomic_write(path, text, mode=0o600)


def _one_line(exc: subprocess.CalledProcessError) -> str:
    return " ".join(str(exc.stderr or exc.stdout or "").split())[:400]


@dataclass(frozen=True)
class LocalPostgres:
    """A cluster kept in ``folder``: ``url`` and ``port`` files there, the server's files in
    :attr:`server_dir` (the same folder unless `postgres` cannot reach it, see :func:`server_dir_for`)."""

    folder: Path

    @property
    def server_dir(self) -> Path:
        return server_dir_for(self.folder)

    @property
    def data_dir(self) -> Path:
        return self.server_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.server_dir / "server.log"

    @property
    def url_file(self) -> Path:
        return self.folder / "url"

    @property
    def port_file(self) -> Path:
        return self.folder / "port"

    @property
    def password_file(self) -> Path:
        """The superuser's password (mode 0600), generated on first start."""
        return self.folder / "password"

    def password(self) -> str:
        return self.password_file.read_text().strip()

    def _env(self) -> dict[str, str]:
        """Environment of psql calls: the password travels in PGPASSWORD, never on a command line."""
        return {**os.environ, "PGPASSWORD": self.password()}

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(pg_bin() / args[0]), *args[1:]], check=check, capture_output=True, text=True, **_as_postgres_user())  # type: ignore[call-overload]

    def url(self) -> str:
        """The superuser's SQLAlchemy URL, password included (keep it out of logs: safe_url)."""
        port = int(self.port_file.read_text())
        return f"postgresql+psycopg://{SUPERUSER}:{quote(self.password(), safe='')}@127.0.0.1:{port}/{DB_NAME}"

    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists() or not self.port_file.exists():
            return False
        return self._run("pg_ctl", "status", "-D", str(self.data_dir), check=False).returncode == 0

    def start(self, port: int | None = None) -> str:
        """Initialise (first time) and start the cluster; return its SQLAlchemy URL.

        Every failure is a :class:`DatabaseUnavailableError` or :class:`ConfigError` with one line.
        """
        if self.is_running() and self.password_file.exists():
            return self.url()
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.server_dir != self.folder.resolve():
            _owned_by_postgres(self.server_dir.parent)
            (self.folder / "server").unlink(missing_ok=True)
            (self.folder / "server").symlink_to(self.server_dir)
        _owned_by_postgres(self.server_dir)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        elif not self.password_file.exists():
            self._set_password_of_trust_cluster()
        self._write_hba()
        port = port or free_port()
        opts = f"-p {port} -k {self.server_dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        res = self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", opts, check=False)
        if res.returncode != 0:
            log = " ".join(self.log_file.read_text().split()[-60:]) if self.log_file.exists() else ""
            reason = f"pg_ctl start failed for {self.data_dir}: {' '.join(res.stderr.split())} {log}".strip()
            raise DatabaseUnavailableError(reason, hint=f"full log: {self.log_file}")
        self.port_file.write_text(str(port))
        self._wait_ready(port)
        try:
            self._create_database(port)
        except subprocess.CalledProcessError as exc:
            reason = f"expected to create database {DB_NAME!r} on 127.0.0.1:{port}, found psql failing: {_one_line(exc)}"
            raise DatabaseUnavailableError(reason, hint=f"full log: {self.log_file}") from None
        url = self.url()
        write_private(self.url_file, url + "\n")
        return url

    def _initdb(self) -> None:
        """A new cluster whose superuser has a fresh password (handed to initdb in a 0600 file)."""
        write_private(self.password_file, secrets.token_urlsafe(24) + "\n")
        pwfile = self.server_dir / "initdb.pw"
        write_private(pwfile, self.password() + "\n")
        pw = _postgres_account()
        if pw is not None:
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        try:
            self._run("initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=scram-sha-256", f"--pwfile={pwfile}",
                      "-E", "UTF8", "--no-sync", "--locale=C")  # fmt: skip
        except subprocess.CalledProcessError as exc:
            reason = f"expected initdb to create {self.data_dir}, found it failing: {_one_line(exc)}"
            raise DatabaseUnavailableError(reason, hint="`make clean` starts afresh") from None
        finally:
            pwfile.unlink(missing_ok=True)

    def _set_password_of_trust_cluster(self) -> None:
        """A cluster made with ``trust`` by an older version: set a password in single-user mode."""
        if self.is_running():
            self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w")
        write_private(self.password_file, secrets.token_urlsafe(24) + "\n")
        sql = f"ALTER ROLE {SUPERUSER} PASSWORD '{self.password()}';\n"
        cmd = [str(pg_bin() / "postgres"), "--single", "-D", str(self.data_dir), "-j", "postgres"]
        res = subprocess.run(cmd, input=sql, capture_output=True, text=True, check=False, **_as_postgres_user())  # type: ignore[call-overload]
        if res.returncode != 0:
            self.password_file.unlink(missing_ok=True)
            raise DatabaseUnavailableError(f"expected to set the superuser password of {self.data_dir}, found postgres --single failing: "
                                           f"{' '.join(res.stderr.split())[:300]}", hint="`make clean` starts afresh")  # fmt: skip

    def _write_hba(self) -> None:
        """pg_hba.conf: scram-sha-256 for every connection (owned by the server's account)."""
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(PG_HBA)
        pw = _postgres_account()
        if pw is not None:
            os.chown(hba, pw.pw_uid, pw.pw_gid)

    def _wait_ready(self, port: int, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                return
            time.sleep(0.2)
        raise DatabaseUnavailableError(f"expected PostgreSQL on 127.0.0.1:{port} within {timeout_s}s, found nothing listening")

    def _create_database(self, port: int) -> None:
        psql = [str(pg_bin() / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", SUPERUSER, "-d", "postgres", "-tAc"]
        env = self._env()
        exists = subprocess.run([*psql, f"SELECT 1 FROM pg_database WHERE datname='{DB_NAME}'"], capture_output=True, text=True, check=True, env=env)
        if exists.stdout.strip() != "1":
            subprocess.run([*psql, f"CREATE DATABASE {DB_NAME}"], capture_output=True, text=True, check=True, env=env)

    def stop(self) -> None:
        """Stop the cluster (a no-op when it is not running)."""
        if self.is_running():
            self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w")
        self.url_file.unlink(missing_ok=True)

    def destroy(self) -> None:
        """Stop and delete the cluster's folder (and the server's folder when it lives apart)."""
        server = self.server_dir
        self.stop()
        if server != self.folder.resolve():
            shutil.rmtree(server, ignore_errors=True)
        shutil.rmtree(self.folder, ignore_errors=True)
