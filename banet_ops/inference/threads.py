"""Independent pieces of work shared among the CPU's threads, each thread running its torch ops on one core.

With two or more intra-op threads, torch splits every operation across them and joins them at its
end.  The CPU forms run many mid-sized operations (a block of pixels for one day, one day of a
tile), where that fork and join costs a large part of the work: measured on the 2-core
development machine, level 1's LSTM runs 1.5× faster on two threads than on one when torch splits
each operation, 1.9× when each thread walks its own blocks (benchmarks/README.md, session 8).
:func:`share_among_threads` gives each thread its own share of the pieces instead.  Shares are cut
on whole grains: the LSTM's blocks of pixels run the same operations as on one thread, so its
results are the same bitwise.  A share of a temporal convolution's days is one product per tap
of fewer rows, the same sums row for row: equal to float rounding (bitwise in
``tests/inference/test_threads.py``).

While shares run, the caller's torch thread count is one, then restored.  ``set_num_threads``
sets the calling thread's own count and the count that a thread takes on its first parallel
operation, so a thread of this process that first uses torch meanwhile would keep one thread:
the engine runs one forward pass at a time per process (a CLI call, an Airflow task), and a lock
keeps two sharing callers in one process from overlapping.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import torch

_window = threading.Lock()  # one sharing caller at a time per process (the thread count is set for the process)


def shares(count: int, parts: int, grain: int = 1) -> list[range]:
    """``range(count)`` cut into at most ``parts`` consecutive runs of near-equal length (none empty), bounds on multiples of ``grain``."""
    grains = -(-count // grain)
    parts = max(1, min(parts, grains))
    bounds = [min(count, grain * (grains * i // parts)) for i in range(parts + 1)]
    return [range(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def tile_days(share: range, days: int) -> Iterator[tuple[int, range]]:
    """The (tile, day) indices ``tile·days + day`` in ``share``, as each tile they touch with its run of days."""
    for tile in range(share.start // days, -(-share.stop // days)) if share else ():
        yield tile, range(max(share.start - tile * days, 0), min(share.stop - tile * days, days))


def share_among_threads(count: int, work: Callable[[range], None], *, grain: int = 1) -> None:
    """``work(share)`` for consecutive shares of ``range(count)`` (cut on multiples of ``grain``), one per torch thread, each in its own thread.

    One thread (``torch.get_num_threads() == 1``, or a call from inside a share): ``work(range(count))``
    here.  Errors, an interrupt included: every share is waited for, then the caller's own
    share's error is raised, else the first helper's.
    """
    threads = torch.get_num_threads()
    runs = shares(count, threads, grain)
    if len(runs) <= 1:
        work(range(count))
        return
    modes = torch.is_grad_enabled(), torch.is_inference_mode_enabled()
    with _window:
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(len(runs) - 1, thread_name_prefix="banet-share") as pool:  # leaving it waits for every helper
                helpers = [pool.submit(_one_core, work, run, *modes) for run in runs[1:]]
                work(runs[0])
        finally:
            torch.set_num_threads(threads)
    for helper in helpers:
        helper.result()  # a helper's error, raised here


def _one_core(work: Callable[[range], None], run: range, grad: bool, inference: bool) -> None:
    """``work(run)`` in a helper thread: torch on one thread, the caller's grad and inference modes (both are per thread)."""
    torch.set_num_threads(1)
    with torch.inference_mode(inference), torch.set_grad_enabled(grad):
        work(run)
