"""Keep freed memory in the process heap while the engine runs (glibc), so big tensors are not page-faulted anew.

A BA-Net forward pass allocates and frees tensors of 100-500 MB.  glibc serves each from a fresh
``mmap`` and unmaps it on free, so every layer of every batch pays the kernel's page faults
(measured on the development machine: a quarter to half of the CPU time of a forward pass).
Inside :func:`heap_allocator`, glibc takes large blocks from the heap and keeps freed memory
there (``M_MMAP_MAX=0``, ``M_TRIM_THRESHOLD`` 1 GiB), so later layers and batches reuse mapped
pages; on exit the defaults come back and the heap is trimmed.  A no-op without glibc.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import threading
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # mallopt parameters (malloc.h)
DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX = 128 * 1024, 65536
HELD_TRIM_THRESHOLD = 1 << 30
_lock = threading.Lock()
_depth = 0


@lru_cache(maxsize=1)
def _libc() -> Any | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


@contextlib.contextmanager
def heap_allocator(enabled: bool = True) -> Iterator[None]:
    """Large allocations from the heap, freed memory kept, for the duration (nested uses share one setting)."""
    global _depth
    libc = _libc() if enabled else None
    if libc is None:
        yield
        return
    with _lock:
        if _depth == 0:
            libc.mallopt(M_MMAP_MAX, 0)
            libc.mallopt(M_TRIM_THRESHOLD, HELD_TRIM_THRESHOLD)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
                libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
                libc.malloc_trim(0)
