"""A small synthetic world for the retraining tests: a 96 × 96-cell region with fires in July and
August 2020, its daily images in a real cube, its truth as real MCD64A1 HDF4 tiles in an archive
mirror, and the June–September label cube built from them (built once per session)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator

import pytest

from banet_ops.regions import Region
from banet_ops.retrain.synthetic_world import World, WorldRegion, build_world
from banet_ops.settings import get_settings

REGION = Region(name="T", bbox=(-8.3, 39.8, -7.34, 40.76), pixel_size=0.01)


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(
        tmp_path_factory.mktemp("world"),
        [WorldRegion(REGION, seed=1)],  # seed 1: ~1500 cells burn in July, ~360 in August
        start=dt.date(2020, 6, 1),
        days=153,
        cube_first=dt.date(2020, 6, 30),
        cube_last=dt.date(2020, 8, 31),
        label_months=["T:2020-07", "T:2020-08"],
    )


@pytest.fixture
def world_env(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The world's settings in the environment (and nothing else of BANET_*)."""
    for key in list(os.environ):
        if key.startswith("BANET_"):
            monkeypatch.delenv(key)
    for key, value in world.env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield world
    get_settings.cache_clear()
