"""read_window's two paths (direct chunk decoding, Zarr indexing): chunk edges, older and foreign encodings, damaged chunks."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import zarr
from zarr.codecs import ZstdCodec

from banet_ops.bands import CUBE_VARIABLES
from banet_ops.cube import direct as D
from banet_ops.cube import layout as L
from banet_ops.cube import read_window, write_day
from banet_ops.cube import reader as R
from banet_ops.cube import writer as W
from banet_ops.cube.storage import BRANCH, cube_location, open_repository, written_indexes
from banet_ops.errors import StorageError

from ._workers import REGION, expected, make_image

D1, D2, D4 = dt.date(2021, 8, 1), dt.date(2021, 8, 2), dt.date(2021, 8, 4)
# windows that start, end and straddle chunk edges of a (16, 25) grid over the 40 x 60 region
WINDOWS = [
    (slice(None), slice(None)),
    (slice(0, 16), slice(0, 25)),
    (slice(15, 17), slice(24, 26)),
    (slice(10, 40), slice(20, 60)),
    (slice(33, 40), slice(51, 60)),
    (slice(39, 40), slice(0, 1)),
]


def _group(root: str) -> zarr.Group:
    repo = open_repository(cube_location("TC"))
    return zarr.open_group(repo.readonly_session(BRANCH).store, mode="r")


def _check_windows(images: dict[dt.date, object]) -> None:
    for rows, cols in WINDOWS:
        window = read_window(REGION, D1, D4, rows=rows, cols=cols, variables=CUBE_VARIABLES)
        assert window.available.tolist() == [True, True, False, True]
        assert np.isnan(window.data[2]).all()
        for t, day in enumerate(window.days):
            if day not in images:
                continue
            for b, name in enumerate(CUBE_VARIABLES):
                np.testing.assert_allclose(
                    window.data[t, b], expected(images[day], name)[rows, cols], atol=1e-6, rtol=1e-6, equal_nan=True,  # type: ignore[arg-type]
                    err_msg=f"{name} {day} rows {rows} cols {cols}",
                )


def test_partial_edge_chunks_decode_in_place(local_root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(L, "SPATIAL_CHUNKS", (16, 25))  # 40 x 60 -> chunks of 16/16/8 rows, 25/25/10 cols
    images = {day: make_image(day, seed=3) for day in (D1, D2, D4)}
    for image in images.values():
        write_day(image)
    red = _group(local_root)["Red"]
    assert red.chunks == (1, 16, 25)
    assert D.direct_chunk_shape(red) == (1, 16, 25)
    codec = red.metadata.codecs[1]
    assert (codec.cname.value, codec.clevel, codec.shuffle.value) == (L.BLOSC_CODEC, L.BLOSC_LEVEL, "shuffle")
    assert _group(local_root).attrs["banet_cube_layout"] == L.LAYOUT_VERSION == 2
    _check_windows(images)


def test_layout_1_zstd_cubes_still_read(local_root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(L, "SPATIAL_CHUNKS", (16, 25))
    monkeypatch.setattr(L, "BLOSC_CODEC", "zstd")
    monkeypatch.setattr(L, "BLOSC_LEVEL", 1)
    images = {day: make_image(day, seed=4) for day in (D1, D2, D4)}
    for image in images.values():
        write_day(image)
    assert _group(local_root)["NIR"].metadata.codecs[1].cname.value == "zstd"
    _check_windows(images)


def test_other_encodings_fall_back_to_zarr_indexing(local_root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(L, "SPATIAL_CHUNKS", (16, 25))
    monkeypatch.setattr(W, "_compressors", lambda itemsize: [ZstdCodec(level=1)])
    images = {day: make_image(day, seed=5) for day in (D1, D2, D4)}
    for image in images.values():
        write_day(image)
    assert D.direct_chunk_shape(_group(local_root)["MIR"]) is None
    _check_windows(images)


def test_damaged_chunk_is_a_storage_error(local_root: str) -> None:
    write_day(make_image(D1))
    repo = open_repository(cube_location("TC"))
    session = repo.writable_session(BRANCH)
    red = zarr.open_group(session.store, mode="r+")["Red"]
    key = f"Red/{red.metadata.encode_chunk_key((L.day_index(D1), 0, 0))}"
    buffer = zarr.core.buffer.default_buffer_prototype().buffer
    zarr.core.sync.sync(session.store.set(key, buffer.from_bytes(b"not a blosc frame at all")))
    session.commit("damage a chunk")
    with pytest.raises(StorageError, match="expected a Blosc frame"):
        read_window("TC", D1, D1)
    # the other variables are intact
    window = read_window("TC", D1, D1, variables=("NIR",))
    np.testing.assert_allclose(window.data[0, 0], expected(make_image(D1), "NIR"), atol=1e-6, equal_nan=True)


def test_direct_and_public_paths_read_the_same(local_root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The seam: the direct decoder and Zarr's public indexing give bit-identical windows; without
    the direct module (a Zarr whose internals moved) read_window reads everything the public way."""
    monkeypatch.setattr(L, "SPATIAL_CHUNKS", (16, 25))
    images = {day: make_image(day, seed=6) for day in (D1, D2, D4)}
    for image in images.values():
        write_day(image)
    loc = cube_location("TC")
    session = open_repository(loc).readonly_session(BRANCH)
    group = zarr.open_group(session.store, mode="r")
    assert R.DIRECT is D and all(D.direct_chunk_shape(group[name]) is not None for name in CUBE_VARIABLES)
    written, i0 = written_indexes(session), L.day_index(D1)
    assert [t - i0 for t in written] == [0, 1, 3]
    for rows, cols in WINDOWS:
        rs, cs = R._check_slice(rows, 40, "rows"), R._check_slice(cols, 60, "cols")
        direct = R.decode_window(group, session.store, CUBE_VARIABLES, written, i0, 4, rs, cs, loc, direct=True)
        public = R.decode_window(group, session.store, CUBE_VARIABLES, written, i0, 4, rs, cs, loc, direct=False)
        np.testing.assert_array_equal(direct, public, err_msg=f"rows {rows} cols {cols}")
    monkeypatch.setattr(R, "DIRECT", None)
    _check_windows(images)
