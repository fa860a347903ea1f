"""A local mirror of the LAADS archive (``BANET_ARCHIVE_URL=file:///path``), same folder layout.

``{root}/{set}/{PRODUCT}/{YYYY}/{DDD}/{file}``.  When a ``{DDD}.json`` (or ``.csv``) listing sits
beside the day folder it is used, so sizes, MD5 sums and ``illuminations`` work as on LAADS;
otherwise the folder is scanned.  Files are used in place: nothing is copied.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

from banet_ops.errors import IntegrityError, NotFoundError
from banet_ops.http import md5_file
from banet_ops.regions import Region
from banet_ops.sources.base import (
    Discovery,
    RejectedEntry,
    RemoteItem,
    archive_set,
    check_safe_name,
    file_url_path,
    log,
)
from banet_ops.sources.laads import ListingEntry, items_from_listing, parse_listing, split_day_night


class LocalMirror:
    """Archive mirror on a local (or mounted) file system."""

    kind = "mirror"

    def __init__(self, root: Path | str, *, products: Sequence[str] = ("VNP02MOD", "VNP03MOD")) -> None:
        self.root = file_url_path(root) if isinstance(root, str) and root.startswith("file:") else Path(root)
        self.products = tuple(products)
        for product in self.products:
            archive_set(product)

    def day_dir(self, product: str, day: date) -> Path:
        return self.root / archive_set(product) / product / f"{day:%Y}" / f"{day.timetuple().tm_yday:03d}"

    def list_day(self, product: str, day: date) -> Discovery:
        """Files of ``product`` on ``day`` (from a listing file if present, else a folder scan)."""
        folder = self.day_dir(product, day)
        where = f"{product} {day:%Y-%j} mirror"
        entries: list[ListingEntry] | None = None
        for fmt in ("json", "csv"):
            listing = folder.with_name(f"{folder.name}.{fmt}")
            if listing.is_file():
                entries = parse_listing(listing.read_bytes(), fmt, f"{where} listing {listing}")
                break
        if entries is None:
            if not folder.is_dir():
                found = Discovery()
                found.missing.append(str(folder))
                return found
            entries = [
                ListingEntry(p.name, p.stat().st_size, None, None, None, {})
                for p in sorted(folder.iterdir())
                if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".tmp")
            ]
        found = items_from_listing(entries, product=product, day=day, source=self.kind, where=where, url_for=lambda e: (folder / e.name).as_uri())
        present = Discovery()
        present.rejected.extend(found.rejected)
        for item in found:
            if (folder / item.name).is_file():
                present.append(item)
            else:
                present.rejected.append(RejectedEntry(item.name, "listed but absent from the mirror", where))
        return present

    def discover(self, region: Region, day: date, products: Sequence[str] | None = None) -> Discovery:
        """Day-time files of every product on ``day``."""
        found = Discovery()
        for product in products or self.products:
            found.merge(self.list_day(product, day))
        return split_day_night(found)

    def is_cached(self, item: RemoteItem, cache_dir: Path | None = None) -> bool:
        """Always True: mirror files are used in place."""
        return True

    def fetch(self, item: RemoteItem, cache_dir: Path | None = None) -> Path:
        """The mirror file itself, after checking it exists, is non-empty and matches size/MD5."""
        check_safe_name(item.name, "mirror item")
        path = file_url_path(item.url)
        if path.name != item.name:
            raise IntegrityError(f"{item.name}: expected the mirror URL to name this file, found {path.name!r}")
        if not path.is_file():
            raise NotFoundError(f"{item.name}: expected a file at {path}, found none", hint="re-sync the mirror")
        size = path.stat().st_size
        if size == 0:
            raise IntegrityError(f"{item.name}: expected data, found an empty file at {path}", hint="re-sync the mirror")
        if item.size is not None and size != item.size:
            raise IntegrityError(f"{item.name}: expected {item.size} bytes, found {size} at {path}", hint="re-sync the mirror")
        if item.md5 is not None and md5_file(path) != item.md5.lower():
            raise IntegrityError(f"{item.name}: expected MD5 {item.md5}, found a different checksum at {path}", hint="re-sync the mirror")
        log.debug("mirror: using %s in place", path)
        return path
