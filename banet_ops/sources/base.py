"""What every data source shares: remote items, discovery results, pairing, cache checks."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from pydantic import SecretStr

from banet_ops.errors import ConfigError, UnsafeNameError
from banet_ops.http import md5_file, register_secret
from banet_ops.regions import Region

log = logging.getLogger("banet_ops.sources")

# LAADS archive set of each product (data_interfaces §1.5).
ARCHIVE_SETS: dict[str, str] = {
    "VNP02MOD": "5200",
    "VNP03MOD": "5200",
    "VJ102MOD": "5201",
    "VJ103MOD": "5201",
    "VJ202MOD": "5200",
    "VJ203MOD": "5200",
    "NPP_VMAES_L1": "5000",
    "MCD64A1": "61",
}

_KEY_RE = re.compile(r"\.A(\d{4})(\d{3})\.(\d{4})(?=\.|$)")
_TILE_KEY_RE = re.compile(r"\.A(\d{4})(\d{3})(?=\.)")


def archive_set(product: str) -> str:
    """LAADS archive set of ``product`` (``VNP02MOD`` -> ``5200``; ``_NRT`` variants share it)."""
    base = product.removesuffix("_NRT")
    try:
        return ARCHIVE_SETS[base]
    except KeyError:
        raise ConfigError(
            f"expected a product in {sorted(ARCHIVE_SETS)}, found {product!r}",
            hint="check BANET_VIIRS_PRODUCTS",
        ) from None


def geolocation_product(l1b_product: str) -> str:
    """Geolocation product of an L1B product: ``VNP02MOD`` -> ``VNP03MOD`` (``_NRT`` kept)."""
    base, nrt = (l1b_product[:-4], "_NRT") if l1b_product.endswith("_NRT") else (l1b_product, "")
    if not re.fullmatch(r"V(NP|J\d)02(MOD|IMG|DNB)", base):
        raise ConfigError(f"expected a VIIRS L1B product like VNP02MOD, found {l1b_product!r}", hint="check BANET_VIIRS_PRODUCTS")
    return base.replace("02", "03", 1) + nrt


def granule_key(name: str) -> str | None:
    """``A{YYYYDDD}.{HHMM}`` of a swath file name (``A{YYYYDDD}`` for daily/tiled files), else None."""
    match = _KEY_RE.search(name)
    if match:
        return f"A{match[1]}{match[2]}.{match[3]}"
    match = _TILE_KEY_RE.search(name)
    return f"A{match[1]}{match[2]}" if match else None


def key_day(key: str) -> date:
    """The UTC day of a granule key."""
    return datetime.strptime(key[1:8], "%Y%j").date()


def product_of(name: str) -> str:
    """Product short name at the start of a file name (``VNP02MOD.A…`` -> ``VNP02MOD``)."""
    return name.split(".", 1)[0]


def unsafe_reason(name: str) -> str | None:
    """Why ``name`` is not a plain file name (a path, a parent reference, empty), else None."""
    if not name or name.strip() != name:
        return "empty or padded with spaces"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    if ".." in name:
        return "contains '..'"
    if "\x00" in name or name.startswith("."):
        return "hidden or contains a NUL byte"
    return None


def check_safe_name(name: str, where: str) -> None:
    """Raise UnsafeNameError when ``name`` is not a plain file name."""
    reason = unsafe_reason(name)
    if reason:
        raise UnsafeNameError(
            f"{where}: expected a plain file name, found {name!r} ({reason})",
            hint="the entry was refused; report the listing to the data provider",
        )


def as_secret(value: SecretStr | str | None) -> SecretStr | None:
    """``value`` as a SecretStr (registered for redaction), or None."""
    if value is None:
        return None
    secret = value if isinstance(value, SecretStr) else SecretStr(value)
    register_secret(secret)
    return secret


def file_url_path(url: str) -> Path:
    """Local path of a ``file://`` URL."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        raise ConfigError(f"expected a file:// URL, found {url!r}")
    if parts.netloc not in ("", "localhost"):
        raise ConfigError(f"expected file:///absolute/path, found host {parts.netloc!r} in {url!r}")
    return Path(url2pathname(unquote(parts.path)))


