from __future__ import annotations

import pytest

from banet_ops.settings import get_settings


@pytest.fixture(params=["local", "s3"])
def cube_root(request: pytest.FixtureRequest, banet_home, tmp_path, monkeypatch: pytest.MonkeyPatch) -> str:
    """BANET_CUBE_ROOT on a local directory and on the S3-compatible test server."""
    if request.param == "local":
        root = str(tmp_path / "cubes")
    else:
        bucket = request.getfixturevalue("s3_bucket")
        root = f"s3://{bucket}/cubes"
    monkeypatch.setenv("BANET_CUBE_ROOT", root)
    get_settings.cache_clear()
    return root


@pytest.fixture
def local_root(banet_home, tmp_path, monkeypatch: pytest.MonkeyPatch) -> str:
    root = str(tmp_path / "cubes")
    monkeypatch.setenv("BANET_CUBE_ROOT", root)
    get_settings.cache_clear()
    return root
