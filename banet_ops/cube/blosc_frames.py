"""Blosc 1 frames as the cube stores them: header checks and decompression of an item range.

A frame holds its data in independently compressed blocks (128 kB for a 400 × 500 int16 chunk),
so a window that needs a band of rows of a chunk only has to decompress the blocks holding those
rows.  c-blosc does that in ``blosc_getitem``; numcodecs (pinned) links c-blosc into its
extension module and exports the symbol but not a Python wrapper, so it is called through
:mod:`ctypes` (which releases the GIL).  When the symbol is not there, whole frames are
decompressed instead: same result, more CPU.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np
from numcodecs import blosc
from numpy.typing import NDArray

from banet_ops.errors import StorageError

HEADER_BYTES = 16
_MAX_FORMAT_VERSION = 2  # c-blosc 1.x writes format 2


def _load_getitem() -> Any | None:
    try:
        fn = ctypes.CDLL(blosc.__file__).blosc_getitem
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    fn.restype = ctypes.c_int
    return fn


_getitem = _load_getitem()


def partial_decompression_available() -> bool:
    """True when item ranges are decompressed block by block (else whole frames are)."""
    return _getitem is not None


@dataclass(frozen=True)
class FrameHeader:
    """The fields of a Blosc 1 frame header that the reader relies on."""

    version: int
    typesize: int
    nbytes: int
    blocksize: int
    cbytes: int


def read_header(raw: NDArray[np.uint8]) -> FrameHeader | None:
    """The header of ``raw``, or None when it is too short to hold one."""
    if raw.nbytes < HEADER_BYTES:
        return None
    head = raw[:HEADER_BYTES].tobytes()
    return FrameHeader(
        version=head[0],
        typesize=head[3],
        nbytes=int.from_bytes(head[4:8], "little"),
        blocksize=int.from_bytes(head[8:12], "little"),
        cbytes=int.from_bytes(head[12:16], "little"),
    )


def check_frame(raw: NDArray[np.uint8], block: NDArray[Any], key: str) -> FrameHeader:
    """The header of ``raw`` after checking that it is a whole frame that decodes to ``block``."""
    header = read_header(raw)
    if (header is None or header.version > _MAX_FORMAT_VERSION or header.nbytes != block.nbytes or header.cbytes != raw.nbytes
            or header.typesize not in (1, block.itemsize)):
        found = "no Blosc header" if header is None else f"a frame of {raw.nbytes} bytes whose header says {header}"
        raise StorageError(
            f"chunk {key}: expected a Blosc frame that decodes to {block.nbytes} bytes, found {found}",
            hint="the cube is damaged or was written by an incompatible version; re-write the day",
        )
    return header


def decompress_items(raw: NDArray[np.uint8], block: NDArray[Any], start: int, stop: int, key: str) -> None:
    """Decompress the items ``start..stop`` (flat C order) of the frame ``raw`` into the same items of ``block``.

    Items outside the range are left as they were.  ``block`` must be C-contiguous.
    """
    header = check_frame(raw, block, key)
    flat = block.reshape(-1)
    if _getitem is None or (start == 0 and stop == flat.size):
        blosc.decompress(raw, flat.view(np.uint8))
        return
    # getitem counts items of the frame's typesize (1 when the frame was written without one)
    scale = block.itemsize // header.typesize
    target = flat[start:stop]
    got = _getitem(raw.ctypes.data, start * scale, (stop - start) * scale, target.ctypes.data)
    if got != target.nbytes:
        raise StorageError(
            f"chunk {key}: expected {target.nbytes} decompressed bytes for items {start}..{stop}, found {got} (Blosc error when negative)",
            hint="the cube is damaged; re-write the day",
        )
