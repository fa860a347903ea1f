"""The shared HTTP client: retries, back-off, timeouts, per-host limits, HTML detection, redaction."""

from __future__ import annotations

import logging
import threading
from datetime import date
from pathlib import Path

import pytest

from banet_ops.errors import (
    AuthenticationError,
    IntegrityError,
    NotFoundError,
    RateLimitError,
    SourceUnavailableError,
    is_retryable,
)
from banet_ops.http import HttpClient, looks_like_html, redact, redact_url, register_secret
from sources.fakeservers import FakeLaads, Reply

DAY_NAME = "VNP02MOD.A2024001.1200.002.2024001190000.nc"


def _server_file(laads: FakeLaads, content: bytes = b"x" * 5000) -> str:
    return laads.add_file("VNP02MOD", date(2024, 1, 1), DAY_NAME, content)


def test_5xx_then_success_is_retried(client: HttpClient, tmp_path: Path, token: str) -> None:
    with FakeLaads(token=token) as laads:
        url = _server_file(laads)
        laads.fail_next(DAY_NAME, 503, 502)
        out = client.download(url, tmp_path / DAY_NAME, headers={"Authorization": f"Bearer {token}"}, expected_size=5000)
        assert out.read_bytes() == b"x" * 5000
        assert laads.count(DAY_NAME) == 3  # two failures, then the file
        assert client.attempts == 3


def test_timeout_then_success(tmp_path: Path, token: str) -> None:
    client = HttpClient(retries=2, timeout=0.2, base_delay=0.01, max_delay=0.02)
    with FakeLaads(token=token, timeout_delay_s=0.6) as laads:
        url = _server_file(laads)
        laads.fail_next(DAY_NAME, "timeout")
        out = client.download(url, tmp_path / DAY_NAME, headers={"Authorization": f"Bearer {token}"})
        assert out.stat().st_size == 5000
        assert laads.count(DAY_NAME) == 2


def test_connection_reset_and_truncated_transfer_are_retried(client: HttpClient, tmp_path: Path, token: str) -> None:
    with FakeLaads(token=token) as laads:
        url = _server_file(laads)
        laads.fail_next(DAY_NAME, "reset", "truncate")
        out = client.download(url, tmp_path / DAY_NAME, headers={"Authorization": f"Bearer {token}"})
        assert out.stat().st_size == 5000
        assert laads.count(DAY_NAME) == 3
    assert list(tmp_path.glob("*.tmp")) == []


def test_persistent_503_gives_up_after_bounded_retries(tmp_path: Path, token: str) -> None:
    sleeps: list[float] = []
    client = HttpClient(retries=4, base_delay=0.01, max_delay=0.04, timeout=0.5, sleep=sleeps.append)
    with FakeLaads(token=token) as laads:
        url = _server_file(laads)
        laads.fail_always(DAY_NAME, 503)
        with pytest.raises(SourceUnavailableError) as info:
            client.download(url, tmp_path / DAY_NAME, headers={"Authorization": f"Bearer {token}"})
        assert laads.count(DAY_NAME) == 5  # 1 try + 4 retries
    assert is_retryable(info.value)
    assert "HTTP 503" in str(info.value) and "5 attempts" in str(info.value)
    assert len(sleeps) == 4 and all(0 <= s <= 0.04 for s in sleeps)
    assert not (tmp_path / DAY_NAME).exists()


def test_429_exhausted_is_a_rate_limit_error(tmp_path: Path) -> None:
    client = HttpClient(retries=1, base_delay=0.001, max_delay=0.002, timeout=0.5)
    with FakeLaads(token=None) as laads:
        url = _server_file(laads)
        laads.fail_always(DAY_NAME, Reply(429, b"slow down", headers={"Retry-After": "0"}))
        with pytest.raises(RateLimitError):
            client.download(url, tmp_path / DAY_NAME)
        assert laads.count(DAY_NAME) == 2


def test_404_and_401_are_permanent(client: HttpClient, tmp_path: Path, token: str) -> None:
    with FakeLaads(token=token, auth_failure="401") as laads:
        url = _server_file(laads)
        with pytest.raises(NotFoundError):
            client.download(url + ".missing", tmp_path / "x.nc")
        with pytest.raises(AuthenticationError):
            client.download(url, tmp_path / DAY_NAME, headers={"Authorization": "Bearer wrong"})
        assert laads.count(DAY_NAME) == 2  # no retries for either
    assert list(tmp_path.iterdir()) == []


