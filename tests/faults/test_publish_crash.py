"""SIGKILL at each point of a publish, then the next start: files, STAC item and PostGIS agree.

Each case publishes product A, kills a publish of product B at a named crash point, checks that
what readers see is consistent once a publish has started again (``recover_publishes``, which
every publish runs first), then re-runs B: the result must equal an uninterrupted A-then-B.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from publish.helpers import new_region

from banet_ops.db.engine import get_engine
from banet_ops.publish import publish_product
from banet_ops.publish.publisher import recover_publishes
from banet_ops.publish.storage import open_store
from banet_ops.settings import Settings
from faults.scenarios import FIGURES, comparable, killed, product_for, publish_inconsistencies, publish_state, region_spec, run_child

S = "banet_ops.publish.storage"
P = "banet_ops.publish.postgis"
# (crash point, whether B's commit happened before it)
POINTS = [
    ("banet_ops.publish.cog:write_burn_date_cog:after", False),
    (f"{P}:apply_cells:after", False),
    (f"{S}:FileTransaction._write_journal:after:1", False),
    (f"{S}:LocalStore.copy:after:2", False),
    (f"{S}:LocalStore.put_file:after:3", False),  # puts 1-2 are the journal: the first product file
    ("shutil:copyfile:after:4", False),  # the second product file half-way: its temp file copied, not renamed
    ("banet_ops.db.runs:record_publish_token:after", False),  # every file in place, before the commit
    (f"{P}:summarize_cells:before", True),  # committed, backups and journal still there
    (f"{S}:LocalStore.delete:after:1", True),  # part-way through dropping the backups
]


def _settings(home: Path, db_url: str, root: str) -> Settings:
    return Settings(home=home, database_url=db_url, products_root=root)


def _spec(region: Any, seed: int, snapshot: str, db_url: str, root: str, home: Path) -> dict[str, Any]:
    return {"region": region_spec(region), "seed": seed, "snapshot": snapshot, "db_url": db_url, "root": root, "home": str(home)}


@pytest.fixture(scope="module")
def reference(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A, then B, uninterrupted: what every crash case must end with."""
    home = tmp_path_factory.mktemp("ref-home")
    root = str(tmp_path_factory.mktemp("ref-products"))
    region = new_region()
    settings = _settings(home, db_url, root)
    publish_product(product_for(_spec(region, 1, "snap-a", db_url, root, home)), settings=settings)
    a = comparable(publish_state(db_url, open_store(root), region))
    publish_product(product_for(_spec(region, 2, "snap-b", db_url, root, home)), settings=settings)
    return {"a": a, "b": comparable(publish_state(db_url, open_store(root), region))}


def _crash_case(point: str, committed: bool, db_url: str, root: str, home: Path, reference: dict[str, Any]) -> None:
    region = new_region()
    settings = _settings(home, db_url, root)
    store = open_store(root)
    publish_product(product_for(_spec(region, 1, "snap-a", db_url, root, home)), settings=settings)

    proc = run_child(["publish", json.dumps(_spec(region, 2, "snap-b", db_url, root, home))], crash_at=point)
    assert killed(proc), proc.stderr[-2000:]
    FIGURES["crash_points"].add(point)

    with pytest.MonkeyPatch.context() as mp:  # what the next start does first (one hour later: temp files stale)
        mp.setattr("banet_ops.publish.publisher.STALE_TEMP_S", 0.0)
        recover_publishes(store, get_engine(db_url))
    problems = publish_inconsistencies(db_url, store, region)
    if problems:
        FIGURES["inconsistent"].add(point)
    assert problems == []
    assert comparable(publish_state(db_url, store, region)) == reference["b" if committed else "a"]

    publish_product(product_for(_spec(region, 2, "snap-b", db_url, root, home)), settings=settings)
    after = comparable(publish_state(db_url, store, region))
    if after != reference["b"]:
        FIGURES["lost"].add(point)
    assert after == reference["b"]
    assert publish_inconsistencies(db_url, store, region) == []


@pytest.mark.parametrize(("point", "committed"), POINTS, ids=[p.split(":", 1)[1] for p, _ in POINTS])
def test_sigkill_during_publish(point: str, committed: bool, db_url: str, tmp_path: Path, banet_home: Path, reference: dict[str, Any]) -> None:
    _crash_case(point, committed, db_url, str(tmp_path / "products"), banet_home, reference)


def test_sigkill_during_publish_to_s3(db_url: str, s3_bucket: str, banet_home: Path, reference: dict[str, Any]) -> None:
    _crash_case(f"{S}:S3Store.put_file:after:4", False, db_url, f"s3://{s3_bucket}/products", banet_home, reference)


def test_sigkill_during_recovery_is_finished_by_the_next_start(db_url: str, tmp_path: Path, banet_home: Path, reference: dict[str, Any]) -> None:
    """A publish killed after its files, then the next one killed while restoring them."""
    root = str(tmp_path / "products")
    region = new_region()
    settings = _settings(banet_home, db_url, root)
    store = open_store(root)
    publish_product(product_for(_spec(region, 1, "snap-a", db_url, root, banet_home)), settings=settings)
    spec_b = json.dumps(_spec(region, 2, "snap-b", db_url, root, banet_home))
    assert killed(run_child(["publish", spec_b], crash_at="banet_ops.db.runs:record_publish_token:after"))
    point = f"{S}:LocalStore.copy:after:2"  # the second backup restored by the recovery at the start
    proc = run_child(["publish", spec_b], crash_at=point)
    assert killed(proc), proc.stderr[-2000:]
    FIGURES["crash_points"].add(f"recovery {point}")
    recover_publishes(store, get_engine(db_url))
    assert publish_inconsistencies(db_url, store, region) == []
    assert comparable(publish_state(db_url, store, region)) == reference["a"]
    publish_product(product_for(_spec(region, 2, "snap-b", db_url, root, banet_home)), settings=settings)
    assert comparable(publish_state(db_url, store, region)) == reference["b"]


def test_concurrent_publishers_of_one_scope(db_url: str, tmp_path: Path, banet_home: Path, reference: dict[str, Any]) -> None:
    """Two processes publish B at once over A: they serialise on the scope's lock; the result is B, consistent."""
    import os
    import subprocess
    import sys

    from faults.scenarios import CHILD, REPO

    root = str(tmp_path / "products")
    region = new_region()
    store = open_store(root)
    publish_product(product_for(_spec(region, 1, "snap-a", db_url, root, banet_home)), settings=_settings(banet_home, db_url, root))
    env = {**os.environ, "PYTHONPATH": str(REPO), "BANET_CRASH_AT": ""}
    args = [sys.executable, str(CHILD), "publish", json.dumps(_spec(region, 2, "snap-b", db_url, root, banet_home))]
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [p.communicate(timeout=180)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    FIGURES["faults"].add("concurrent publishers of one scope")
    assert publish_inconsistencies(db_url, store, region) == []
    assert comparable(publish_state(db_url, store, region)) == reference["b"]
