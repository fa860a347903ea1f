"""The one HTTP client every data source uses.

* Retries 429, 5xx, timeouts and dropped connections with exponential back-off and full jitter
  (``sleep = uniform(0, min(max_delay, base_delay * 2**attempt))``), at most ``retries`` times,
  then raises :class:`SourceUnavailableError` (:class:`RateLimitError` when the last answer was 429).
* Limits concurrent requests per host with one :class:`threading.BoundedSemaphore` per host,
  held for the whole request including the streamed body.
* Downloads stream into a temp file in the destination folder, check size/MD5 and ``os.replace``
  it into place; an HTML page served with HTTP 200 where data was expected (the Earthdata login
  quirk) raises :class:`AuthenticationError` naming the file.  Nothing is left behind on failure.
* Secrets (tokens, MAP_KEYs) are redacted from every message this module produces and from the
  ``urllib3`` debug log lines, which print request paths.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from pydantic import SecretStr

from banet_ops import __version__
from banet_ops.errors import (
    AuthenticationError,
    IntegrityError,
    NotFoundError,
    RateLimitError,
    SourceError,
    SourceUnavailableError,
)
from banet_ops.util import atomic_path

if TYPE_CHECKING:
    from banet_ops.settings import Settings

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
CHUNK = 1 << 20
HTML_MARKERS = (b"<!doctype", b"<html")
# hosts that legitimately receive an Earthdata bearer token after a redirect
EARTHDATA_SUFFIXES = (".earthdata.nasa.gov", ".earthdatacloud.nasa.gov", ".eosdis.nasa.gov")


# --- secret redaction -----------------------------------------------------------------------


class _Redactor(logging.Filter):
    """Replaces registered secret strings in log records (installed on our and urllib3's loggers)."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, secret: str) -> None:
        if len(secret) >= 4:  # never redact trivially short strings out of every message
            with self._lock:
                self._secrets.add(secret)

    def redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            try:
                message = record.getMessage()
            except Exception:  # a broken format string is not ours to fix
                return True
            redacted = self.redact(message)
            if redacted != message:
                record.msg, record.args = redacted, None
        return True


REDACTOR = _Redactor()
for _name in ("urllib3.connectionpool", "urllib3.util.retry", "requests", __name__, "banet_ops.sources"):
    logging.getLogger(_name).addFilter(REDACTOR)


def register_secret(secret: SecretStr | str | None) -> None:
    """Make ``secret`` redacted from this module's messages and from HTTP library logs."""
    if secret is None:
        return
    REDACTOR.add(secret.get_secret_value() if isinstance(secret, SecretStr) else secret)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    return REDACTOR.redact(text)


def redact_url(url: str) -> str:
    """A URL safe to log: registered secrets removed, query string dropped."""
    return redact(url.split("?", 1)[0])


# --- helpers ---------------------------------------------------------------------------------


def host_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url`` (the unit of the concurrency limit)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def looks_like_html(content_type: str | None, head: bytes) -> bool:
    """True when a response is an HTML page (login/EULA) rather than data."""
    if content_type and content_type.split(";", 1)[0].strip().lower() in ("text/html", "application/xhtml+xml"):
        return True
    return head.lstrip()[:16].lower().startswith(HTML_MARKERS)


def md5_file(path: Path) -> str:
    """Hex MD5 of a file (LAADS publishes MD5 sums; not used for security)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class HttpResponse:
    """A fully read response."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    url: str

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


class _Session(requests.Session):
    """Keeps the bearer token across redirects between Earthdata hosts (requests drops it on any host change)."""

    def should_strip_auth(self, old_url: str, new_url: str) -> bool:
        new = urlsplit(new_url)
        if new.scheme == "https" and (new.hostname or "").endswith(EARTHDATA_SUFFIXES):
            old_host = urlsplit(old_url).hostname or ""
            if old_host.endswith(EARTHDATA_SUFFIXES):
                return False
        return bool(super().should_strip_auth(old_url, new_url))


class _AttemptFailedError(Exception):
    """Internal: one attempt failed in a way worth retrying."""

    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


# --- the client ------------------------------------------------------------------------------


class HttpClient:
    """Thread-safe HTTP client with retries, back-off, per-host limits and secret redaction."""

    def __init__(
        self,
        *,
        retries: int = 5,
        concurrency: int = 4,
        timeout: float = 120.0,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        secrets: Iterable[SecretStr | str | None] = (),
        user_agent: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.retries = retries
        self.concurrency = concurrency
        self.timeout = timeout
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.user_agent = user_agent or f"banet-ops/{__version__}"
        self._sleep = sleep
        self._local = threading.local()
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self.attempts = 0  # total HTTP attempts made (observability and tests)
        for secret in secrets:
            register_secret(secret)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> HttpClient:
        """A client configured from ``BANET_HTTP_*`` settings, knowing the settings' secrets."""
        options: dict[str, Any] = {
            "retries": settings.http_retries,
            "concurrency": settings.http_concurrency,
            "timeout": settings.http_timeout_s,
            "secrets": (settings.earthdata_token, settings.firms_map_key),
        }
        options.update(overrides)
        return cls(**options)

    # plumbing --------------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = _Session()
            adapter = requests.adapters.HTTPAdapter(pool_maxsize=max(self.concurrency, 4), max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            session.headers["User-Agent"] = self.user_agent
            self._local.session = session
        return session

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        """Hold one of the ``concurrency`` slots of ``url``'s host."""
        host = host_of(url)
        with self._lock:
            sem = self._semaphores.get(host)
            if sem is None:
                sem = self._semaphores[host] = threading.BoundedSemaphore(self.concurrency)
        with sem:
            yield

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based): full jitter, capped."""
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        delay = random.uniform(0, ceiling)  # noqa: S311 - jitter, not cryptography
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_delay))
        return delay

    def _run(self, url: str, what: str, attempt_fn: Callable[[], Any]) -> Any:
        attempt = 0
        while True:
            try:
                with self._lock:
                    self.attempts += 1
                return attempt_fn()
            except _AttemptFailedError as exc:
                last = exc
            if attempt >= self.retries:
                break
            delay = self.backoff(attempt, last.retry_after)
            attempt += 1
            log.warning("%s: %s; retry %d/%d in %.2fs", what, last.reason, attempt, self.retries, delay)
            self._sleep(delay)
        message = f"{what}: expected an answer from {redact_url(url)}, found {last.reason} after {self.retries + 1} attempts"
        hint = "the source is overloaded or down; the task will be retried later"
        if last.status == 429:
            raise RateLimitError(message, hint=hint)
        raise SourceUnavailableError(message, hint=hint)

    @staticmethod
    def _retry_after(response: requests.Response) -> float | None:
        value = response.headers.get("Retry-After")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    def _check_status(self, response: requests.Response, url: str, what: str, ok: Collection[int]) -> None:
        status = response.status_code
        if status in ok:
            return
        if status in RETRY_STATUSES or status >= 500:
            raise _AttemptFailedError(f"HTTP {status}", status, self._retry_after(response))
        if status in (401, 403):
            raise AuthenticationError(
                f"{what}: expected data from {redact_url(url)}, found HTTP {status} (credentials refused)",
                hint="check BANET_EARTHDATA_TOKEN (Earthdata Login token, valid 60 days) and accepted EULAs",
            )
        if status == 404:
            raise NotFoundError(f"{what}: expected {redact_url(url)} to exist, found HTTP 404", hint="check the URL settings and the date")
        raise SourceError(
            f"{what}: expected HTTP 200 from {redact_url(url)}, found HTTP {status}: {redact(response.text[:200])!r}",
            hint="the request was refused; check the parameters",
        )

    @staticmethod
    def _transport_reason(exc: requests.RequestException) -> str:
        kind = "timeout" if isinstance(exc, requests.Timeout) else "connection error"
        return f"{kind} ({type(exc).__name__}: {redact(str(exc))[:200]})"

    # public ----------------------------------------------------------------------------------
    def get(
        self,
        url: str,
        *,
        what: str,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
        ok_statuses: Collection[int] = (200,),
    ) -> HttpResponse:
        """GET ``url`` and read the whole body; statuses in ``ok_statuses`` are returned, others raise.

        ``what`` names the thing being fetched in messages (never a secret).
        """

        def attempt() -> HttpResponse:
            try:
                with self.slot(url):
                    response = self._session().get(url, headers=dict(headers or {}), params=params, timeout=self.timeout)
                    content = response.content
            except requests.RequestException as exc:
                raise _AttemptFailedError(self._transport_reason(exc)) from None
            self._check_status(response, url, what, ok_statuses)
            return HttpResponse(response.status_code, dict(response.headers), content, response.url)

        result: HttpResponse = self._run(url, what, attempt)
        return result

    def download(
        self,
        url: str,
        dest: Path,
        *,
        headers: Mapping[str, str] | None = None,
        expected_size: int | None = None,
        expected_md5: str | None = None,
        reject_html: bool = True,
        what: str | None = None,
    ) -> Path:
        """Stream ``url`` into ``dest`` atomically (temp file beside it, then ``os.replace``).

        Raises AuthenticationError for an HTML page where data was expected, IntegrityError when
        the size or MD5 differs from the expected values; ``dest`` is untouched on any failure.
        """
        name = what or dest.name

        def attempt() -> Path:
            with atomic_path(dest) as tmp:
                self._download_once(url, tmp, name, headers, expected_size, expected_md5, reject_html)
            return dest

        result: Path = self._run(url, name, attempt)
        return result

    def _download_once(
        self,
        url: str,
        tmp: Path,
        name: str,
        headers: Mapping[str, str] | None,
        expected_size: int | None,
        expected_md5: str | None,
        reject_html: bool,
    ) -> None:
        """One try: stream ``url`` into ``tmp``, checked (HTML, size, MD5) and flushed to disk."""
        digest = hashlib.md5(usedforsecurity=False)
        size = 0
        try:
            with self.slot(url), self._session().get(url, headers=dict(headers or {}), stream=True, timeout=self.timeout) as response:
                self._check_status(response, url, name, (200,))
                with open(tmp, "wb") as fh:
                    first = True
                    for chunk in response.iter_content(CHUNK):
                        if first and reject_html and looks_like_html(response.headers.get("Content-Type"), chunk):
                            raise AuthenticationError(
                                f"{name}: expected the data file, found an HTML page (Earthdata login or EULA) "
                                f"from {redact_url(url)}",
                                hint="set a valid BANET_EARTHDATA_TOKEN and accept the product's EULA in your Earthdata profile",
                            )
                        first = False
                        fh.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                    fh.flush()
                    os.fsync(fh.fileno())
        except requests.RequestException as exc:
            raise _AttemptFailedError(self._transport_reason(exc)) from None
        if size == 0 and not expected_size:
            raise IntegrityError(f"{name}: expected a data file, found an empty body", hint="retry the download later")
        if expected_size is not None and size != expected_size:
            raise IntegrityError(
                f"{name}: expected {expected_size} bytes, found {size} (truncated or changed download)",
                hint="the partial file was removed; retry the download",
            )
        if expected_md5 is not None and digest.hexdigest().lower() != expected_md5.lower():
            raise IntegrityError(
                f"{name}: expected MD5 {expected_md5.lower()}, found {digest.hexdigest()}",
                hint="the corrupt file was removed; retry the download",
            )
