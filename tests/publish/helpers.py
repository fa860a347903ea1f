"""Synthetic products for the publishing tests (numpy, small regions)."""

from __future__ import annotations

import datetime as dt
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from banet_ops.product import ModelRef, Product
from banet_ops.regions import Region

QUERIES = Path(__file__).resolve().parents[2] / "sql" / "queries"

SHA_A = "a" * 64
SHA_B = "b" * 64


def new_region(rows: int = 60, cols: int = 80, left: float = -8.0, top: float = 41.0, prefix: str = "T") -> Region:
    """A small region with a unique name (the test database is shared by the session)."""
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    return Region(name=name, bbox=(left, top - rows * 0.01, left + cols * 0.01, top), pixel_size=0.01)


def window(mode: str, target: dt.date) -> tuple[dt.date, dt.date]:
    if mode == "monthly":
        prev = (target.replace(day=1) - dt.timedelta(days=1)).replace(day=15)
        return prev, prev + dt.timedelta(days=63)
    return target - dt.timedelta(days=63), target


def build_product(
    region: Region,
    burn_dates: np.ndarray,
    *,
    mode: str = "nrt",
    target: dt.date = dt.date(2017, 10, 27),
    confidence: np.ndarray | None = None,
    shas: tuple[str, ...] = (SHA_A,),
    snapshot: str = "snap-1",
    seed: int = 0,
) -> Product:
    """A product whose burned cells are the non-NaT cells of ``burn_dates``."""
    burned = ~np.isnat(burn_dates)
    rng = np.random.default_rng(seed)
    if confidence is None:
        confidence = np.where(burned, rng.uniform(0.5, 1.0, region.shape), rng.uniform(0.0, 0.5, region.shape)).astype(np.float32)
    ws, we = window(mode, target)
    return Product(
        region=region,
        mode=mode,  # type: ignore[arg-type]
        target_date=target,
        window_start=ws,
        window_end=we,
        confidence=confidence.astype(np.float32),
        burn_date=burn_dates.astype("datetime64[D]"),
        burned=burned,
        threshold=0.5,
        models=[ModelRef(sha256=s, path=f"/weights/{s[:6]}.pth", model_id=f"m-{s[:6]}") for s in shas],
        cube_snapshot=snapshot,
        timings={"predict": 1.5},
        nir=rng.uniform(0.05, 0.4, region.shape).astype(np.float32),
        tiling="published",
        observed_days=61,
    )


def blob_dates(region: Region, target: dt.date, n_blobs: int = 6, seed: int = 0, first: dt.date | None = None) -> np.ndarray:
    """Burn dates of a few disc-shaped fires spreading outwards, inside the NRT window of ``target``."""
    rng = np.random.default_rng(seed)
    rows, cols = region.shape
    out = np.full(region.shape, np.datetime64("NaT"), dtype="datetime64[D]")
    yy, xx = np.mgrid[0:rows, 0:cols]
    start = np.datetime64(first or (target - dt.timedelta(days=50)))
    for _ in range(n_blobs):
        cy, cx, r = rng.integers(0, rows), rng.integers(0, cols), rng.uniform(2, 9)
        d = np.hypot(yy - cy, xx - cx)
        inside = d < r
        ignition = start + np.timedelta64(int(rng.integers(0, 30)), "D")
        out[inside] = ignition + (d[inside] / 2).astype("timedelta64[D]")
    return out


@contextmanager
def analyst_database(pg_url: str) -> Iterator[str]:
    """A fresh migrated database of the session cluster (the queries' defaults see only its runs); dropped after."""
    from banet_ops.db.engine import dispose_engines
    from banet_ops.db.migrate import upgrade

    admin = sa.create_engine(sa.make_url(pg_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"analyst_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def reader_login(url: str) -> Iterator[sa.URL]:
    """A login in banet_reader with a password, as docs/analysts.md adds one (dropped after)."""
    login, password = f"analyst_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE ROLE {login} LOGIN PASSWORD '{password}' IN ROLE banet_reader"))
    try:
        yield sa.make_url(url).set(username=login, password=password, drivername="postgresql")
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP ROLE {login}"))
        admin.dispose()


def psql(url: sa.URL, name: str, **variables: object) -> list[list[str]]:
    """Rows of ``sql/queries/{name}.sql`` run by psql as ``url`` with these variables (fields split on ``|``)."""
    from banet_ops.localstack.postgres import pg_bin

    cmd = [str(pg_bin() / "psql"), "-X", "-q", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1"]
    for key, value in variables.items():
        cmd += ["-v", f"{key}={value}"]
    out = subprocess.run([*cmd, "-f", str(QUERIES / f"{name}.sql"), url.render_as_string(hide_password=False)],
                         capture_output=True, text=True, check=False, timeout=60)  # fmt: skip
    assert out.returncode == 0, f"{name}.sql: {out.stderr}"
    return [line.split("|") for line in out.stdout.splitlines() if line.strip()]
