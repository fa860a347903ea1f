"""What the run and task notes say after failures and successes (banet_ops.orchestration.notes)."""

from __future__ import annotations

from banet_ops.orchestration import notes

REASON = "banet-ops: banet_infer_nrt_R.infer for 2024-08-19 failed: ModelError: weight file /x.pth not found"
OTHER = "banet-ops: banet_infer_nrt_R.publish for 2024-08-19 failed: DatabaseUnavailableError: no PostGIS"


def test_a_failure_puts_the_reason_first_and_keeps_the_runs_origin_below() -> None:
    assert notes.run_note_after_failure(None, [REASON]) == REASON
    assert notes.run_note_after_failure("banet-ops demo", [REASON, OTHER]) == f"{REASON} (and 1 more failed task(s))\nbanet-ops demo"
    again = notes.run_note_after_failure(f"{OTHER}\nbanet-ops backfill 2024-08-18..2024-08-19", [REASON])
    assert again == f"{REASON}\nbanet-ops backfill 2024-08-18..2024-08-19"  # the newest reason replaces the stale one
    assert notes.task_note_after_failure(OTHER, REASON) == REASON
    assert notes.run_note_after_failure("banet-ops demo", []) is None  # nothing to say: the note stays


def test_an_operators_note_is_never_rewritten() -> None:
    mine = "Ana: re-run after the LAADS outage, ticket 4411"
    assert notes.run_note_after_failure(mine, [REASON]) is None
    assert notes.task_note_after_failure(mine, REASON) is None
    assert notes.note_after_success(mine) == mine


def test_a_success_after_a_clear_drops_stale_reasons_and_keeps_the_origin() -> None:
    assert notes.note_after_success(f"{REASON}\nbanet-ops demo") == "banet-ops demo"
    assert notes.note_after_success(REASON) is None
    assert notes.note_after_success("banet-ops backfill 2024-08-18..2024-08-19") == "banet-ops backfill 2024-08-18..2024-08-19"
    assert notes.note_after_success(None) is None
