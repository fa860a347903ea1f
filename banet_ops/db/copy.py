"""``COPY`` through psycopg 3: a whole stream read out, a pre-encoded stream written in.

The statements name the format themselves (``… WITH (FORMAT binary)`` or text); a binary stream
written here is complete (signature, tuples, trailer), as :mod:`banet_ops.publish.pgcopy` builds it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from psycopg import Cursor, OperationalError, errors, pq, sql

Params = Sequence[Any] | Mapping[str, Any] | None


def copy_out(cur: Cursor[Any], statement: str | sql.Composed, params: Params = None) -> bytearray:
    """The whole stream of a ``COPY … TO STDOUT`` (parameters bound on the client).

    The server sends one message per row; they are drained straight from libpq (``pgconn``)
    into one buffer rather than one :meth:`psycopg.Copy.read` per row, whose per-call overhead
    made reading a million-row scope take 3.3 s of client CPU instead of 0.4 s.
    """
    buf = bytearray()
    with cur.copy(statement, params):
        pgconn = cur.connection.pgconn
        get = pgconn.get_copy_data
        while True:
            nbytes, data = get(0)  # blocking: a row, -1 at the end, -2 on error
            if nbytes <= 0:
                break
            buf += data
        _finish_copy_out(pgconn, nbytes)
    return buf


def _finish_copy_out(pgconn: Any, nbytes: int) -> None:
    """Read the final result of a COPY TO drained by hand; a failure raises psycopg's error for its SQLSTATE."""
    results = []
    while (result := pgconn.get_result()) is not None:
        results.append(result)
    failed = [r for r in results if r.status != pq.ExecStatus.COMMAND_OK]
    if nbytes == -2 or failed:
        detail = (failed[0].error_message if failed else pgconn.error_message).decode(errors="replace").strip()
        sqlstate = failed[0].error_field(pq.DiagnosticField.SQLSTATE) if failed else None
        try:
            cls: type[Exception] = errors.lookup(sqlstate.decode()) if sqlstate else OperationalError
        except KeyError:
            cls = OperationalError
        raise cls(f"COPY TO STDOUT failed: {detail}")


def copy_in(cur: Cursor[Any], statement: str | sql.Composed, data: bytes | bytearray | memoryview | str) -> None:
    """Send ``data`` to a ``COPY … FROM STDIN``: a text stream, or a complete binary one (written in large blocks)."""
    with cur.copy(statement) as copy:
        copy.write(data if isinstance(data, str) else memoryview(data))
