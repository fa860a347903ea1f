"""Concurrent writers, crashes and same-day races leave exactly what a serial run leaves."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from banet_ops.bands import CUBE_VARIABLES
from banet_ops.cube import latest_snapshot, read_window, write_day
from banet_ops.cube.layout import day_index
from banet_ops.cube.reader import open_group
from banet_ops.cube.storage import cube_location, open_repository
from banet_ops.settings import Settings

from ._workers import expected, make_image, raw_cube, write_worker

# Four days at the end of one year and four in the next: the concurrent writers also race to
# create the cube and to grow its time axis.
DAYS = [dt.date(2019, 12, 28) + dt.timedelta(days=k) for k in range(8)]


def _spawn_pool(n: int):
    return multiprocessing.get_context("spawn").Pool(n)


def test_four_processes_equal_serial_bit_for_bit(cube_root: str) -> None:
    serial, parallel = f"{cube_root}/serial", f"{cube_root}/parallel"
    for day in DAYS:
        write_day(make_image(day), settings=Settings(cube_root=serial))
    with _spawn_pool(4) as pool:
        snapshots = pool.map(write_worker, [(parallel, d.isoformat(), 0, None) for d in reversed(DAYS)])
    assert len(set(snapshots)) == 8
    span = slice(day_index(DAYS[0]) - 2, day_index(DAYS[-1]) + 3)
    a, b = raw_cube(serial, span), raw_cube(parallel, span)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        assert a[name].dtype == b[name].dtype
    # and one commit per day, each naming its day and granules
    repo = open_repository(cube_location("TC", settings=Settings(cube_root=parallel)))
    days = sorted(s.metadata["day"] for s in repo.ancestry(branch="main") if s.metadata.get("kind") == "day")
    assert days == [d.isoformat() for d in DAYS]
    meta = next(s.metadata for s in repo.ancestry(branch="main") if s.metadata.get("kind") == "day")
    assert meta["granules"] and meta["software"].startswith("banet-ops ") and "zarr" in meta["preprocessing"]


def test_same_day_written_twice_concurrently_gives_one_complete_version(cube_root: str, tmp_path: Path) -> None:
    day = DAYS[0]
    write_day(make_image(DAYS[1]))  # the cube exists: the race is on the day itself
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    with _spawn_pool(2) as pool:
        snapshots = pool.map(write_worker, [(cube_root, day.isoformat(), seed, str(barrier)) for seed in (1, 2)])
    assert len(set(snapshots)) == 2
    window = read_window("TC", day, day, variables=CUBE_VARIABLES)
    matches = []
    for seed in (1, 2):
        image = make_image(day, seed)
        ok = all(
            np.allclose(window.data[0, b], expected(image, name), atol=1e-6, equal_nan=True) for b, name in enumerate(CUBE_VARIABLES)
        )
        matches.append(ok)
    assert sum(matches) == 1, "the day must be exactly one writer's version, never a mix"
    # the surviving version is the one committed last
    winner = 1 + matches.index(True)
    repo = open_repository(cube_location("TC"))
    tip = next(iter(repo.ancestry(branch="main")))
    assert f"seed{winner}" in tip.metadata["granules"]
    group, _, _ = open_group("TC")
    assert isinstance(group, zarr.Group)


def test_writer_killed_before_commit_leaves_previous_state(cube_root: str, tmp_path: Path) -> None:
    day = DAYS[2]
    old = make_image(day, seed=1)
    before = write_day(old)
    marker = tmp_path / "written"
    worker = Path(__file__).with_name("_workers.py")
    proc = subprocess.Popen([sys.executable, str(worker), day.isoformat(), "2", str(marker)], env=os.environ.copy())
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, "the writer exited before reaching its commit"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # its chunks are written, its commit never happens
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert latest_snapshot("TC") == before
    window = read_window("TC", day, day, variables=("Red", "FRP"))
    np.testing.assert_allclose(window.data[0, 0], expected(old, "Red"), atol=1e-6, equal_nan=True)
    # re-running completes it (and the commit lock, if any, was released by the kernel)
    new = make_image(day, seed=2)
    after = write_day(new)
    assert after != before
    window = read_window("TC", day, day, variables=("Red", "FRP"))
    np.testing.assert_allclose(window.data[0, 0], expected(new, "Red"), atol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(window.data[0, 1], expected(new, "FRP"))


@pytest.mark.parametrize("attempts", [1])
def test_conflicts_exhausted_raise_retryable(local_root: str, attempts: int) -> None:
    from banet_ops.errors import CommitConflictError, is_retryable

    day = DAYS[0]
    write_day(make_image(day))

    def interfere() -> None:  # another writer commits the same day between our write and commit
        write_day(make_image(day, seed=3))

    with pytest.raises(CommitConflictError) as info:
        write_day(make_image(day, seed=4), before_commit=interfere, max_attempts=attempts)
    assert is_retryable(info.value)
