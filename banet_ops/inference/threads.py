"""Independent pieces of work shared among the CPU's threads, each thread running its torch ops on one core.

With two or more intra-op threads, torch splits every operation across them and joins them at its
end.  The CPU forms run many mid-sized operations (a block of pixels for one day, one day of a
tile), where that fork and join costs a large part of the work: measured on the 2-core
development machine, level 1's LSTM runs 1.5× faster on two threads than on one when torch splits
each operation, 1.9× when each thread walks its own blocks (benchmarks/README.md, session 8).
:func:`share_among_threads` gives each thread its own share of the pieces instead.  Every piece
runs the same operations as on one thread, so the results equal those on one thread to float
rounding (``tests/inference/test_threads.py``).

Torch's thread count is process-wide: while pieces run, the caller's count is set to one and
then restored.  The engine runs one forward pass at a time per process (a CLI call, an Airflow
task); two passes in threads of one process would each see the other's setting for a while.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import torch


def shares(count: int, parts: int) -> list[range]:
    """``range(count)`` cut into at most ``parts`` consecutive runs of near-equal length (none empty)."""
    parts = max(1, min(parts, count))
    bounds = [count * i // parts for i in range(parts + 1)]
    return [range(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def share_among_threads(count: int, work: Callable[[range], None]) -> None:
    """``work(share)`` for consecutive shares of ``range(count)``, one per torch thread, each in its own thread.

    One thread (``torch.get_num_threads() == 1``, or a call from inside a share): ``work(range(count))``
    here.  The first error raised by any share is raised here once all shares have stopped.
    """
    threads = torch.get_num_threads()
    runs = shares(count, threads)
    if len(runs) <= 1:
        work(range(count))
        return
    errors: list[BaseException] = []
    grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()

    def walk(run: range) -> None:
        try:
            torch.set_num_threads(1)
            with torch.inference_mode(inference), torch.set_grad_enabled(grad):  # both modes are per thread
                work(run)
        except BaseException as error:  # handed to the caller below
            errors.append(error)

    torch.set_num_threads(1)
    try:
        helpers = [threading.Thread(target=walk, args=(run,), name=f"banet-share-{i}", daemon=True) for i, run in enumerate(runs[1:], 1)]
        for helper in helpers:
            helper.start()
        walk(runs[0])
        for helper in helpers:
            helper.join()
    finally:
        torch.set_num_threads(threads)
    if errors:
        raise errors[0]
