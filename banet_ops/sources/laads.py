"""LAADS DAAC archive: day listings (``{root}/{set}/{PRODUCT}/{YYYY}/{DDD}.json|.csv``) and downloads."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import SecretStr

from banet_ops.errors import AuthenticationError, DataFormatError, NotFoundError, SourceError
from banet_ops.http import HttpClient, host_of, looks_like_html, redact_url
from banet_ops.regions import Region
from banet_ops.sources.base import (
    Discovery,
    RejectedEntry,
    RemoteItem,
    archive_set,
    as_secret,
    cache_path,
    cached_ok,
    granule_key,
    key_day,
    log,
    normalise_day_night,
    product_of,
    unsafe_reason,
)

ListingFormat = Literal["json", "csv"]


@dataclass(frozen=True)
class ListingEntry:
    """One file of a LAADS day listing, whatever the listing's shape."""

    name: str
    size: int | None
    md5: str | None
    downloads_link: str | None
    day_night: str | None
    extra: Mapping[str, Any]


def _int_or_none(value: object) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return int(float(str(value)))
    except ValueError:
        return None


def _entry(raw: Mapping[str, Any]) -> ListingEntry | None:
    """A listing entry from one raw record; None for sub-directories (size 0)."""
    name = str(raw.get("name", ""))
    size = _int_or_none(raw.get("size"))
    if size == 0:
        return None
    md5 = raw.get("md5sum") or raw.get("md5") or raw.get("checksum")
    link = raw.get("downloadsLink") or raw.get("downloads_link")
    extra = {
        k: raw[k]
        for k in ("mtime", "last-modified", "last_modified", "archiveSets", "start", "products", "illuminations")
        if raw.get(k) not in (None, "")
    }
    return ListingEntry(
        name=name,
        size=size,
        md5=str(md5).strip().lower() if md5 else None,
        downloads_link=str(link).strip() if link else None,
        day_night=normalise_day_night(raw.get("illuminations")),
        extra=extra,
    )


def parse_listing_json(content: bytes | str, where: str) -> list[ListingEntry]:
    """Entries of a JSON day listing: legacy top-level array or current ``{"content": [...]}``."""
    try:
        data = json.loads(content)
    except ValueError as exc:
        raise DataFormatError(f"{where}: expected a JSON listing, found unparseable text ({exc})", hint="retry later") from None
    records = data.get("content") if isinstance(data, dict) else data
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DataFormatError(
            f"{where}: expected a JSON array of files or {{'content': [...]}}, found {type(data).__name__}",
            hint="the listing format changed; report it",
        )
    return [e for r in records if (e := _entry(r)) is not None]


def parse_listing_csv(content: bytes | str, where: str) -> list[ListingEntry]:
    """Entries of a CSV day listing (``name, size, …`` with spaces after the commas)."""
    text = content.decode("utf-8-sig") if isinstance(content, bytes) else content
    reader = csv.DictReader(io.StringIO(text), skipinitialspace=True)
    if not reader.fieldnames or "name" not in [f.strip() for f in reader.fieldnames]:
        raise DataFormatError(f"{where}: expected a CSV listing with a 'name' column, found header {reader.fieldnames}")
    rows = ({(k or "").strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items()} for row in reader)
    return [e for r in rows if (e := _entry(r)) is not None]


def parse_listing(content: bytes, fmt: ListingFormat, where: str) -> list[ListingEntry]:
    """Entries of a day listing in either format."""
    return parse_listing_json(content, where) if fmt == "json" else parse_listing_csv(content, where)


def items_from_listing(
    entries: Iterable[ListingEntry],
    *,
    product: str,
    day: date,
    source: str,
    where: str,
    url_for: Any,
) -> Discovery:
    """RemoteItems from listing entries; unsafe or foreign names become ``rejected`` entries.

    ``url_for(entry) -> str`` builds the download URL of a safe entry.
    """
    found = Discovery()
    for entry in entries:
        reason = unsafe_reason(entry.name)
        key = granule_key(entry.name) if reason is None else None
        if reason is None and key is None:
            reason = "not a granule file name (no A{YYYYDDD} key)"
        elif reason is None and product_of(entry.name) != product:
            reason = f"belongs to {product_of(entry.name)}, not {product}"
        elif key is not None and key_day(key) != day:
            reason = f"granule day {key_day(key)} is not the listing day {day}"
        if reason is not None or key is None:
            log.warning("%s: rejected listing entry %r: %s", where, entry.name, reason)
            found.rejected.append(RejectedEntry(entry.name, reason or "invalid", where))
            continue
        found.append(
            RemoteItem(
                name=entry.name,
                url=url_for(entry),
                product=product,
                day=day,
                key=key,
                source=source,
                size=entry.size,
                md5=entry.md5,
                extra={"day_night": entry.day_night, "archive_set": archive_set(product), **entry.extra},
            )
        )
    return found


