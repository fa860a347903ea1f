"""Fake LAADS, CMR and FIRMS servers on 127.0.0.1, with failure injection.

Reusable from any test folder (pytest puts ``tests/`` on ``sys.path`` through the root
conftest)::

    from sources.fakeservers import FakeCmr, FakeFirms, FakeLaads

    with FakeLaads(token="tok") as laads:
        laads.add_file("VNP02MOD", day, "VNP02MOD.A2024001.1200.002.2024001190000.nc", data, illumination="D")
        laads.fail_next("VNP02MOD.A2024001.1200", 503, 503)     # two 503s, then normal answers
        laads.fail_always(".json", 503)                          # every listing answers 503
        settings = Settings(archive_url=laads.url, earthdata_token="tok", ...)

Each server counts requests (``requests``, ``count(substr)``) and the most requests it served at
once (``max_concurrent``); ``hold_s`` makes every request take that long, so concurrency limits
become visible.  Failure actions: an int status, ``"timeout"`` (answer only after
``timeout_delay_s``), ``"reset"`` (close without answering), ``"truncate"`` (announce the full
length, send half), ``"html"`` (HTTP 200 login page), or a ``Reply``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

LOGIN_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Earthdata Login</title></head>"
    b"<body><form action='/oauth/login'>Username <input name='username'></form></body></html>\n"
)


@dataclass(frozen=True)
class Reply:
    """An HTTP answer."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it (``raw_path`` is exactly what went over the wire)."""

    method: str
    raw_path: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:  # clients that hung up: not an error here
        pass


