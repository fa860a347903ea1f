"""Data sources: discover what exists for a region and day, fetch one item into a local cache.

API (stable; the ingest pipeline builds on it)::

    from banet_ops.sources import make_sources, RemoteItem, GranulePair, PairingResult

    sources = make_sources(settings)            # Sources; picks LAADS vs local mirror, FIRMS API vs folder
    res = sources.viirs_pairs(region, day)      # PairingResult for settings.viirs_products (+ their 03MOD geo)
    res.pairs      -> list[GranulePair]          # GranulePair(l1b: RemoteItem, geo: RemoteItem, key="A2024001.1200")
    res.unpaired   -> list[RemoteItem]           # an L1B without its geolocation or the reverse (reported, not used)
    res.rejected   -> list[RejectedEntry]        # unsafe listing names etc.: (name, reason, listing url)
    res.night      -> list[RemoteItem]           # dropped because the listing/CMR says night
    res.missing    -> list[str]                  # day listings that do not exist (yet)
    l1b_path, geo_path = sources.fetch_pair(pair)            # Paths in the cache (or in the mirror, in place)
    fires = sources.fire_items(region, day)                  # list[RemoteItem]: FIRMS CSVs covering `day`
    fires = sources.fire_items(region, first, last)          # one item per FIRMS source and <=5-day window
    path = sources.fetch(item)                               # any RemoteItem -> Path (dispatched by item.source)
    sources.is_cached(item) -> bool                          # fetch would download nothing
    sources.archive.list_day(product, day) -> Discovery      # one product's day listing (e.g. NPP_VMAES_L1)
    report = sources.fetch_many(items, workers=None)         # FetchReport(paths: {name: Path}, errors: {name: BanetError})

    # each source on its own, all with discover(region, day) -> Discovery (a list[RemoteItem] with
    # .rejected) and fetch(item, cache_dir) -> Path:
    LaadsArchive(root_url, client, token=None, listing_format="json")   # https LAADS archive
    LocalMirror(root)                                                   # file:// mirror, same layout
    CmrSearch(base_url, client, token=None)                             # CMR granules.json search
    FirmsApi(base_url, client, map_key, sources=("VIIRS_SNPP_NRT", ...))
    FirmsFolder(folder)                                                 # file:// folder of FIRMS CSV/TXT

    # helpers
    granule_key(name) -> "A2024001.1200" | None;  archive_set(product) -> "5200"
    geolocation_product("VNP02MOD") -> "VNP03MOD";  pair_granules(items, l1b_products) -> PairingResult

RemoteItem (frozen): ``name, url, product, day, key, size: int|None, md5: str|None, source, extra``.
Cache layout: ``{cache_dir}/{product}/{name}`` (FIRMS: product = the FIRMS source); mirror and
FIRMS-folder files are used in place.  FIRMS API windows are re-fetched until they are settled
(fetched more than 2 days after their last day); NRT sources switch to their SP twin on days the
availability table says NRT no longer holds.
``source`` is one of ``laads``, ``mirror``, ``cmr``, ``firms-api``, ``firms-folder``.  FIRMS API
items never carry the MAP_KEY in ``url`` (it is inserted at fetch time only).

Errors (banet_ops.errors): SourceUnavailableError (retryable: 429/5xx/timeouts after bounded
retries), RateLimitError (FIRMS transaction limit, retryable), AuthenticationError (401/403 or an
HTML login page; names the file), IntegrityError (size/md5 mismatch; nothing left behind),
NotFoundError (404 / missing mirror file), UnsafeNameError (listing entry with a path; such
entries are rejected and counted in ``Discovery.rejected`` rather than raised), SourceError
(other permanent answers, e.g. FIRMS ``Invalid area.``), ConfigError (unknown product/source).

The shared HTTP client (retries with exponential back-off and full jitter, per-host concurrency,
HTML-login detection, secret redaction) is :mod:`banet_ops.http`.
"""

from banet_ops.sources.base import (
    ARCHIVE_SETS,
    Discovery,
    GranulePair,
    PairingResult,
    RejectedEntry,
    RemoteItem,
    Source,
    archive_set,
    geolocation_product,
    granule_key,
    group_by_key,
    pair_granules,
)
from banet_ops.sources.cmr import CmrSearch
from banet_ops.sources.factory import FetchReport, Sources, make_sources, viirs_product_list
from banet_ops.sources.firms import FIRMS_SOURCES, FirmsApi, FirmsFolder, firms_windows
from banet_ops.sources.laads import LaadsArchive, parse_listing_csv, parse_listing_json
from banet_ops.sources.mirror import LocalMirror

__all__ = [
    "ARCHIVE_SETS",
    "FIRMS_SOURCES",
    "CmrSearch",
    "Discovery",
    "FetchReport",
    "FirmsApi",
    "FirmsFolder",
    "GranulePair",
    "LaadsArchive",
    "LocalMirror",
    "PairingResult",
    "RejectedEntry",
    "RemoteItem",
    "Source",
    "Sources",
    "archive_set",
    "firms_windows",
    "geolocation_product",
    "granule_key",
    "group_by_key",
    "make_sources",
    "pair_granules",
    "parse_listing_csv",
    "parse_listing_json",
    "viirs_product_list",
]
