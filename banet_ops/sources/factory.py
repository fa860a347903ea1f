"""``make_sources(settings)``: the archive, CMR and FIRMS sources chosen from the URLs' schemes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

from banet_ops.errors import BanetError, ConfigError, SourceUnavailableError
from banet_ops.http import HttpClient
from banet_ops.regions import Region
from banet_ops.settings import Settings, get_settings
from banet_ops.sources.base import Discovery, GranulePair, PairingResult, RemoteItem, geolocation_product, log, pair_granules
from banet_ops.sources.cmr import CmrSearch
from banet_ops.sources.firms import FirmsApi, FirmsFolder
from banet_ops.sources.laads import LaadsArchive
from banet_ops.sources.mirror import LocalMirror


@dataclass
class FetchReport:
    """Outcome of :meth:`Sources.fetch_many`: local paths and errors, by item name."""

    paths: dict[str, Path] = field(default_factory=dict)
    errors: dict[str, BanetError] = field(default_factory=dict)


def viirs_product_list(l1b_products: Iterable[str]) -> tuple[str, ...]:
    """L1B products followed by their geolocation products (``VNP02MOD`` -> also ``VNP03MOD``)."""
    out: list[str] = []
    for product in l1b_products:
        for p in (product, geolocation_product(product)):
            if p not in out:
                out.append(p)
    return tuple(out)


@dataclass
class Sources:
    """The configured sources, and the operations the ingest pipeline needs."""

    archive: LaadsArchive | LocalMirror
    firms: FirmsApi | FirmsFolder
    cmr: CmrSearch | None
    client: HttpClient
    cache_dir: Path
    viirs_products: tuple[str, ...]
    spatial_filter: bool = True

    def viirs_pairs(self, region: Region, day: date, products: Sequence[str] | None = None) -> PairingResult:
        """L1B + geolocation pairs of ``day`` (day-time only), narrowed to ``region`` when the archive is remote."""
        l1b = tuple(products or self.viirs_products)
        found = self.archive.discover(region, day, viirs_product_list(l1b))
        result = pair_granules(found, l1b)
        result.rejected.extend(found.rejected)
        result.night.extend(found.night)
        result.missing.extend(found.missing)
        if self.spatial_filter and self.cmr is not None and isinstance(self.archive, LaadsArchive):
            result.pairs = self._over_region(result.pairs, region, day, l1b)
        log.info("%s %s: %s", region.name, day, result.summary())
        return result

    def _over_region(self, pairs: list[GranulePair], region: Region, day: date, l1b: Sequence[str]) -> list[GranulePair]:
        """Keep the pairs whose geolocation granule CMR finds over the region (CMR failures keep all)."""
        if self.cmr is None or not pairs:
            return pairs
        kept: list[GranulePair] = []
        for product in l1b:
            mine = [p for p in pairs if p.product == product]
            if not mine:
                continue
            geo = geolocation_product(product)
            try:
                hits = self.cmr.search(geo, region, day)
            except SourceUnavailableError as exc:
                log.warning("%s %s: CMR unavailable (%s); keeping all %d %s granules", region.name, day, exc.message, len(mine), product)
                kept.extend(mine)
                continue
            keys = {i.key for i in [*hits, *hits.night]}
            if not keys:
                # VIIRS sees every place daily: no hit at all means a version/name mismatch, not "no data".
                log.warning("%s %s: CMR returned no %s granule; keeping all %d (check the CMR version)", region.name, day, geo, len(mine))
                kept.extend(mine)
                continue
            kept.extend(p for p in mine if p.key in keys)
        return kept

    def fire_items(self, region: Region, first: date, last: date | None = None) -> Discovery:
        """FIRMS items covering ``first..last`` (``last`` defaults to ``first``)."""
        if isinstance(self.firms, FirmsApi):
            return self.firms.discover_range(region, first, last or first)
        found = Discovery()
        names: set[str] = set()
        day = first
        while day <= (last or first):
            for item in self.firms.discover(region, day):
                if item.name not in names:
                    names.add(item.name)
                    found.append(item)
            day = date.fromordinal(day.toordinal() + 1)
        return found

    def _source_for(self, item: RemoteItem) -> LaadsArchive | LocalMirror | CmrSearch | FirmsApi | FirmsFolder:
        for candidate in (self.archive, self.firms, self.cmr):
            if candidate is not None and candidate.kind == item.source:
                return candidate
        raise ConfigError(f"{item.name}: expected an item from {self.archive.kind}, {self.firms.kind} or cmr, found source {item.source!r}")

    def is_cached(self, item: RemoteItem, cache_dir: Path | None = None) -> bool:
        """True when ``fetch(item)`` needs no download (a valid cached copy, or a local file used in place)."""
        return self._source_for(item).is_cached(item, cache_dir or self.cache_dir)

    def fetch(self, item: RemoteItem, cache_dir: Path | None = None) -> Path:
        """Local path of ``item`` (downloaded into the cache at most once, or the mirror file)."""
        return self._source_for(item).fetch(item, cache_dir or self.cache_dir)

    def fetch_pair(self, pair: GranulePair, cache_dir: Path | None = None) -> tuple[Path, Path]:
        """Local paths of an L1B file and its geolocation file."""
        return self.fetch(pair.l1b, cache_dir), self.fetch(pair.geo, cache_dir)

    def fetch_many(self, items: Iterable[RemoteItem], workers: int | None = None, cache_dir: Path | None = None) -> FetchReport:
        """Fetch items in parallel threads (per-host limits still apply); errors are collected, not raised."""
        report = FetchReport()
        todo = list(items)
        if not todo:
            return report

        def one(item: RemoteItem) -> None:
            try:
                report.paths[item.name] = self.fetch(item) if cache_dir is None else self.fetch(item, cache_dir)
            except BanetError as exc:
                log.warning("%s: %s", item.name, exc)
                report.errors[item.name] = exc

        with ThreadPoolExecutor(max_workers=max(1, min(workers or self.client.concurrency, len(todo)))) as pool:
            list(pool.map(one, todo))
        return report


def make_sources(settings: Settings | None = None, *, client: HttpClient | None = None, spatial_filter: bool = True) -> Sources:
    """Sources from settings: ``file://`` archive -> LocalMirror else LaadsArchive; ``file://`` FIRMS -> FirmsFolder else FirmsApi."""
    settings = settings or get_settings()
    client = client or HttpClient.from_settings(settings)
    products = viirs_product_list(settings.viirs_products)
    archive: LaadsArchive | LocalMirror
    scheme = urlsplit(settings.archive_url).scheme
    if scheme == "file":
        archive = LocalMirror(settings.archive_url, products=products)
    elif scheme in ("http", "https"):
        archive = LaadsArchive(settings.archive_url, client, token=settings.earthdata_token, products=products)
    else:
        raise ConfigError(f"BANET_ARCHIVE_URL: expected https://… or file:///…, found {settings.archive_url!r}")
    firms: FirmsApi | FirmsFolder
    scheme = urlsplit(settings.firms_url).scheme
    if scheme == "file":
        firms = FirmsFolder(settings.firms_url)
    elif scheme in ("http", "https"):
        firms = FirmsApi(settings.firms_url, client, settings.firms_map_key, sources=settings.firms_sources)
    else:
        raise ConfigError(f"BANET_FIRMS_URL: expected https://… or file:///…, found {settings.firms_url!r}")
    cmr = CmrSearch(settings.cmr_url, client, token=settings.earthdata_token, products=products) if settings.cmr_url else None
    return Sources(
        archive=archive,
        firms=firms,
        cmr=cmr,
        client=client,
        cache_dir=settings.resolved_cache_dir,
        viirs_products=tuple(settings.viirs_products),
        spatial_filter=spatial_filter,
    )
