"""PostgreSQL's binary COPY format, both ways: a stream to fill in place, and a stream to read.

A stream is a header (signature, flags, extension area), fixed-width tuples (field count, then
a length and a big-endian value per field) and a trailer.  The tuples are numpy structured
records, so a million rows are written and parsed without a Python loop.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from banet_ops.errors import DatabaseError

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)
PG_EPOCH_DAYS = (dt.date(2000, 1, 1) - dt.date(1970, 1, 1)).days  # a COPY date counts days from 2000-01-01

# (burn_date, row, col, confidence, area_km2, event_id): the cells as staged and as read back for events
CELL_EVENT_DTYPE = np.dtype(
    [
        ("nfields", ">i2"),
        ("l_date", ">i4"), ("date", ">i4"),
        ("l_row", ">i4"), ("row", ">i4"),
        ("l_col", ">i4"), ("col", ">i4"),
        ("l_conf", ">i4"), ("conf", ">f4"),
        ("l_area", ">i4"), ("area", ">f8"),
        ("l_event", ">i4"), ("event", ">i8"),
    ]
)  # fmt: skip


def records(n: int, dtype: np.dtype) -> tuple[bytearray, np.ndarray]:
    """A binary COPY stream of ``n`` tuples and a structured view of its body to fill in place."""
    buf = bytearray(len(HEADER) + n * dtype.itemsize + len(TRAILER))
    buf[: len(HEADER)] = HEADER
    buf[len(buf) - len(TRAILER) :] = TRAILER
    return buf, np.frombuffer(buf, dtype=dtype, count=n, offset=len(HEADER))


def parse(data: bytes | bytearray | memoryview, dtype: np.dtype, what: str) -> np.ndarray:
    """The tuples of a ``COPY … TO STDOUT WITH (FORMAT binary)`` stream as records of ``dtype``.

    Every tuple must have all of ``dtype``'s fields, non-null, at their fixed widths; anything else
    is a :class:`DatabaseError` naming ``what`` was being read.
    """
    view = memoryview(data)
    if bytes(view[: len(SIGNATURE)]) != SIGNATURE or len(view) < len(HEADER) + len(TRAILER):
        raise DatabaseError(f"reading {what}: expected a binary COPY stream, found {bytes(view[:16])!r}")
    start = 19 + int.from_bytes(view[15:19], "big")
    body = view[start : len(view) - len(TRAILER)]
    if len(body) % dtype.itemsize:
        raise DatabaseError(f"reading {what}: expected tuples of {dtype.itemsize} bytes, found a {len(body)}-byte body")
    rec = np.frombuffer(body, dtype=dtype)
    values = [name for name in dtype.names or () if name != "nfields" and not name.startswith("l_")]
    fixed = all(np.all(rec[f"l_{name}"] == dtype[name].itemsize) for name in values)
    if rec.size and not (np.all(rec["nfields"] == len(values)) and fixed):
        raise DatabaseError(f"reading {what}: expected {len(values)} non-null fields of fixed width per tuple, found others")
    return rec
