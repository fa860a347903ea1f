"""Work shared among torch's threads (inference/threads.py): every piece once, one core per share, results as on one thread."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from banet_ops.inference import pixel_lstm
from banet_ops.inference.engine import EngineOptions, predict_probabilities
from banet_ops.inference.output_gemm import OutputGemm
from banet_ops.inference.pixel_lstm import PixelLSTM
from banet_ops.inference.threads import share_among_threads, shares, tile_days
from banet_ops.inference.time_gemm import TimeGemm, UpTimeGemm
from banet_ops.models.banet import BANet


@pytest.mark.parametrize(("count", "parts"), [(10, 2), (3, 4), (1, 2), (0, 2), (7, 1), (1000, 3)])
def test_shares_cut_the_range_into_consecutive_runs_of_near_equal_length(count: int, parts: int) -> None:
    runs = shares(count, parts)
    assert [i for run in runs for i in run] == list(range(count))
    assert all(len(run) > 0 for run in runs) and len(runs) == min(parts, count)
    assert max(map(len, runs), default=0) - min(map(len, runs), default=0) <= 1


@pytest.mark.parametrize(("count", "parts", "grain"), [(150, 2, 64), (130, 2, 64), (64, 2, 64), (10, 3, 4), (1000, 2, 7)])
def test_shares_on_grains_start_on_whole_grains(count: int, parts: int, grain: int) -> None:
    runs = shares(count, parts, grain)
    assert [i for run in runs for i in run] == list(range(count))
    assert all(run.start % grain == 0 and len(run) > 0 for run in runs)
    assert len(runs) == min(parts, -(-count // grain))


@pytest.mark.parametrize(("share", "days"), [(range(10, 21), 7), (range(0, 7), 7), (range(3, 4), 7), (range(0, 0), 0), (range(5, 5), 7), (range(0, 12), 1)])
def test_tile_days_walk_a_share_tile_by_tile(share: range, days: int) -> None:
    runs = list(tile_days(share, days))
    assert [tile * days + day for tile, run in runs for day in run] == list(share)  # every index once, in order
    assert all(len(run) > 0 and run.start >= 0 and run.stop <= days for _, run in runs)
    assert len({tile for tile, _ in runs}) == len(runs)  # one run per tile


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


def test_an_error_in_the_callers_share_waits_for_the_helpers_and_an_interrupt_is_not_swallowed() -> None:
    finished: list[int] = []

    def work(share: range, raised: type[BaseException]) -> None:
        if share.start == 0:
            raise raised("the caller's share failed")
        time.sleep(0.2)  # a helper still busy when the caller's share fails
        finished.append(share.start)

    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        for raised in (RuntimeError, KeyboardInterrupt):
            finished.clear()
            with pytest.raises(raised, match="caller's share failed"):
                share_among_threads(4, lambda share, raised=raised: work(share, raised))  # type: ignore[misc]
            assert finished == [2] and torch.get_num_threads() == 2  # the helper was waited for, the count restored
    finally:
        torch.set_num_threads(previous)


def _on_threads(threads: int, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        with torch.inference_mode():
            return fn()
    finally:
        torch.set_num_threads(previous)


def test_cpu_forms_give_the_same_numbers_on_two_threads_as_on_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pixel_lstm, "BLOCK_PIXELS", 64)  # 150 pixels: 3 blocks, shares of 2 and 1 whole blocks
    torch.manual_seed(0)
    lstm = PixelLSTM(nn.LSTM(6, 5))
    seq = torch.randn(12, 150, 6)
    one, two = (_on_threads(n, lambda: lstm(seq)[0]) for n in (1, 2))
    assert torch.equal(one, two)
    # one tile of 5 days: the second thread's share starts mid-tile, with its own cache of up-days
    head, final, up = nn.Conv3d(8, 3, (3, 1, 1), padding=(1, 0, 0)), nn.Conv3d(3, 2, 1), nn.ConvTranspose3d(4, 4, (2, 1, 1), stride=(2, 1, 1))
    out = OutputGemm(head, final, UpTimeGemm(up))
    full, x = torch.randn(1, 4, 6, 3, 5), torch.relu(torch.randn(1, 4, 3, 3, 5))
    one, two = (_on_threads(n, lambda: out(full, x)) for n in (1, 2))
    assert torch.equal(one, two)
    with torch.inference_mode():
        torch.testing.assert_close(one, final(torch.relu(head(torch.cat((full, torch.relu(up(x))), dim=1)))), atol=1e-5, rtol=1e-5)
    # three tiles of 7 output days in two parts (the shares split the second tile's days), and one
    # tile of 16 x 16 cells and 32 channels; with and without bias, more output days than input days
    cases = [(3, 3, 4, 4, (3, 4), 5, 2, True), (1, 16, 16, 32, (16, 16), 5, 2, True), (1, 16, 16, 32, (16, 16), 3, 2, False)]
    for (tiles, c_a, c_b, c_out, (h, w), k, pad, bias), stride in itertools.product(cases, (1, 2)):
        conv = nn.Conv3d(c_a + c_b, c_out, (k, 1, 1), stride=(stride, 1, 1), padding=(pad, 0, 0), bias=bias)
        a, b = torch.randn(tiles, c_a, 7 * stride, h, w), torch.randn(tiles, c_b, 7 * stride, h, w)
        gemm = TimeGemm(conv)
        one, two = (_on_threads(threads, lambda gemm=gemm, a=a, b=b: gemm(a, b)) for threads in (1, 2))  # type: ignore[misc]
        assert torch.equal(one, two)
        with torch.inference_mode():
            torch.testing.assert_close(one, conv(torch.cat((a, b), dim=1)), atol=1e-5, rtol=1e-5)


def test_two_callers_at_once_get_their_own_results_and_the_count_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pixel_lstm, "BLOCK_PIXELS", 64)
    torch.manual_seed(1)
    lstm = PixelLSTM(nn.LSTM(6, 5))
    seqs = [torch.randn(12, 300, 6) for _ in range(2)]
    expected = [_on_threads(1, lambda seq=seq: lstm(seq)[0]) for seq in seqs]  # type: ignore[misc]
    got: dict[int, torch.Tensor] = {}

    def call(i: int) -> None:
        for _ in range(5):  # overlapping windows, whichever thread gets the lock first
            got[i] = _on_threads(2, lambda: lstm(seqs[i])[0])

    callers = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
    assert all(torch.equal(got[i], expected[i]) for i in range(2))


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
    assert one.std() > 1e-4 and np.abs(one - two).max() <= 1e-6
