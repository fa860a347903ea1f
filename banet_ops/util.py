"""Small facts every part of the package needs once: atomic file writes, stage timers, URL redaction.

* :func:`atomic_write`, :func:`atomic_path` — write to a temp file in the destination's folder,
  then ``os.replace``: readers see the old file or the whole new one, never a part.
* :func:`timed` — add the seconds a block took to ``timings[stage]``.
* :func:`public_url` — a source URL as recorded (cube, granule rows): no user info, no query string (tokens live there).
* :func:`pydantic_problem` — the first problem of a pydantic ``ValidationError`` as ``field: message``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temp path beside ``path`` for a writer that needs a file name (HDF, NetCDF, CSV); renamed onto ``path`` on success.

    The temp file is a hidden sibling (``.<name>.<pid>.<random>.tmp``), removed when the block raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(
    path: str | Path, data: bytes | str | Callable[[IO[bytes]], Any], *, fsync: bool = False, mode: int | None = None
) -> Path:
    """Write ``data`` (bytes, text, or a function writing into a binary file) to ``path`` atomically.

    ``fsync`` flushes the file to disk before the rename (downloads, whose loss would cost a
    re-fetch); ``mode`` creates it with these permissions from the start (secrets: ``0o600``).
    """
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode)
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data.encode() if isinstance(data, str) else data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
    return Path(path)


@contextmanager
def timed(timings: MutableMapping[str, float], stage: str) -> Iterator[None]:
    """Add the wall-clock seconds of the block to ``timings[stage]`` (also when it raises)."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - t0


def public_url(url: str) -> str:
    """``url`` without user info and query string; a string that is not a URL is returned as is."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def pydantic_problem(
    exc: Any, *, source: str = "", field: str = "{}", default_field: str = "value", show_input: bool = False, every: bool = False
) -> str:
    """A pydantic ``ValidationError`` as one line: ``source: <field>: message`` (the first error; ``every``: all, ``; ``-joined).

    ``field`` formats the dotted field path (``"field '{}'"``, or ``"--{}"`` for a CLI flag, which
    also turns ``_`` into ``-``); a model-level error has ``default_field``.  Pydantic's
    "Value error, " prefix is dropped; ``show_input`` adds the offending value of a field.
    """
    parts = []
    for err in exc.errors() if every else exc.errors()[:1]:
        where = ".".join(str(x) for x in err.get("loc", ()))
        text = f"{field.format(where.replace('_', '-') if field.startswith('--') else where or default_field)}: {str(err['msg']).removeprefix('Value error, ')}"
        if show_input and where:
            text += f" (found {err.get('input')!r})"
        parts.append(text)
    line = "; ".join(parts)
    return f"{source}: {line}" if source else line
