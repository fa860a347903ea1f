"""``COPY`` through psycopg 3: a whole stream read out, a pre-encoded stream written in.

The statements name the format themselves (``… WITH (FORMAT binary)`` or text); a binary stream
written here is complete (signature, tuples, trailer), as :mod:`banet_ops.publish.pgcopy` builds it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from psycopg import Cursor, sql

Params = Sequence[Any] | Mapping[str, Any] | None


def copy_out(cur: Cursor[Any], statement: str | sql.Composed, params: Params = None) -> bytes:
    """The whole stream of a ``COPY … TO STDOUT`` (parameters bound on the client)."""
    with cur.copy(statement, params) as copy:
        return b"".join(copy)


def copy_in(cur: Cursor[Any], statement: str | sql.Composed, data: bytes | bytearray | memoryview | str) -> None:
    """Send ``data`` to a ``COPY … FROM STDIN``: a text stream, or a complete binary one (written in large blocks)."""
    with cur.copy(statement) as copy:
        copy.write(data if isinstance(data, str) else memoryview(data))
