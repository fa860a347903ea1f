"""Small facts every part of the package needs once: atomic file writes, stage timers, URL redaction.

* :func:`atomic_write` — write to a temp file in the destination's folder, then ``os.replace``:
  readers see the old file or the whole new one, never a part.
* :func:`timed` — add the seconds a block took to ``timings[stage]``.
* :func:`redact_url` — a source URL without user info or query string (tokens live there).
* :func:`pydantic_problem` — the first problem of a pydantic ``ValidationError`` as ``field: message``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit


def atomic_write(path: str | Path, data: bytes | str | Callable[[IO[bytes]], Any], *, fsync: bool = False) -> Path:
    """Write ``data`` (bytes, text, or a function writing into a binary file) to ``path`` atomically.

    The temp file is a hidden sibling (``.<name>.*.tmp``), removed on any failure; ``fsync``
    flushes it to disk before the rename (downloads, whose loss would cost a re-fetch).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data.encode() if isinstance(data, str) else data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


@contextmanager
def timed(timings: MutableMapping[str, float], stage: str) -> Iterator[None]:
    """Add the wall-clock seconds of the block to ``timings[stage]`` (also when it raises)."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - t0


def redact_url(url: str) -> str:
    """``url`` without user info and query string; a string that is not a URL is returned as is."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def pydantic_problem(exc: Any) -> str:
    """The first error of a pydantic ``ValidationError`` on one line: ``field.path: message``."""
    err = exc.errors()[0]
    where = ".".join(str(x) for x in err.get("loc", ())) or "value"
    return f"{where}: {err['msg']}"
