"""NASA CMR granule search (``{BANET_CMR_URL}/granules.json``) with ``CMR-Search-After`` paging."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from banet_ops.errors import DataFormatError
from banet_ops.http import EARTHDATA_SUFFIXES, HttpClient, host_of, redact_url
from banet_ops.regions import Region
from banet_ops.sources.base import (
    Discovery,
    RejectedEntry,
    RemoteItem,
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
from banet_ops.sources.laads import download_item

# CMR collection versions (data_interfaces §1.5): S-NPP C2 is "2"; NOAA-20 C2.1 is "2.1";
# NOAA-21 is reported as "2.1" by one connector (unconfirmed) -> overridable.
CMR_VERSIONS: dict[str, str] = {
    "VNP02MOD": "2",
    "VNP03MOD": "2",
    "VJ102MOD": "2.1",
    "VJ103MOD": "2.1",
    "VJ202MOD": "2.1",
    "VJ203MOD": "2.1",
    "MCD64A1": "061",
}
MAX_PAGES = 500


def bbox_param(region: Region) -> str:
    """CMR ``bounding_box``: ``W,S,E,N``."""
    left, bottom, right, top = region.bbox
    return ",".join(f"{v:.6f}".rstrip("0").rstrip(".") for v in (left, bottom, right, top))


def pick_data_link(entry: Mapping[str, Any], name: str) -> str | None:
    """The granule's own download link: a data link (not inherited, not s3://) ending with ``name``."""
    for link in entry.get("links") or []:
        if not isinstance(link, Mapping) or link.get("inherited"):
            continue
        href = str(link.get("href") or "")
        rel = str(link.get("rel") or "")
        if not rel.endswith("/data#") or href.startswith("s3://"):
            continue
        if urlsplit(href).scheme in ("http", "https") and urlsplit(href).path.endswith("/" + name):
            return href
    return None


class CmrSearch:
    """Granule search: what exists over a region on a day, with data links usable by ``fetch``."""

    kind = "cmr"

    def __init__(
        self,
        base_url: str,
        client: HttpClient,
        *,
        token: SecretStr | str | None = None,
        products: Sequence[str] = ("VNP02MOD", "VNP03MOD"),
        versions: Mapping[str, str | None] | None = None,
        page_size: int = 500,
        keep_night: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client
        self.token = as_secret(token)
        self.products = tuple(products)
        self.versions = {**CMR_VERSIONS, **(versions or {})}
        self.page_size = max(1, min(page_size, 2000))
        self.keep_night = keep_night

    def entries(self, product: str, region: Region, day: date) -> Iterator[dict[str, Any]]:
        """Raw ``feed.entry`` records of ``product`` over ``region`` on ``day``, following every page."""
        params: dict[str, str | int] = {
            "short_name": product.removesuffix("_NRT"),
            "bounding_box": bbox_param(region),
            "temporal": f"{day:%Y-%m-%d}T00:00:00Z,{day:%Y-%m-%d}T23:59:59Z",
            "page_size": self.page_size,
            "sort_key": "start_date",
        }
        version = self.versions.get(product.removesuffix("_NRT"))
        if version:
            params["version"] = version
        url = f"{self.base_url}/granules.json"
        search_after: str | None = None
        for page in range(MAX_PAGES):
            headers = {"CMR-Search-After": search_after} if search_after else {}
            where = f"CMR {product} {day} page {page + 1}"
            response = self.client.get(url, what=where, params=params, headers=headers)
            try:
                feed = json.loads(response.content)["feed"]
                entries = feed.get("entry") or []
            except (ValueError, KeyError, TypeError, AttributeError):
                raise DataFormatError(
                    f"{where}: expected JSON {{'feed': {{'entry': [...]}}}} from {redact_url(url)}, found {response.text[:120]!r}",
                    hint="check BANET_CMR_URL",
                ) from None
            yield from (e for e in entries if isinstance(e, dict))
            next_after = response.headers.get("CMR-Search-After")
            if not next_after or len(entries) < self.page_size or next_after == search_after:
                return
            search_after = next_after
        log.warning("CMR %s %s: stopped after %d pages", product, day, MAX_PAGES)

    def search(self, product: str, region: Region, day: date) -> Discovery:
        """Granules of ``product`` over ``region`` on ``day`` as RemoteItems (night ones in ``.night``)."""
        found = Discovery()
        where = f"CMR {product} {day}"
        for entry in self.entries(product, region, day):
            name = str(entry.get("producer_granule_id") or entry.get("title") or "")
            reason = unsafe_reason(name)
            key = granule_key(name) if reason is None else None
            if reason is None and (key is None or (product_of(name) != product.removesuffix("_NRT") and product_of(name) != product)):
                reason = f"not a {product} granule file name"
            link = pick_data_link(entry, name) if reason is None else None
            if reason is None and link is None:
                reason = "no downloadable (non-inherited, non-s3) data link ending with the file name"
            if reason is not None or key is None or link is None:
                found.rejected.append(RejectedEntry(name, reason or "invalid", where))
                continue
            if key_day(key) != day:
                continue  # a granule starting the day before that spills over midnight
            size_mb = entry.get("granule_size")
            item = RemoteItem(
                name=name,
                url=link,
                product=product,
                day=day,
                key=key,
                source=self.kind,
                extra={
                    "day_night": normalise_day_night(entry.get("day_night_flag")),
                    "concept_id": entry.get("id"),
                    "time_start": entry.get("time_start"),
                    "granule_size_mb": float(size_mb) if size_mb not in (None, "") else None,
                    "polygons": entry.get("polygons"),
                },
            )
            if item.day_night == "N" and not self.keep_night:
                found.night.append(item)
            else:
                found.append(item)
        return found

    def discover(self, region: Region, day: date, products: Sequence[str] | None = None) -> Discovery:
        """Granules of every product over ``region`` on ``day``; DAY (and BOTH) kept, NIGHT dropped."""
        found = Discovery()
        for product in products or self.products:
            found.merge(self.search(product, region, day))
        return found

    def token_for(self, url: str) -> SecretStr | None:
        """The bearer token, only for Earthdata hosts (https) or the configured CMR host itself."""
        parts = urlsplit(url)
        trusted = (parts.scheme == "https" and (parts.hostname or "").endswith(EARTHDATA_SUFFIXES)) or host_of(url) == host_of(self.base_url)
        if not trusted and self.token is not None:
            log.warning("%s: not sending the Earthdata token to %s (not an Earthdata host)", urlsplit(url).path.rsplit("/", 1)[-1], host_of(url))
        return self.token if trusted else None

    def is_cached(self, item: RemoteItem, cache_dir: Path) -> bool:
        """True when the cache holds a copy matching the item's size and MD5 (no download needed)."""
        return cached_ok(cache_path(item, cache_dir), item.size, item.md5)

    def fetch(self, item: RemoteItem, cache_dir: Path) -> Path:
        """Download ``item`` from its data link (bearer token for Earthdata hosts; same rules as LAADS)."""
        return download_item(self.client, item, cache_dir, self.token_for(item.url))