def test_backoff_is_full_jitter_and_capped() -> None:
    client = HttpClient(base_delay=1.0, max_delay=8.0)
    for attempt in range(8):
        values = [client.backoff(attempt) for _ in range(200)]
        ceiling = min(8.0, 2.0**attempt)
        assert all(0 <= v <= ceiling for v in values)
        assert max(values) > ceiling * 0.5  # jitter spans the range, not a constant
    assert client.backoff(0, retry_after=3.0) >= 3.0
    assert client.backoff(0, retry_after=100.0) <= 8.0


def test_per_host_concurrency_limit(tmp_path: Path, token: str) -> None:
    client = HttpClient(retries=0, concurrency=2, timeout=5)
    with FakeLaads(token=None, hold_s=0.15) as laads:
        urls = [laads.add_file("VNP02MOD", date(2024, 1, 1), f"VNP02MOD.A2024001.{i:04d}.002.2024001190000.nc", b"y" * 100) for i in range(8)]
        threads = [threading.Thread(target=client.download, args=(u, tmp_path / u.rsplit("/", 1)[1])) for u in urls]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert laads.max_concurrent == 2
        assert len(list(tmp_path.glob("*.nc"))) == 8


def test_html_detection() -> None:
    assert looks_like_html("text/html; charset=utf-8", b"anything")
    assert looks_like_html("application/octet-stream", b"  \n<!DOCTYPE html><html>")
    assert looks_like_html(None, b"<HTML><body>")
    assert not looks_like_html("application/x-netcdf", b"\x89HDF\r\n\x1a\n")
    assert not looks_like_html("text/csv", b"latitude,longitude")


def test_html_page_with_200_is_an_authentication_error(client: HttpClient, tmp_path: Path, token: str) -> None:
    with FakeLaads(token=token) as laads:
        url = _server_file(laads)
        with pytest.raises(AuthenticationError) as info:
            client.download(url, tmp_path / DAY_NAME, headers={"Authorization": "Bearer expired"})
        assert laads.count(DAY_NAME) == 1
    assert DAY_NAME in str(info.value)
    assert not is_retryable(info.value)
    assert list(tmp_path.iterdir()) == []


def test_size_and_md5_mismatch(client: HttpClient, tmp_path: Path) -> None:
    with FakeLaads(token=None) as laads:
        url = _server_file(laads, b"z" * 1000)
        with pytest.raises(IntegrityError, match="expected 2000 bytes, found 1000"):
            client.download(url, tmp_path / DAY_NAME, expected_size=2000)
        with pytest.raises(IntegrityError, match="MD5"):
            client.download(url, tmp_path / DAY_NAME, expected_size=1000, expected_md5="0" * 32)
    assert list(tmp_path.iterdir()) == []


def test_secret_is_redacted_from_messages_and_library_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    # Capture on the library logger itself: Airflow's logging setup, imported by other tests in
    # the same process, may disable library loggers or stop their propagation to the root.
    library_logger = logging.getLogger("urllib3.connectionpool")
    monkeypatch.setattr(library_logger, "disabled", False)
    old_level, old_disable = library_logger.level, logging.root.manager.disable
    logging.disable(logging.NOTSET)  # setLevel/disable also clear the loggers' level caches
    library_logger.setLevel(logging.DEBUG)
    seen: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Capture(level=logging.DEBUG)
    library_logger.addHandler(handler)
    try:
        secret = "feedc0ffee0123456789abcdef012345"
        register_secret(secret)
        assert secret not in redact(f"GET /api/area/csv/{secret}/x")
        assert redact_url(f"http://h/api/{secret}/a?token={secret}") == "http://h/api/***/a"
        library_logger.debug('"GET /api/area/csv/%s/VIIRS HTTP/1.1" 200 5', secret)
    finally:
        library_logger.removeHandler(handler)
        library_logger.setLevel(old_level)
        logging.disable(old_disable)
    assert seen and all(secret not in line for line in seen)
