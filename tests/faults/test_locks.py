"""A reader login cannot block publishing; a lock held by another writer times out, retryably."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from publish.helpers import blob_dates, build_product, new_region

from banet_ops.db import runs
from banet_ops.errors import DatabaseUnavailableError
from banet_ops.publish import postgis, publish_product
from banet_ops.publish.storage import open_store
from banet_ops.settings import Settings
from faults.scenarios import FIGURES, TARGET, publish_inconsistencies


def _in_thread(fn: Callable[[], Any], timeout: float) -> tuple[bool, Any]:
    """(finished within ``timeout``, its result or exception)."""
    out: list[Any] = [None]

    def run() -> None:
        try:
            out[0] = fn()
        except Exception as exc:
            out[0] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    return not t.is_alive(), out[0]


def _as_reader(db_url: str) -> Any:
    conn = psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"))
    cur = conn.cursor()
    cur.execute("SET ROLE banet_reader")
    return conn, cur


def test_a_reader_holding_locks_does_not_block_publishing(db_url: str, tmp_path: Path, banet_home: Path) -> None:
    region = new_region()
    settings = Settings(home=banet_home, database_url=db_url, products_root=str(tmp_path / "products"))
    scope = f"{region.name}/nrt"
    conn, cur = _as_reader(db_url)
    try:
        # what a SELECT-only login can try: the advisory locks the publisher used to take, reads left open
        cur.execute("SELECT pg_advisory_lock(hashtext('banet.publish'), hashtext(%s))", (scope,))
        cur.execute("SELECT pg_advisory_lock(hashtext('banet.burned_cell partitions'))")
        cur.execute("SELECT count(*) FROM banet.run")
        for sql in ("SELECT * FROM banet.publish_lock FOR UPDATE", "SELECT * FROM banet.publish_lock FOR KEY SHARE",
                    "LOCK TABLE banet.publish_lock IN SHARE MODE"):
            cur.execute("SAVEPOINT s")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                cur.execute(sql)
            cur.execute("ROLLBACK TO SAVEPOINT s")
        FIGURES["faults"].add("reader login holding locks")
        done, result = _in_thread(lambda: publish_product(build_product(region, blob_dates(region, TARGET), target=TARGET), settings=settings), 60)
        assert done, "publishing waited on a lock a reader holds"
        assert not isinstance(result, Exception), result
    finally:
        conn.close()
    assert publish_inconsistencies(db_url, open_store(settings.resolved_products_root), region) == []


def test_a_lock_held_too_long_is_a_retryable_error(db_url: str, tmp_path: Path, banet_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    region = new_region()
    settings = Settings(home=banet_home, database_url=db_url, products_root=str(tmp_path / "products"))
    publish_product(build_product(region, blob_dates(region, TARGET, seed=1), target=TARGET), settings=settings)
    monkeypatch.setattr(postgis, "LOCK_TIMEOUT", "1s")
    holder = psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"))
    try:
        runs.lock_publish_scope(holder.cursor(), f"{region.name}/nrt")  # another publisher, stuck
        product = build_product(region, blob_dates(region, TARGET, seed=2), target=TARGET, snapshot="s2")
        done, result = _in_thread(lambda: publish_product(product, settings=settings), 60)
    finally:
        holder.close()
    FIGURES["faults"].add("publisher lock held by a stuck writer")
    assert done, "publishing waited without a timeout"
    assert isinstance(result, DatabaseUnavailableError) and result.retryable, result
    assert publish_inconsistencies(db_url, open_store(settings.resolved_products_root), region) == []