class FakeServer:
    """Base: a threading HTTP server on 127.0.0.1 with request recording and failure injection."""

    def __init__(self, *, hold_s: float = 0.0, timeout_delay_s: float = 1.0) -> None:
        self.hold_s = hold_s
        self.timeout_delay_s = timeout_delay_s
        self.requests: list[Recorded] = []
        self.max_concurrent = 0
        self._active = 0
        self._lock = threading.Lock()
        self._once: list[tuple[str, list[Any]]] = []
        self._always: list[tuple[str, Any]] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> Any:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner._serve(self)

            def do_HEAD(self) -> None:
                owner._serve(self)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base(self) -> str:
        if self._server is None:
            raise RuntimeError("start the server with `with FakeX() as server:` first")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # failure injection -------------------------------------------------------------------------
    def fail_next(self, match: str, *actions: Any) -> None:
        """The next requests whose path contains ``match`` get ``actions`` in order, then normal answers."""
        with self._lock:
            self._once.append((match, list(actions)))

    def fail_always(self, match: str, action: Any) -> None:
        """Every request whose path contains ``match`` gets ``action``."""
        with self._lock:
            self._always.append((match, action))

    def clear_failures(self) -> None:
        with self._lock:
            self._once.clear()
            self._always.clear()

    def count(self, match: str = "") -> int:
        """Requests whose decoded path contains ``match``."""
        return sum(match in r.path for r in self.requests)

    def _next_action(self, path: str) -> Any:
        with self._lock:
            for match, actions in self._once:
                if match in path and actions:
                    return actions.pop(0)
            for match, action in self._always:
                if match in path:
                    return action
        return None

    # serving -----------------------------------------------------------------------------------
    def route(self, request: Recorded) -> Reply:
        raise NotImplementedError

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        request = Recorded(
            method=handler.command,
            raw_path=parts.path,
            path=unquote(parts.path),
            query=parse_qs(parts.query),
            headers={k: v for k, v in handler.headers.items()},
        )
        with self._lock:
            self.requests.append(request)
            self._active += 1
            self.max_concurrent = max(self.max_concurrent, self._active)
        try:
            if self.hold_s:
                time.sleep(self.hold_s)
            action = self._next_action(request.path)
            if action == "timeout":
                time.sleep(self.timeout_delay_s)
                action = None
            if action == "reset":
                handler.close_connection = True
                return
            if isinstance(action, int):
                reply = Reply(action, f"injected HTTP {action}\n".encode(), content_type="text/plain")
            elif action == "html":
                reply = Reply(200, LOGIN_PAGE, content_type="text/html; charset=utf-8")
            elif isinstance(action, Reply):
                reply = action
            else:
                reply = self.route(request)
            self._send(handler, reply, truncate=action == "truncate")
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with self._lock:
                self._active -= 1

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, reply: Reply, *, truncate: bool = False) -> None:
        handler.send_response(reply.status)
        handler.send_header("Content-Type", reply.content_type)
        handler.send_header("Content-Length", str(len(reply.body)))
        for key, value in reply.headers.items():
            handler.send_header(key, value)
        if truncate:
            handler.send_header("Connection", "close")
            handler.close_connection = True
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(reply.body[: len(reply.body) // 2] if truncate else reply.body)
            handler.wfile.flush()


def _doy(day: date) -> str:
    return f"{day.timetuple().tm_yday:03d}"


def granule_name(product: str, day: date, hhmm: str, stamp: str | None = None) -> str:
    """A realistic swath file name: ``VNP02MOD.A2024001.1200.002.2024001190000.nc``."""
    version = {"VNP": "002", "VJ1": "021", "VJ2": "021"}.get(product[:3], "001")
    stamp = stamp or f"{day:%Y}{_doy(day)}190000"
    return f"{product}.A{day:%Y}{_doy(day)}.{hhmm}.{version}.{stamp}.nc"


# --- LAADS ---------------------------------------------------------------------------------------

ARCHIVE_SETS = {
    "VNP02MOD": "5200", "VNP03MOD": "5200", "VJ102MOD": "5201", "VJ103MOD": "5201",
    "VJ202MOD": "5200", "VJ203MOD": "5200", "NPP_VMAES_L1": "5000", "MCD64A1": "61",
}  # fmt: skip


class FakeLaads(FakeServer):
    """LAADS archive: day listings (``.json`` current/legacy shape, ``.csv``) and bearer-protected files.

    ``auth_failure``: ``"html"`` answers a bad/missing token with an HTTP 200 login page (the
    real quirk), ``"401"`` with a 401.  ``url`` is the archive root (``…/archive/allData``).
    """

    ROOT = "/archive/allData"
    API = "/api/v2/content/archives/allData"

    def __init__(self, token: str | None = "test-token", *, listing_shape: str = "content", auth_failure: str = "html", **kw: Any) -> None:
        super().__init__(**kw)
        self.token = token
        self.listing_shape = listing_shape
        self.auth_failure = auth_failure
        self.files: dict[str, bytes] = {}  # path under ROOT -> bytes
        self.listings: dict[str, list[dict[str, Any]]] = {}  # "{set}/{product}/{yyyy}/{ddd}" -> entries

    @property
    def url(self) -> str:
        return self.base + self.ROOT

    def day_folder(self, product: str, day: date) -> str:
        return f"{ARCHIVE_SETS[product]}/{product}/{day:%Y}/{_doy(day)}"

    def add_file(
        self,
        product: str,
        day: date,
        name: str,
        content: bytes,
        *,
        illumination: str | None = None,
        size: int | None = None,
        md5: str | None = None,
        with_md5: bool = True,
        link: str = "api",
        listed: bool = True,
    ) -> str:
        """Serve ``content`` as ``name`` and list it (``size``/``md5`` override what the listing claims).

        ``link``: ``"api"`` (absolute downloadsLink on this host), ``"path"`` (host-less path),
        ``"none"``.  Returns the file's archive URL.
        """
        folder = self.day_folder(product, day)
        self.files[f"{folder}/{name}"] = content
        if listed:
            entry: dict[str, Any] = {
                "name": name,
                "size": len(content) if size is None else size,
                "mtime": 1704092000,
                "last-modified": "2024-01-01 06:53",
                "archiveSets": int(ARCHIVE_SETS[product]),
            }
            if with_md5:
                entry["md5sum"] = md5 or hashlib.md5(content).hexdigest()
            if illumination:
                entry["illuminations"] = illumination
            if link == "api":
                entry["downloadsLink"] = f"{self.base}{self.API}/{folder}/{name}"
            elif link == "path":
                entry["downloadsLink"] = f"{self.API}/{folder}/{name}"
            self.listings.setdefault(folder, []).append(entry)
        return f"{self.url}/{folder}/{name}"

    def add_entry(self, product: str, day: date, entry: Mapping[str, Any]) -> None:
        """Add a raw listing entry (e.g. a name with a path in it)."""
        self.listings.setdefault(self.day_folder(product, day), []).append(dict(entry))

    def _listing(self, folder: str, fmt: str) -> Reply:
        entries = self.listings.get(folder)
        if entries is None:
            return Reply(404, b"Not Found", content_type="text/plain")
        if fmt == "csv":
            cols = ["name", "size", "last_modified", "md5sum", "illuminations", "downloadsLink"]
            lines = [", ".join(cols)]
            for e in entries:
                row = {**e, "last_modified": e.get("last-modified", "")}
                lines.append(", ".join(str(row.get(c, "")) for c in cols))
            return Reply(200, ("\n".join(lines) + "\n").encode(), content_type="text/csv")
        if self.listing_shape == "legacy":
            body: Any = [{"name": e["name"], "size": e["size"], "last-modified": e.get("last-modified", "")} for e in entries]
        else:
            body = {"content": [{k.replace("last-modified", "last_modified"): v for k, v in e.items()} for e in entries]}
        return Reply(200, json.dumps(body).encode(), content_type="application/json")

    def route(self, request: Recorded) -> Reply:
        path = request.path
        for prefix in (self.ROOT + "/", self.API + "/"):
            if path.startswith(prefix):
                rel = path[len(prefix) :]
                break
        else:
            return Reply(404, b"Not Found", content_type="text/plain")
        for fmt in ("json", "csv"):
            if rel.endswith("." + fmt) and rel.count("/") == 3:
                return self._listing(rel[: -len(fmt) - 1], fmt)
        if rel not in self.files:
            return Reply(404, b"Not Found", content_type="text/plain")
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            if self.auth_failure == "html":
                return Reply(200, LOGIN_PAGE, content_type="text/html; charset=utf-8")
            return Reply(401, b"Unauthorized", content_type="text/plain")
        return Reply(200, self.files[rel], content_type="application/x-netcdf")


# --- CMR -----------------------------------------------------------------------------------------


@dataclass
class _Granule:
    short_name: str
    version: str
    name: str
    start: datetime
    day_night: str
    bbox: tuple[float, float, float, float]
    entry: dict[str, Any]


class FakeCmr(FakeServer):
    """CMR ``/search/granules.json`` with ``CMR-Search-After`` paging, plus ``/data/{name}`` downloads."""

    def __init__(self, token: str | None = "test-token", **kw: Any) -> None:
        super().__init__(**kw)
        self.token = token
        self.granules: list[_Granule] = []
        self.files: dict[str, bytes] = {}

    @property
    def url(self) -> str:
        return self.base + "/search"

    def add_granule(
        self,
        short_name: str,
        version: str,
        name: str,
        start: datetime,
        *,
        day_night: str = "DAY",
        bbox: tuple[float, float, float, float] = (-180.0, -90.0, 180.0, 90.0),
        content: bytes | None = None,
        decoy_links: bool = True,
    ) -> str:
        """Add a granule record; ``content`` is served at its data link (bearer token required)."""
        href = f"{self.base}/data/{name}"
        links: list[dict[str, Any]] = []
        if decoy_links:
            links += [
                # collection-level links carried by every granule: must be ignored
                {"rel": "http://esipfed.org/ns/fedsearch/1.1/data#", "hreflang": "en-US", "inherited": True,
                 "href": f"{self.base}/archive/allData/5200/{short_name}/{name}"},
                {"rel": "http://esipfed.org/ns/fedsearch/1.1/documentation#", "hreflang": "en-US", "inherited": True,
                 "href": "https://ladsweb.modaps.eosdis.nasa.gov/search/order/2/" + short_name},
                {"rel": "http://esipfed.org/ns/fedsearch/1.1/s3#", "hreflang": "en-US", "href": f"s3://prod-lads/{short_name}/{name}"},
                {"rel": "http://esipfed.org/ns/fedsearch/1.1/service#", "hreflang": "en-US",
                 "href": f"{self.base}/opendap/{name}.html"},
            ]  # fmt: skip
        links.append({"rel": "http://esipfed.org/ns/fedsearch/1.1/data#", "type": "application/x-netcdf", "hreflang": "en-US", "href": href})
        w, s, e, n = bbox
        entry = {
            "id": f"G{len(self.granules) + 1000}-LAADS",
            "title": f"LAADS:{len(self.granules) + 9000}",
            "producer_granule_id": name,
            "collection_concept_id": "C2105092163-LAADS",
            "data_center": "LAADS",
            "time_start": start.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "time_end": (start + timedelta(minutes=6)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "granule_size": f"{len(content or b'') / 1e6:.6f}",
            "day_night_flag": day_night,
            "coordinate_system": "GEODETIC",
            "online_access_flag": True,
            "boxes": [f"{s} {w} {n} {e}"],
            "links": links,
        }
        self.granules.append(_Granule(short_name, version, name, start, day_night, bbox, entry))
        if content is not None:
            self.files[name] = content
        return href

    def _search(self, request: Recorded) -> Reply:
        q = {k: v[-1] for k, v in request.query.items()}
        after = request.headers.get("CMR-Search-After")
        if after and ("page_num" in q or "offset" in q):
            return Reply(400, b'{"errors": ["search-after cannot be combined with page_num or offset"]}', content_type="application/json")
        hits = [g for g in self.granules if g.short_name == q.get("short_name")]
        if "version" in q:
            hits = [g for g in hits if g.version == q["version"]]
        if "temporal" in q:
            lo, hi = (datetime.fromisoformat(t.replace("Z", "")) for t in q["temporal"].split(","))
            hits = [g for g in hits if g.start <= hi and g.start + timedelta(minutes=6) >= lo]
        if "bounding_box" in q:
            w, s, e, n = (float(v) for v in q["bounding_box"].split(","))
            hits = [g for g in hits if g.bbox[0] <= e and g.bbox[2] >= w and g.bbox[1] <= n and g.bbox[3] >= s]
        if "day_night_flag" in q:
            hits = [g for g in hits if g.day_night.lower() == q["day_night_flag"].lower()]
        hits.sort(key=lambda g: (g.start, g.name))
        page_size = int(q.get("page_size", 10))
        first = json.loads(after)[0] if after else 0
        page = hits[first : first + page_size]
        headers = {"CMR-Hits": str(len(hits)), "CMR-Took": "3"}
        if page:
            headers["CMR-Search-After"] = json.dumps([first + len(page)])
        feed = {"feed": {"updated": "2024-01-02T00:00:00.000Z", "id": self.url + "/granules.json", "title": "ECHO granule metadata",
                         "entry": [g.entry for g in page]}}  # fmt: skip
        return Reply(200, json.dumps(feed).encode(), headers=headers, content_type="application/json;charset=utf-8")

    def route(self, request: Recorded) -> Reply:
        if request.path == "/search/granules.json":
            return self._search(request)
        if request.path.startswith("/data/"):
            name = request.path[len("/data/") :]
            if name not in self.files:
                return Reply(404, b"Not Found", content_type="text/plain")
            if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
                return Reply(200, LOGIN_PAGE, content_type="text/html; charset=utf-8")
            return Reply(200, self.files[name], content_type="application/x-netcdf")
        return Reply(404, b"Not Found", content_type="text/plain")


# --- FIRMS ---------------------------------------------------------------------------------------

AREA_HEADER = "latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,bright_ti5,frp,daynight"
_SATELLITE = {"SNPP": "N", "NOAA20": "N20", "NOAA21": "N21"}


@dataclass(frozen=True)
class AreaRequest:
    source: str
    area: str
    day_range: int
    date: date


class FakeFirms(FakeServer):
    """FIRMS area API: ``/api/area/csv/{MAP_KEY}/{SOURCE}/{W,S,E,N}/{DAY_RANGE}/{DATE}``.

    Plain-text errors as FIRMS sends them: ``Invalid MAP_KEY.`` (``invalid_key_status``),
    ``Invalid area.`` (also for ``%2C``-encoded commas), ``Invalid day range. Expects [1..5].``,
    ``Exceeding allowed transaction limit.`` after ``transaction_limit`` answered requests
    (``limit_status``).
    """

    def __init__(
        self,
        map_key: str = "0123456789abcdef0123456789abcdef",
        *,
        invalid_key_status: int = 400,
        limit_status: int = 403,
        transaction_limit: int | None = None,
        max_day_range: int = 5,
        **kw: Any,
    ) -> None:
        super().__init__(**kw)
        self.map_key = map_key
        self.invalid_key_status = invalid_key_status
        self.limit_status = limit_status
        self.transaction_limit = transaction_limit
        self.max_day_range = max_day_range
        self.rows: dict[str, list[tuple[float, float, date, str]]] = {}
        self.area_requests: list[AreaRequest] = []
        self.transactions = 0
        # /api/data_availability: every source from VIIRS' start to today unless a test narrows it
        self.availability: dict[str, tuple[date, date]] = {
            f"VIIRS_{s}_{m}": (date(2012, 1, 20), date.today()) for s in _SATELLITE for m in ("NRT", "SP")
        }

    @property
    def url(self) -> str:
        return self.base

    def add_detection(self, source: str, lat: float, lon: float, acq_date: date, frp: float = 10.0, acq_time: str = "1230") -> None:
        """Add one VIIRS detection to ``source`` (e.g. ``VIIRS_SNPP_NRT``)."""
        sat = _SATELLITE[source.split("_")[1]]
        version = "2.0NRT" if source.endswith("_NRT") else "2.0"
        line = f"{lat:.5f},{lon:.5f},330.10,0.40,0.50,{acq_date:%Y-%m-%d},{acq_time},{sat},VIIRS,n,{version},290.00,{frp:.2f},D"
        self.rows.setdefault(source, []).append((lat, lon, acq_date, line))

    def add_detections(self, source: str, detections: Iterable[tuple[float, float, date, float]]) -> None:
        for lat, lon, day, frp in detections:
            self.add_detection(source, lat, lon, day, frp)

    def _text(self, status: int, text: str) -> Reply:
        return Reply(status, text.encode(), content_type="text/plain;charset=UTF-8")

    def route(self, request: Recorded) -> Reply:
        parts = request.raw_path.split("/")
        if len(parts) == 6 and parts[1:4] == ["api", "data_availability", "csv"]:
            if parts[4] != self.map_key:
                return self._text(self.invalid_key_status, "Invalid MAP_KEY.")
            rows = [f"{k}, {lo:%Y-%m-%d}, {hi:%Y-%m-%d}" for k, (lo, hi) in sorted(self.availability.items())]
            return Reply(200, "\n".join(["data_id,min_date,max_date", *rows]).encode() + b"\n", content_type="text/csv")
        if len(parts) not in (8, 9) or parts[1:4] != ["api", "area", "csv"]:
            return Reply(404, b"Not Found", content_type="text/plain")
        key, source, area, day_range = parts[4:8]
        date_text = parts[8] if len(parts) == 9 else None
        if key != self.map_key:
            return self._text(self.invalid_key_status, "Invalid MAP_KEY.")
        self.transactions += 1
        if self.transaction_limit is not None and self.transactions > self.transaction_limit:
            return self._text(self.limit_status, "Exceeding allowed transaction limit.")
        if source not in {f"VIIRS_{s}_{m}" for s in _SATELLITE for m in ("NRT", "SP")}:
            return self._text(400, "Invalid source.")
        try:
            w, s, e, n = (float(v) for v in area.split(","))
            if not (w < e and s < n):
                raise ValueError
        except ValueError:
            return self._text(400, "Invalid area.")
        try:
            n_days = int(day_range)
            if not 1 <= n_days <= self.max_day_range:
                raise ValueError
        except ValueError:
            return self._text(400, f"Invalid day range. Expects [1..{self.max_day_range}].")
        start = date.fromisoformat(date_text) if date_text else date.today()
        self.area_requests.append(AreaRequest(source, area, n_days, start))
        last = start + timedelta(days=n_days - 1)
        lines = [AREA_HEADER] + [
            line for lat, lon, day, line in self.rows.get(source, []) if start <= day <= last and w <= lon <= e and s <= lat <= n
        ]
        return Reply(200, ("\n".join(lines) + "\n").encode(), content_type="text/csv")
