"""FIRMS active fires: the area API (``/api/area/csv/…``) or a local folder of FIRMS CSV files.

The MAP_KEY is a secret: it is only put into the request URL at fetch time, never into a
RemoteItem, a log line or an error message.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

from banet_ops.errors import AuthenticationError, ConfigError, IntegrityError, NotFoundError, RateLimitError, SourceError, SourceUnavailableError
from banet_ops.http import HttpClient, redact
from banet_ops.regions import Region
from banet_ops.sources.base import Discovery, RemoteItem, as_secret, cache_path, check_safe_name, file_url_path, log
from banet_ops.util import atomic_write

FIRMS_SOURCES = tuple(f"VIIRS_{sat}_{mode}" for sat in ("SNPP", "NOAA20", "NOAA21") for mode in ("NRT", "SP"))
MAX_DAY_RANGE = 5
CSV_HEADERS = ("latitude,", "country_id,")
# A window is re-fetched until this many days after its last day: NRT detections keep arriving.
SETTLE_DAYS = 2


def firms_windows(first: date, last: date, max_days: int = MAX_DAY_RANGE) -> list[tuple[date, int]]:
    """``(start, n_days)`` windows of at most ``max_days`` covering ``first..last`` (inclusive)."""
    if last < first:
        raise ConfigError(f"expected first <= last, found {first} > {last}")
    windows = []
    start = first
    while start <= last:
        n = min(max_days, (last - start).days + 1)
        windows.append((start, n))
        start += timedelta(days=n)
    return windows


def area_param(region: Region) -> str:
    """FIRMS ``AREA``: ``west,south,east,north`` with literal commas."""
    return ",".join(f"{v:.6f}".rstrip("0").rstrip(".") for v in region.bbox)


def classify_firms_body(status: int, body: bytes, what: str) -> None:
    """Raise the error a FIRMS answer means; return when it is CSV data (possibly header only)."""
    text = body.lstrip(b"\xef\xbb\xbf").lstrip().decode("utf-8", errors="replace")
    if status == 200 and text.startswith(CSV_HEADERS):
        return
    first_line = redact(text.strip().splitlines()[0][:160]) if text.strip() else "an empty body"
    if "invalid map_key" in text.lower() or "map_key is invalid" in text.lower():
        raise AuthenticationError(
            f"{what}: expected CSV detections, found FIRMS answer {first_line!r} (HTTP {status})",
            hint="set a valid BANET_FIRMS_MAP_KEY (free at firms.modaps.eosdis.nasa.gov/api/map_key/)",
        )
    if "transaction limit" in text.lower():
        raise RateLimitError(
            f"{what}: expected CSV detections, found FIRMS answer {first_line!r} (HTTP {status})",
            hint="the MAP_KEY's 10-minute transaction budget is spent; retry after the window",
        )
    if text.startswith(CSV_HEADERS):  # CSV with an odd status: trust the body
        return
    if not text.strip():
        raise SourceUnavailableError(f"{what}: expected CSV detections, found an empty body (HTTP {status})", hint="retry later")
    raise SourceError(
        f"{what}: expected CSV detections starting with 'latitude,', found FIRMS answer {first_line!r} (HTTP {status})",
        hint="the request was refused as invalid; check the region bbox, the date and BANET_FIRMS_SOURCES",
    )


class FirmsApi:
    """FIRMS area API, one CSV per FIRMS source and window of at most 5 days."""

    kind = "firms-api"

    def __init__(
        self,
        base_url: str,
        client: HttpClient,
        map_key: SecretStr | str | None,
        *,
        sources: Sequence[str] = ("VIIRS_SNPP_NRT", "VIIRS_NOAA20_NRT"),
        max_days: int = MAX_DAY_RANGE,
        settle_days: int = SETTLE_DAYS,
        switch_nrt_sp: bool = True,
    ) -> None:
        unknown = [s for s in sources if s not in FIRMS_SOURCES]
        if unknown:
            raise ConfigError(f"expected FIRMS sources among {FIRMS_SOURCES}, found {unknown}", hint="check BANET_FIRMS_SOURCES")
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.map_key = as_secret(map_key)
        self.sources = tuple(sources)
        self.max_days = max(1, min(max_days, MAX_DAY_RANGE))
        self.settle_days = settle_days
        self.switch_nrt_sp = switch_nrt_sp
        self._availability: dict[str, tuple[date, date]] | None = None
        self._availability_read = False
        satellites = [s.rsplit("_", 1)[0] for s in self.sources]
        if len(set(satellites)) < len(satellites):
            log.warning("FIRMS sources %s name a satellite twice (NRT and SP): overlapping days would count FRP twice", self.sources)

    def availability(self) -> dict[str, tuple[date, date]] | None:
        """``{source: (min_date, max_date)}`` from ``/api/data_availability``, read once; None when unknown."""
        if self._availability_read or self.map_key is None:
            return self._availability
        self._availability_read = True
        url = f"{self.base_url}/api/data_availability/csv/{self.map_key.get_secret_value()}/all"
        try:
            response = self.client.get(url, what="FIRMS data availability", ok_statuses=(200, 400, 403))
        except SourceError as exc:
            log.warning("FIRMS data availability unknown (%s); using the configured sources as they are", exc.message)
            return None
        text = response.text.lstrip("\ufeff").strip()
        if not text.startswith("data_id"):
            classify_firms_body(response.status, response.content, "FIRMS data availability")
            log.warning("FIRMS data availability: unexpected answer %r; using the configured sources", redact(text[:80]))
            return None
        table: dict[str, tuple[date, date]] = {}
        for row in csv.DictReader(io.StringIO(text), skipinitialspace=True):
            try:
                table[str(row["data_id"]).strip()] = (date.fromisoformat(str(row["min_date"]).strip()), date.fromisoformat(str(row["max_date"]).strip()))
            except (KeyError, ValueError, TypeError):
                continue
        self._availability = table
        return table

    def plan(self, first: date, last: date) -> list[tuple[str, date, int]]:
        """``(source, start, n_days)`` requests covering ``first..last``.

        A configured NRT source is replaced by its SP twin on days NRT no longer holds (and the
        reverse), per the availability table, unless the twin is configured too.
        """
        table = self.availability() if self.switch_nrt_sp else None
        plan: list[tuple[str, date, int]] = []
        for source in self.sources:
            base, mode = source.rsplit("_", 1)
            twin = f"{base}_{'SP' if mode == 'NRT' else 'NRT'}"
            runs: list[tuple[str, date, date]] = []
            day = first
            while day <= last:
                chosen = source
                if table and twin not in self.sources and source in table and twin in table:
                    lo, hi = table[source]
                    tlo, thi = table[twin]
                    if not lo <= day <= hi and tlo <= day <= thi:
                        chosen = twin
                if runs and runs[-1][0] == chosen:
                    runs[-1] = (chosen, runs[-1][1], day)
                else:
                    runs.append((chosen, day, day))
                day += timedelta(days=1)
            for chosen, start, end in runs:
                plan.extend((chosen, s, n) for s, n in firms_windows(start, end, self.max_days))
        return plan

    def discover(self, region: Region, day: date) -> Discovery:
        """One item per FIRMS source for ``day``."""
        return self.discover_range(region, day, day)

    def discover_range(self, region: Region, first: date, last: date) -> Discovery:
        """One item per FIRMS source and window (at most 5 days) covering ``first..last``."""
        area = area_param(region)
        tag = area.replace(",", "_")
        found = Discovery()
        for source, start, n in self.plan(first, last):
            name = f"FIRMS_{source}_{start:%Y%j}_{n}d_{tag}.csv"
            found.append(
                RemoteItem(
                    name=name,
                    # the MAP_KEY is inserted by fetch(); this URL is safe to log and store
                    url=f"{self.base_url}/api/area/csv/MAP_KEY/{source}/{area}/{n}/{start:%Y-%m-%d}",
                    product=source,
                    day=start,
                    key=f"{source}.{start:%Y%j}.{n}d",
                    source=self.kind,
                    extra={
                        "firms_source": source,
                        "area": area,
                        "day_range": n,
                        "first_day": start.isoformat(),
                        "last_day": (start + timedelta(days=n - 1)).isoformat(),
                    },
                )
            )
        return found

    def _fresh(self, path: Path, last_day: date) -> bool:
        """A cached window is final once it was fetched ``settle_days`` after its last day."""
        try:
            stat = path.stat()
        except FileNotFoundError:
            return False
        fetched = datetime.fromtimestamp(stat.st_mtime, tz=UTC).date()
        return stat.st_size > 0 and fetched > last_day + timedelta(days=self.settle_days)

    def is_cached(self, item: RemoteItem, cache_dir: Path) -> bool:
        """True when ``fetch`` would use the cached copy (the window is settled and was fetched after)."""
        return self._fresh(cache_path(item, cache_dir), date.fromisoformat(str(item.extra["last_day"])))

    def fetch(self, item: RemoteItem, cache_dir: Path) -> Path:
        """The window's CSV in ``{cache_dir}/{source}/`` (atomic); re-fetched while NRT data may still change."""
        dest = cache_path(item, cache_dir)
        source, area, n = str(item.extra["firms_source"]), str(item.extra["area"]), int(item.extra["day_range"])
        start = item.day
        if self.is_cached(item, cache_dir):
            log.debug("cache hit: %s", item.name)
            return dest
        if self.map_key is None:
            raise ConfigError(
                f"{item.name}: expected BANET_FIRMS_MAP_KEY for the FIRMS area API, found none",
                hint="set BANET_FIRMS_MAP_KEY, or BANET_FIRMS_URL=file:///folder of FIRMS CSV files",
            )
        # Commas stay literal: FIRMS answers "Invalid area." to %2C.
        url = f"{self.base_url}/api/area/csv/{self.map_key.get_secret_value()}/{source}/{area}/{n}/{start:%Y-%m-%d}"
        response = self.client.get(url, what=item.name, ok_statuses=(200, 400, 403))
        classify_firms_body(response.status, response.content, item.name)
        return atomic_write(dest, response.content, fsync=True)


