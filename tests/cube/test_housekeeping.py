"""gc: old snapshots expire and their chunks go, kept snapshots stay readable."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from banet_ops.cube import gc_cube, latest_snapshot, read_window, write_day
from banet_ops.errors import SnapshotNotFoundError

from ._workers import expected, make_image

D1, D2 = dt.date(2022, 6, 1), dt.date(2022, 6, 2)


def test_gc_keeps_named_snapshots_and_collects_the_rest(cube_root: str) -> None:
    first = make_image(D1, seed=1)
    kept = write_day(first)
    dropped = write_day(make_image(D1, seed=2))
    final = make_image(D1, seed=3)
    write_day(final)
    write_day(make_image(D2))
    tip = latest_snapshot("TC")

    result = gc_cube("TC", dt.timedelta(0), [kept], grace=dt.timedelta(0))
    assert result.kept == [kept]
    assert result.expired_snapshots >= 2 and result.chunks_deleted > 0 and result.bytes_deleted > 0

    # the kept snapshot still reads its own version of D1
    old = read_window("TC", D1, D1, snapshot=kept, variables=("Red", "FRP"))
    np.testing.assert_allclose(old.data[0, 0], expected(first, "Red"), atol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(old.data[0, 1], expected(first, "FRP"))
    # the unkept intermediate version is gone, with a clear error
    with pytest.raises(SnapshotNotFoundError, match="garbage-collected"):
        read_window("TC", D1, D1, snapshot=dropped)
    # the latest state is untouched
    assert latest_snapshot("TC") == tip
    now = read_window("TC", D1, D2, variables=("Red",))
    assert now.available.all()
    np.testing.assert_allclose(now.data[0, 0], expected(final, "Red"), atol=1e-6, equal_nan=True)

    # a second gc without --keep releases the old snapshot; gc is idempotent otherwise
    again = gc_cube("TC", dt.timedelta(0), grace=dt.timedelta(0))
    assert again.released == [kept] and again.kept == []
    gc_cube("TC", dt.timedelta(0), grace=dt.timedelta(0))
    with pytest.raises(SnapshotNotFoundError):
        read_window("TC", D1, D1, snapshot=kept)
    assert read_window("TC", D1, D2).available.all()


def test_gc_refuses_unknown_keep_and_spares_recent_objects(local_root: str) -> None:
    s1 = write_day(make_image(D1, seed=1))
    write_day(make_image(D1, seed=2))
    with pytest.raises(SnapshotNotFoundError):
        gc_cube("TC", dt.timedelta(0), ["ABCDEFGHJKMNPQRSTVWX"])
    # snapshots younger than --older-than are not expired
    result = gc_cube("TC", dt.timedelta(days=1))
    assert result.expired_snapshots == 0 and result.chunks_deleted == 0
    assert read_window("TC", D1, D1, snapshot=s1).available.all()
