"""The local cluster asks every client for the password (scram-sha-256): a wrong one is refused."""

from __future__ import annotations

import subprocess

import pytest
import sqlalchemy as sa

from banet_ops.localstack.postgres import pg_bin


def _connect(url: sa.URL) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    finally:
        engine.dispose()


def test_the_right_password_connects_and_a_wrong_or_missing_one_is_refused(pg_url: str) -> None:
    url = sa.make_url(pg_url)
    assert url.password and len(url.password) >= 24
    _connect(url)
    with pytest.raises(sa.exc.OperationalError, match="password authentication failed"):
        _connect(url.set(password="not-the-password"))
    with pytest.raises(sa.exc.OperationalError, match="password"):
        _connect(url._replace(password=None))


def test_the_server_uses_scram_for_every_connection(pg_url: str) -> None:
    url = sa.make_url(pg_url)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rules = conn.execute(sa.text("SELECT type, auth_method FROM pg_hba_file_rules WHERE error IS NULL")).all()
        stored = conn.execute(sa.text("SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'banet'")).scalar_one()
    engine.dispose()
    assert rules and {method for _, method in rules} == {"scram-sha-256"} and {t for t, _ in rules} == {"local", "host"}
    assert stored


def test_psql_without_a_password_is_refused(pg_url: str) -> None:
    url = sa.make_url(pg_url)
    out = subprocess.run(
        [str(pg_bin() / "psql"), "-w", "-h", "127.0.0.1", "-p", str(url.port), "-U", "banet", "-d", "banet", "-c", "SELECT 1"],
        capture_output=True, text=True, check=False, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert out.returncode != 0 and "password" in out.stderr


def test_a_cluster_made_with_trust_gets_a_password_on_its_next_start() -> None:
    import shutil
    import stat
    import tempfile
    from pathlib import Path

    from banet_ops.localstack.postgres import SUPERUSER, LocalPostgres

    folder = Path(tempfile.mkdtemp(prefix="banet-test-trust-"))
    cluster = LocalPostgres(folder)
    try:
        cluster.folder.mkdir(exist_ok=True)
        cluster.start()  # then make it look like an old, password-less cluster
        cluster.stop()
        cluster._run("pg_ctl", "start", "-w", "-D", str(cluster.data_dir), "-l", str(cluster.log_file),
                     "-o", f"-p {int(cluster.port_file.read_text())} -k {cluster.server_dir} -c listen_addresses=127.0.0.1")  # fmt: skip
        (cluster.data_dir / "pg_hba.conf").write_text("host all all 127.0.0.1/32 trust\nlocal all all trust\n")
        cluster._run("pg_ctl", "reload", "-D", str(cluster.data_dir))
        cluster.password_file.unlink()
        old = sa.make_url(f"postgresql+psycopg2://{SUPERUSER}@127.0.0.1:{int(cluster.port_file.read_text())}/banet")
        _connect(old)  # trust: no password needed
        url = sa.make_url(cluster.start())
        assert stat.S_IMODE(cluster.password_file.stat().st_mode) == 0o600
        _connect(url)
        with pytest.raises(sa.exc.OperationalError, match="password"):
            _connect(url._replace(password=None))
    finally:
        cluster.destroy()
        shutil.rmtree(folder, ignore_errors=True)
