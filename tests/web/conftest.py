"""Fixtures of the map tests: a demo-like scene, a reader login, the app and a live server."""

from __future__ import annotations

import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from banet_ops.db.engine import get_engine
from banet_ops.settings import Settings
from banet_ops.web.app import create_app
from banet_ops.web.db import DbConfig

from .browser import chromium
from .scene import Scene, publish_scene


@pytest.fixture(scope="session")
def web_scene(db_url: str) -> Scene:
    """The scene published once per session into the shared test database."""
    root = Path(tempfile.mkdtemp(prefix="banet-web-products-"))
    settings = Settings(home=root, database_url=db_url, products_root=str(root / "products"))
    return publish_scene(db_url, settings)


@pytest.fixture(scope="session")
def reader_url(db_url: str) -> str:
    """A login that is only a member of ``banet_reader`` (what an analyst or the map gets)."""
    password = secrets.token_hex(8)
    with get_engine(db_url).begin() as conn:
        conn.execute(sa.text("DROP ROLE IF EXISTS map_reader_test"))
        conn.execute(sa.text(f"CREATE ROLE map_reader_test LOGIN PASSWORD '{password}' IN ROLE banet_reader"))
    parts = urlsplit(db_url)
    netloc = f"map_reader_test:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@pytest.fixture(scope="module")
def client(reader_url: str, web_scene: Scene) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=reader_url), config=DbConfig(url=reader_url))
    with TestClient(app) as c:
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def live_url(reader_url: str, web_scene: Scene) -> Iterator[str]:
    """The standalone app under uvicorn on a free 127.0.0.1 port (for ogrinfo and the browser)."""
    import uvicorn

    port = _free_port()
    app = create_app(Settings(database_url=reader_url), config=DbConfig(url=reader_url))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the map app did not start on port {port}")
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[object]:
    """A headless chromium (skips when chromium or chromedriver is not installed)."""
    yield from chromium()
