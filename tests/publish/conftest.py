"""Isolated settings for the publishing tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from banet_ops.settings import Settings


@pytest.fixture
def make_settings(tmp_path: Path, banet_home: Path) -> Callable[..., Settings]:
    """Settings pointing at the test database and a products root (local folder by default)."""

    def make(database_url: str, products_root: str | None = None) -> Settings:
        return Settings(home=banet_home, database_url=database_url, products_root=products_root or str(tmp_path / "products"))

    return make
