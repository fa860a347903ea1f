"""Settings from the environment: lists are comma-separated, secrets stay secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from banet_ops.settings import Settings


def test_comma_separated_lists(banet_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANET_WEIGHTS", "/w/a.pth, /w/b.pth")
    monkeypatch.setenv("BANET_VIIRS_PRODUCTS", "VNP02MOD")
    monkeypatch.setenv("BANET_FIRMS_SOURCES", "VIIRS_SNPP_NRT,VIIRS_NOAA20_NRT,VIIRS_NOAA21_NRT")
    s = Settings()
    assert s.weights == (Path("/w/a.pth"), Path("/w/b.pth"))
    assert s.viirs_products == ("VNP02MOD",)
    assert s.firms_sources == ("VIIRS_SNPP_NRT", "VIIRS_NOAA20_NRT", "VIIRS_NOAA21_NRT")


def test_defaults_and_resolved_locations(banet_home: Path) -> None:
    s = Settings()
    assert s.home == banet_home
    assert s.resolved_cube_root == str(banet_home / "cube")
    assert s.resolved_products_root == str(banet_home / "products")
    assert s.resolved_cache_dir == banet_home / "cache"
    assert s.weights == ()


def test_database_url_is_secret(banet_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANET_DATABASE_URL", "postgresql+psycopg2://u:hunter2@db/banet")
    s = Settings()
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.model_dump())
    assert s.resolved_database_url().endswith("u:hunter2@db/banet")


def test_local_stack_url_file_is_the_fallback(banet_home: Path) -> None:
    (banet_home / "pg").mkdir()
    (banet_home / "pg" / "url").write_text("postgresql+psycopg2://banet@127.0.0.1:5999/banet\n")
    assert Settings().resolved_database_url() == "postgresql+psycopg2://banet@127.0.0.1:5999/banet"


def test_the_settings_file_of_banet_home_applies_and_the_environment_wins(banet_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from banet_ops.settings import get_settings, write_settings_file

    regions = banet_home / "demo" / "regions"
    path = write_settings_file({"BANET_REGIONS_DIR": str(regions), "BANET_DEVICE": "cpu"}, banet_home)
    assert path == banet_home / "settings.env"
    get_settings.cache_clear()
    assert get_settings().regions_dir == regions and get_settings().device == "cpu"
    monkeypatch.setenv("BANET_DEVICE", "cuda")
    get_settings.cache_clear()
    assert get_settings().device == "cuda" and get_settings().regions_dir == regions


def test_banet_home_defaults_to_the_checkout_inside_and_outside_make(monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    from banet_ops.settings import CHECKOUT, default_home

    monkeypatch.delenv("BANET_HOME", raising=False)
    if (CHECKOUT / ".git").exists():
        assert default_home() == CHECKOUT / ".banet"
    makefile = (CHECKOUT / "Makefile").read_text()
    assert re.search(r"^export BANET_HOME \?= \$\(CURDIR\)/\.banet$", makefile, flags=re.MULTILINE)  # the same rule under make
