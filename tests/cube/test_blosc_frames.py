"""Partial decompression of Blosc frames and the batched direct reader on multi-day chunks."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from numcodecs import blosc
from zarr.codecs import BloscCodec, BytesCodec
from zarr.storage import MemoryStore

from banet_ops.cube import blosc_frames as F
from banet_ops.cube import direct as D
from banet_ops.cube import layout as L
from banet_ops.errors import StorageError

RNG = np.random.default_rng(7)
CHUNK = RNG.integers(-32768, 32767, (400, 500), dtype=np.int16)
FRAME = np.frombuffer(blosc.compress(CHUNK, b"lz4hc", 2, blosc.SHUFFLE), dtype=np.uint8)


def test_getitem_is_available_with_the_pinned_numcodecs() -> None:
    # without it reads stay correct (next tests) but tile reads decompress 3-4x more
    assert F.partial_decompression_available()


@pytest.mark.parametrize("with_getitem", [True, False])
@pytest.mark.parametrize("rows", [(0, 400), (0, 1), (100, 228), (399, 400), (260, 262), (1, 399)])
def test_item_ranges_decompress_exactly_those_items(rows: tuple[int, int], with_getitem: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not with_getitem:
        monkeypatch.setattr(F, "_getitem", None)
    block = np.full((1, 400, 500), 12345, dtype=np.int16)
    start, stop = rows[0] * 500, rows[1] * 500
    F.decompress_items(FRAME, block, start, stop, key="Red/c/0/0/0")
    np.testing.assert_array_equal(block[0, rows[0] : rows[1]], CHUNK[rows[0] : rows[1]])
    if with_getitem:  # the rest is untouched: only the range was written
        assert (block.reshape(-1)[:start] == 12345).all() and (block.reshape(-1)[stop:] == 12345).all()


def test_frames_with_typesize_one_count_bytes() -> None:
    frame = np.frombuffer(blosc.compress(CHUNK.view(np.uint8), b"lz4", 5, blosc.NOSHUFFLE), dtype=np.uint8)
    assert F.read_header(frame).typesize == 1  # type: ignore[union-attr]
    block = np.zeros((1, 400, 500), dtype=np.int16)
    F.decompress_items(frame, block, 500 * 7, 500 * 9, key="k")
    np.testing.assert_array_equal(block[0, 7:9], CHUNK[7:9])


@pytest.mark.parametrize(("raw", "found"), [
    (FRAME[:-10], "header says"),             # truncated object
    (FRAME[:8], "no Blosc header"),
    (np.frombuffer(blosc.compress(CHUNK[:200], b"lz4", 5, blosc.SHUFFLE), np.uint8), "header says"),  # another shape
])
def test_damaged_frames_are_storage_errors(raw: np.ndarray, found: str) -> None:
    block = np.zeros((1, 400, 500), dtype=np.int16)
    with pytest.raises(StorageError, match=f"expected a Blosc frame that decodes to 400000 bytes, found .*{found}"):
        F.decompress_items(raw, block, 0, 500, key="Red/c/0/0/0")


def test_batched_reader_on_multi_day_chunks_equals_zarr(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks holding several days: item ranges span days; batches end mid-variable."""
    monkeypatch.setattr(D, "BATCH", 5)
    monkeypatch.setattr(D, "BATCHES_IN_FLIGHT", 2)
    store = MemoryStore()
    values = RNG.integers(-32767, 32767, (9, 40, 60), dtype=np.int16)
    values[values % 17 == 0] = L.ENCODINGS["Red"].fill
    arr = zarr.create_array(store, name="Red", shape=values.shape, chunks=(4, 16, 25), dtype="int16",
                            serializer=BytesCodec(), compressors=[BloscCodec(cname="lz4hc", clevel=2, shuffle="shuffle")],
                            fill_value=L.ENCODINGS["Red"].fill)
    arr[...] = values
    assert D.direct_chunk_shape(arr) == (4, 16, 25)
    for i0, n, times, rows, cols in [
        (0, 9, range(9), slice(0, 40), slice(0, 60)),
        (2, 5, [2, 3, 5, 6], slice(15, 33), slice(24, 51)),
        (3, 1, [3], slice(39, 40), slice(59, 60)),
        (1, 8, [1, 8], slice(5, 6), slice(0, 60)),
    ]:
        out = np.full((n, rows.stop - rows.start, cols.stop - cols.start), -1.0, dtype=np.float32)
        jobs = D.chunk_jobs(arr, "Red", (4, 16, 25), list(times), i0, rows, cols, out)
        D.read_chunks(store, jobs)
        want = np.empty_like(out)
        L.decode_into("Red", values[i0 : i0 + n, rows, cols], want)
        read = [t - i0 for t in times]
        np.testing.assert_array_equal(out[read], want[read], err_msg=f"{i0=} {n=} {rows} {cols}")
