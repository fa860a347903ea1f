"""What the run and task notes say after a banet run fails or succeeds (no Airflow here).

Notes are where the Airflow UI shows a run's and a task's story first.  banet-ops writes two
kinds: the *origin* of a run it triggered (``banet-ops demo``, ``banet-ops backfill D1..D2``) and
the one-line *reason* of a failure (``banet-ops: DAG.task for DAY failed: …``).  A note that does
not start with ``banet-ops`` is an operator's and is never touched.  After a failure the reason
comes first and the origin stays below it; after a later success (the run cleared and re-run) the
stale reasons go and the origin stays, so a green run never carries a red story.
"""

from __future__ import annotations

from collections.abc import Sequence

REASON_PREFIX = "banet-ops: "
OURS_PREFIX = "banet-ops"


def is_ours(note: str | None) -> bool:
    """Empty, or written by banet-ops (an origin or a reason): free to rewrite."""
    return not note or note.startswith(OURS_PREFIX)


def origin_of(note: str | None) -> str | None:
    """The origin line of a banet-ops note (``banet-ops demo``), without the reasons above it."""
    if not is_ours(note):
        return None
    lines = [line for line in (note or "").splitlines() if line.startswith(OURS_PREFIX) and not line.startswith(REASON_PREFIX)]
    return lines[-1] if lines else None


def run_note_after_failure(note: str | None, reasons: Sequence[str]) -> str | None:
    """The run's note once it failed with ``reasons`` (None: leave the note as it is)."""
    if not reasons or not is_ours(note):
        return None
    more = f" (and {len(reasons) - 1} more failed task(s))" if len(reasons) > 1 else ""
    origin = origin_of(note)
    return f"{reasons[0]}{more}" + (f"\n{origin}" if origin else "")


def task_note_after_failure(note: str | None, reason: str) -> str | None:
    """The failed task's note: its own reason (None: an operator's note stays)."""
    return reason if is_ours(note) else None


def note_after_success(note: str | None) -> str | None:
    """A succeeded run's or task's note: the origin without stale reasons (``note`` itself when unchanged)."""
    if not note or not is_ours(note) or REASON_PREFIX not in note:
        return note
    return origin_of(note)