def split_day_night(found: Discovery) -> Discovery:
    """Move night-time items (``illuminations`` N) from ``found`` into ``found.night``."""
    keep = [i for i in found if i.day_night != "N"]
    found.night.extend(i for i in found if i.day_night == "N")
    found[:] = keep
    return found


def download_item(client: HttpClient, item: RemoteItem, cache_dir: Path, token: SecretStr | None) -> Path:
    """Download ``item`` into the cache with a bearer token, unless a verified copy is there."""
    dest = cache_path(item, cache_dir)
    if cached_ok(dest, item.size, item.md5):
        log.debug("cache hit: %s", item.name)
        return dest
    if urlsplit(item.url).scheme not in ("http", "https"):
        raise SourceError(f"{item.name}: expected an http(s) URL, found {redact_url(item.url)!r}")
    headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token is not None else {}
    try:
        return client.download(item.url, dest, headers=headers, expected_size=item.size, expected_md5=item.md5, what=item.name)
    except AuthenticationError as exc:
        if token is None:
            raise AuthenticationError(exc.message, hint="BANET_EARTHDATA_TOKEN is not set; create a token at urs.earthdata.nasa.gov") from None
        raise


class LaadsArchive:
    """The LAADS archive over HTTPS (``BANET_ARCHIVE_URL``).

    Listings carry no footprint, so ``discover`` returns every day-time granule of the day;
    :class:`~banet_ops.sources.Sources` narrows them to the region with CMR.
    """

    kind = "laads"

    def __init__(
        self,
        root_url: str,
        client: HttpClient,
        *,
        token: SecretStr | str | None = None,
        products: Sequence[str] = ("VNP02MOD", "VNP03MOD"),
        listing_format: ListingFormat = "json",
    ) -> None:
        self.root_url = root_url.rstrip("/")
        self.client = client
        self.token = as_secret(token)
        self.products = tuple(products)
        self.listing_format = listing_format
        for product in self.products:
            archive_set(product)  # fail early on unknown products

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token.get_secret_value()}"} if self.token is not None else {}

    def day_url(self, product: str, day: date) -> str:
        """Folder URL of ``product`` on ``day`` (no trailing slash)."""
        return f"{self.root_url}/{archive_set(product)}/{product}/{day:%Y}/{day.timetuple().tm_yday:03d}"

    def listing_url(self, product: str, day: date) -> str:
        return f"{self.day_url(product, day)}.{self.listing_format}"

    def _url_for(self, product: str, day: date) -> Any:
        folder = self.day_url(product, day)
        origin = host_of(self.root_url)

        def url_for(entry: ListingEntry) -> str:
            link = entry.downloads_link
            if link:
                # Only follow a link on the archive's own host that names this very file: the
                # bearer token must not travel to a host the listing chose.
                absolute = origin + link if link.startswith("/") else link
                if host_of(absolute) == origin and urlsplit(absolute).path.endswith("/" + entry.name):
                    return absolute
            return f"{folder}/{entry.name}"

        return url_for

    def list_day(self, product: str, day: date) -> Discovery:
        """All files of ``product`` on ``day``; a missing day folder gives an empty result with ``missing`` set."""
        url = self.listing_url(product, day)
        where = f"{product} {day:%Y-%j} listing"
        try:
            response = self.client.get(url, what=where, headers=self._auth())
        except NotFoundError:
            log.info("%s: %s does not exist (not yet published?)", where, redact_url(url))
            found = Discovery()
            found.missing.append(redact_url(url))
            return found
        if looks_like_html(response.headers.get("Content-Type"), response.content[:64]):
            raise AuthenticationError(
                f"{where}: expected a {self.listing_format.upper()} listing, found an HTML page from {redact_url(url)}",
                hint="set a valid BANET_EARTHDATA_TOKEN",
            )
        entries = parse_listing(response.content, self.listing_format, where)
        return items_from_listing(entries, product=product, day=day, source=self.kind, where=where, url_for=self._url_for(product, day))

    def discover(self, region: Region, day: date, products: Sequence[str] | None = None) -> Discovery:
        """Day-time files of every product on ``day`` (night files go to ``.night``)."""
        found = Discovery()
        for product in products or self.products:
            found.merge(self.list_day(product, day))
        return split_day_night(found)

    def is_cached(self, item: RemoteItem, cache_dir: Path) -> bool:
        """True when the cache holds a copy matching the item's size and MD5 (no download needed)."""
        return cached_ok(cache_path(item, cache_dir), item.size, item.md5)

    def fetch(self, item: RemoteItem, cache_dir: Path) -> Path:
        """Download ``item`` (bearer token, size/MD5 verified) unless the cache holds it."""
        return download_item(self.client, item, cache_dir, self.token)