def normalise_day_night(value: object) -> str | None:
    """``D``/``N``/``B`` from LAADS ``illuminations`` or CMR ``day_night_flag``; None when unknown."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        flags = {normalise_day_night(v) for v in value}
        return "B" if {"D", "N"} <= flags or "B" in flags else next(iter(flags - {None}), None)
    text = str(value).strip().upper()
    return {"D": "D", "DAY": "D", "N": "N", "NIGHT": "N", "B": "B", "BOTH": "B", "DN": "B", "ND": "B"}.get(text)


# --- data classes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteItem:
    """One file a source can fetch.

    ``key`` is ``A{YYYYDDD}.{HHMM}`` for swath granules (the pairing key), the window for FIRMS
    API items, the file stem for others.  ``extra`` holds source metadata: ``day_night`` (D/N/B),
    ``archive_set``, ``mtime``, ``time_start``, ``firms_source``, …
    """

    name: str
    url: str
    product: str
    day: date
    key: str
    source: str
    size: int | None = None
    md5: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def day_night(self) -> str | None:
        return self.extra.get("day_night")


@dataclass(frozen=True)
class RejectedEntry:
    """A listing entry that was refused (unsafe name, no download link, …)."""

    name: str
    reason: str
    where: str


class Discovery(list[RemoteItem]):
    """The items a source found, plus what it refused and what it could not list.

    A ``list[RemoteItem]``; ``rejected`` holds refused entries, ``missing`` the listing URLs that
    do not exist (yet), ``night`` the items dropped because they are night-time.
    """

    def __init__(self, items: Iterable[RemoteItem] = ()) -> None:
        super().__init__(items)
        self.rejected: list[RejectedEntry] = []
        self.missing: list[str] = []
        self.night: list[RemoteItem] = []

    def merge(self, other: Discovery) -> Discovery:
        """Add ``other``'s items and reports to this one (returns self)."""
        self.extend(other)
        self.rejected.extend(other.rejected)
        self.missing.extend(other.missing)
        self.night.extend(other.night)
        return self


@dataclass(frozen=True)
class GranulePair:
    """An L1B granule and its geolocation file (same ``A{YYYYDDD}.{HHMM}`` key)."""

    l1b: RemoteItem
    geo: RemoteItem

    @property
    def key(self) -> str:
        return self.l1b.key

    @property
    def product(self) -> str:
        return self.l1b.product


@dataclass
class PairingResult:
    """Pairs ready to fetch, and what could not be used."""

    pairs: list[GranulePair] = field(default_factory=list)
    unpaired: list[RemoteItem] = field(default_factory=list)
    rejected: list[RejectedEntry] = field(default_factory=list)
    night: list[RemoteItem] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.pairs)} pairs, {len(self.unpaired)} unpaired, {len(self.night)} night, "
            f"{len(self.rejected)} rejected, {len(self.missing)} missing listings"
        )


@runtime_checkable
class Source(Protocol):
    """Discover what exists for a region and day; fetch one item into a cache."""

    kind: str

    def discover(self, region: Region, day: date) -> Discovery:
        """Items covering ``region`` on UTC ``day`` (may be a superset; readers clip)."""
        ...

    def fetch(self, item: RemoteItem, cache_dir: Path) -> Path:
        """A local path holding ``item``'s verified content (downloaded at most once)."""
        ...


# --- pairing ---------------------------------------------------------------------------------


def pair_granules(items: Iterable[RemoteItem], l1b_products: Sequence[str]) -> PairingResult:
    """Pair each L1B item with the geolocation item of the same product family and key.

    Pairing uses ``A{YYYYDDD}.{HHMM}`` (production stamps differ).  When several files share a
    key (a reprocessed file listed beside the old one) the newest name wins.  A pair is dropped
    as night-time when either file is flagged ``N``.
    """
    result = PairingResult()
    wanted = {p: geolocation_product(p) for p in l1b_products}
    by_product: dict[str, dict[str, RemoteItem]] = {}
    for item in items:
        slot = by_product.setdefault(item.product, {})
        current = slot.get(item.key)
        if current is None or item.name > current.name:
            slot[item.key] = item
    for l1b_product, geo_product in wanted.items():
        l1bs = by_product.get(l1b_product, {})
        geos = by_product.get(geo_product, {})
        for key in sorted(set(l1bs) | set(geos)):
            l1b, geo = l1bs.get(key), geos.get(key)
            if l1b is None or geo is None:
                result.unpaired.append(l1b or geo)  # type: ignore[arg-type]
                continue
            if "N" in (l1b.day_night, geo.day_night):
                result.night.extend((l1b, geo))
                continue
            result.pairs.append(GranulePair(l1b, geo))
    return result


def group_by_key(items: Iterable[RemoteItem]) -> dict[str, list[RemoteItem]]:
    """Items grouped by key (e.g. the per-band files of one legacy ``NPP_VMAES_L1`` granule)."""
    groups: dict[str, list[RemoteItem]] = {}
    for item in items:
        groups.setdefault(item.key, []).append(item)
    return groups


# --- cache -----------------------------------------------------------------------------------


def cache_path(item: RemoteItem, cache_dir: Path) -> Path:
    """Where ``item`` lives in the cache: ``{cache_dir}/{product}/{name}``."""
    check_safe_name(item.name, f"{item.source} item")
    check_safe_name(item.product, f"{item.source} item product")
    return cache_dir / item.product / item.name


def cached_ok(path: Path, size: int | None, md5: str | None) -> bool:
    """True when ``path`` exists, is non-empty and matches the size and MD5 that are known."""
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        return False
    if actual == 0 or (size is not None and actual != size):
        return False
    return md5 is None or md5_file(path) == md5.lower()
