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


def test_the_demo_scenario_re_burns_part_of_an_early_scar(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo writes its scenario with re-burns (so that cells_burned_twice.sql has rows), and a config change rewrites it."""
    import banet_ops.synthetic as synthetic
    from banet_ops.demo import DemoPaths, ensure_scenario

    calls: list[dict[str, object]] = []

    class Written:
        def env(self) -> dict[str, str]:
            return {"BANET_ARCHIVE_URL": "file:///a"}

    def fake_write(root, region, start, days, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs)
        root.mkdir(parents=True, exist_ok=True)
        return Written()

    monkeypatch.setattr(synthetic, "write_scenario", fake_write)
    paths = DemoPaths(tmp_path)
    assert DemoConfig().reburn is True
    ensure_scenario(paths, DemoConfig())
    ensure_scenario(paths, DemoConfig())  # reused
    ensure_scenario(paths, DemoConfig(reburn=False))
    assert [c["reburn"] for c in calls] == [True, False]
