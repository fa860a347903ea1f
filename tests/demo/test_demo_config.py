"""The demo's plan: which days it ingests and maps, and how it refuses a bad configuration."""

from __future__ import annotations

import datetime as dt

import pytest

from banet_ops.cli import main
from banet_ops.demo import DemoConfig


def test_inference_days_have_a_full_window_and_end_on_the_last_day() -> None:
    config = DemoConfig(days=80, infer_every=4)
    assert len(config.ingest_days) == 80 and config.ingest_days[-1] == dt.date(2024, 8, 19)
    assert config.infer_days[0] - config.start == dt.timedelta(days=63)  # first 64-day window
    assert config.infer_days[-1] == config.ingest_days[-1]
    assert all(b - a <= dt.timedelta(days=4) for a, b in zip(config.infer_days, config.infer_days[1:]))
    assert config.region.shape == (128, 128)


def test_a_too_short_scenario_is_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--days", "10"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "days" in err and "66" in err