_DAY_STAMP = re.compile(r"(?<!\d)((?:19|20)\d{2})(\d{3})(?!\d)(?:_(\d{1,2})d)?")
_DATE_STAMP = re.compile(r"(?<!\d)((?:19|20)\d{2})-?(\d{2})-?(\d{2})(?!\d)")
_SATELLITE_HINTS = (
    (("SUOMI", "VNP14", "_SNPP_", "SV-C2"), "VIIRS_SNPP"),
    (("J1_", "VJ114", "NOAA20", "J1V-C2"), "VIIRS_NOAA20"),
    (("J2_", "VJ214", "NOAA21", "J2V-C2"), "VIIRS_NOAA21"),
)


def name_covers(name: str, day: date) -> bool | None:
    """Whether a FIRMS file name's date stamp covers ``day``; None when the name has no stamp."""
    stamps = False
    for match in _DAY_STAMP.finditer(name):
        try:
            start = datetime.strptime(match[1] + match[2], "%Y%j").date()
        except ValueError:
            continue
        stamps = True
        n = int(match[3] or 1)
        if start <= day < start + timedelta(days=n):
            return True
    for match in _DATE_STAMP.finditer(name):
        try:
            stamp = date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            continue
        stamps = True
        if stamp == day:
            return True
    return False if stamps else None


