"""Fixtures for the data-source tests: a fast HTTP client, a token, a small region."""

from __future__ import annotations

import pytest

from banet_ops.http import HttpClient
from banet_ops.regions import Region

TOKEN = "edl-token-SECRET-4b1d"


@pytest.fixture
def token() -> str:
    """The Earthdata token the fake servers accept."""
    return TOKEN


@pytest.fixture
def client() -> HttpClient:
    """Tiny back-off and timeout so failure tests stay fast."""
    return HttpClient(retries=3, concurrency=4, timeout=0.5, base_delay=0.01, max_delay=0.05, secrets=[TOKEN])


@pytest.fixture
def region() -> Region:
    return Region(name="T", bbox=(-10.0, 35.0, -5.0, 40.0), pixel_size=0.01)

