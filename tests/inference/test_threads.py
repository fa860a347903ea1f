"""Work shared among torch's threads (inference/threads.py): every piece once, one core per share, results as on one thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from banet_ops.inference.engine import EngineOptions, predict_probabilities
from banet_ops.inference.threads import share_among_threads, shares
from banet_ops.models.banet import BANet


@pytest.mark.parametrize(("count", "parts"), [(10, 2), (3, 4), (1, 2), (0, 2), (7, 1), (1000, 3)])
def test_shares_cut_the_range_into_consecutive_runs_of_near_equal_length(count: int, parts: int) -> None:
    runs = shares(count, parts)
    assert [i for run in runs for i in run] == list(range(count))
    assert all(len(run) > 0 for run in runs) and len(runs) == min(parts, count)
    assert max(map(len, runs), default=0) - min(map(len, runs), default=0) <= 1


def test_each_share_runs_in_its_own_thread_on_one_core_and_the_count_comes_back() -> None:
    seen: list[tuple[range, str, int, bool]] = []
    lock = threading.Lock()

    def work(share: range) -> None:
        with lock:
            seen.append((share, threading.current_thread().name, torch.get_num_threads(), torch.is_inference_mode_enabled()))

    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with torch.inference_mode():
            share_among_threads(9, work)
        assert torch.get_num_threads() == 2
        assert sorted(i for share, *_ in seen for i in share) == list(range(9))
        assert len({name for _, name, _, _ in seen}) == 2  # the caller's thread and one helper
        assert all(threads == 1 and inference for _, _, threads, inference in seen)  # modes are per thread: carried over
        seen.clear()
        torch.set_num_threads(1)
        share_among_threads(9, work)
        assert seen == [(range(9), threading.current_thread().name, 1, False)]  # one thread: one call, here
    finally:
        torch.set_num_threads(previous)


def test_an_error_in_a_helper_reaches_the_caller_after_every_share_stopped() -> None:
    done: list[int] = []

    def work(share: range) -> None:
        if share.start:
            raise RuntimeError(f"piece {share.start} failed")
        done.extend(share)

    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with pytest.raises(RuntimeError, match="piece 2 failed"):
            share_among_threads(4, work)
        assert done == [0, 1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


def test_engine_outputs_on_two_threads_equal_those_on_one(banet: BANet, make_window) -> None:  # type: ignore[no-untyped-def]
    win = make_window(150, 170, days=16, seed=5)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = predict_probabilities(win, [banet], options=EngineOptions())
        torch.set_num_threads(2)
        two = predict_probabilities(win, [banet], options=EngineOptions())
    finally:
        torch.set_num_threads(previous)
    assert one.std() > 1e-3 and np.abs(one - two).max() <= 1e-6