class FirmsFolder:
    """A folder of FIRMS files (area-API CSV, public region CSV, LANCE daily TXT).

    ``discover`` returns the files whose name carries a stamp covering the day (``YYYYDDD``,
    ``YYYYDDD_{n}d``, ``YYYY-MM-DD``/``YYYYMMDD``) and every file without a date stamp (archive
    downloads); readers keep the rows whose ``acq_date`` is the day.
    """

    kind = "firms-folder"
    PATTERNS = ("*.csv", "*.txt", "*.CSV", "*.TXT")

    def __init__(self, folder: Path | str) -> None:
        self.folder = file_url_path(folder) if isinstance(folder, str) and folder.startswith("file:") else Path(folder)

    def discover(self, region: Region, day: date) -> Discovery:
        """Files that may hold detections of ``day``."""
        found = Discovery()
        if not self.folder.is_dir():
            found.missing.append(str(self.folder))
            return found
        paths = sorted({p for pattern in self.PATTERNS for p in self.folder.glob(pattern) if p.is_file()})
        for path in paths:
            if path.name.startswith(".") or name_covers(path.name, day) is False:
                continue
            upper = path.name.upper()
            satellite = next((s for hints, s in _SATELLITE_HINTS if any(h in upper for h in hints)), None)
            found.append(
                RemoteItem(
                    name=path.name,
                    url=path.as_uri(),
                    product="FIRMS",
                    day=day,
                    key=path.stem,
                    source=self.kind,
                    size=path.stat().st_size,
                    extra={"firms_source": satellite},
                )
            )
        return found

    def is_cached(self, item: RemoteItem, cache_dir: Path | None = None) -> bool:
        """Always True: folder files are used in place."""
        return True

    def fetch(self, item: RemoteItem, cache_dir: Path | None = None) -> Path:
        """The file in place, after checking it exists and is not empty."""
        check_safe_name(item.name, "FIRMS file")
        path = file_url_path(item.url)
        if not path.is_file():
            raise NotFoundError(f"{item.name}: expected a FIRMS file at {path}, found none", hint="check BANET_FIRMS_URL")
        if path.stat().st_size == 0:
            raise IntegrityError(f"{item.name}: expected FIRMS CSV rows or at least a header, found an empty file at {path}")
        return path
