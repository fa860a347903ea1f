"""STAC Item of a published product (pystac), validated offline against the STAC JSON schemas.

The item covers the region bbox and the product's observation window (``start_datetime`` = the
window's first day, ``end_datetime`` = the end of its last day; ``banet:burn_dates`` is the span
burn dates can take), names the licence, the providers and every model of the ensemble (id,
sha256, file), and lists the two COGs and the quicklook.  Links are relative in a local products
folder (the item and its files move together; no ``self`` link) and absolute object-store URLs
(``s3://…``, with ``self``) when published to S3.  :func:`validate_item` checks it against the
STAC 1.1 core schemas pystac ships and the extension schemas in ``banet_ops/data/stac_schemas``
(no network), plus what the schemas cannot say (bbox encloses the geometry, start <= end).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

from banet_ops import __version__
from banet_ops.errors import ValidationError
from banet_ops.product import UNOBSERVED, Product

COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
PNG_MEDIA_TYPE = "image/png"
JSON_MEDIA_TYPE = "application/geo+json"
SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "data" / "stac_schemas"
EXTENSION_SCHEMAS = {
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json": "projection-v2.0.0.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json": "raster-v1.1.0.json",
}
LICENSE = "CC-BY-4.0"  # SPDX id of the products' licence (docs/analysts.md)
PROVIDERS = (
    ("banet-ops", ("processor", "producer"), "https://github.com/banet-ops", "BA-Net burned-area products"),
    ("NASA LAADS DAAC", ("producer", "licensor"), "https://ladsweb.modaps.eosdis.nasa.gov", "VIIRS reflectances and brightness temperatures"),
    ("NASA FIRMS", ("producer", "licensor"), "https://firms.modaps.eosdis.nasa.gov", "VIIRS active fires"),
)


@dataclass(frozen=True)
class AssetRef:
    """Where one file of the product lives, and how to describe it."""

    key: str
    href: str
    media_type: str
    roles: tuple[str, ...]
    title: str


def item_id(product: Product) -> str:
    """Stable id: ``banet-{region}-{mode}-{target}`` (the target month for monthly products)."""
    return f"banet-{product.region.name}-{product.mode}-{target_label(product)}"


def target_label(product: Product) -> str:
    """``YYYY-MM-DD`` for NRT, ``YYYY-MM`` for monthly products."""
    return product.target_date.strftime("%Y-%m") if product.mode == "monthly" else product.target_date.isoformat()


def model_list(product: Product) -> list[dict[str, str | None]]:
    """Every model of the ensemble: registry id (None for an unregistered file), sha256 and file name."""
    return [{"id": m.model_id, "sha256": m.sha256, "file": PurePosixPath(m.path).name} for m in sorted(product.models, key=lambda m: m.sha256)]


def model_ids(product: Product) -> list[str]:
    """Registry ids of the models, ``sha256:<first 12 hex>`` for files not in the registry."""
    return sorted(m.model_id or f"sha256:{m.sha256[:12]}" for m in product.models)


def _utc(day: dt.date, end: bool = False) -> dt.datetime:
    t = dt.time(23, 59, 59) if end else dt.time(0, 0, 0)
    return dt.datetime.combine(day, t, tzinfo=dt.UTC)


def build_item(
    product: Product,
    *,
    effective_window: tuple[dt.date, dt.date],
    confidence: AssetRef,
    burn_date: AssetRef,
    quicklook: AssetRef,
    self_href: str,
    run_id: int | None,
    stats: Mapping[str, Any],
    relative: bool = True,
) -> dict[str, Any]:
    """The item as a JSON-ready dict (already checked by :func:`validate_item`).

    ``relative``: asset hrefs relative to the item (``./file``) and no ``self`` link, for a local
    products folder; otherwise the hrefs as given (``s3://…``) and ``self_href`` as ``self``.
    """
    import pystac

    r = product.region
    left, bottom, right, top = r.bbox
    geometry = {"type": "Polygon", "coordinates": [[[left, bottom], [right, bottom], [right, top], [left, top], [left, bottom]]]}
    first, last = effective_window
    properties: dict[str, Any] = {
        "title": f"BA-Net {product.mode} burned area, region {r.name}, {target_label(product)}",
        "start_datetime": _utc(product.window_start).isoformat().replace("+00:00", "Z"),
        "end_datetime": _utc(product.window_end, end=True).isoformat().replace("+00:00", "Z"),
        "license": LICENSE,
        "providers": [{"name": n, "roles": list(roles), "url": url, "description": d} for n, roles, url, d in PROVIDERS],
        "banet:region": r.name,
        "banet:product": product.mode,
        "banet:target_date": product.target_date.isoformat(),
        "banet:window": [product.window_start.isoformat(), product.window_end.isoformat()],
        "banet:burn_dates": [first.isoformat(), last.isoformat()],
        "banet:threshold": product.threshold,
        "banet:model_key": "+".join(sorted(m.sha256 for m in product.models)),
        "banet:model_ids": model_ids(product),
        "banet:models": model_list(product),
        "banet:cube_snapshot": product.cube_snapshot,
        "banet:tiling": product.tiling or None,
        "banet:observed_days": product.observed_days,
        "banet:run_id": run_id,
        "banet:software_version": __version__,
        "banet:burn_date_encoding": "YYYYDDD: year * 1000 + day of year; 0 = observed, not burned; -1 = not observed (NoData)",
        **{f"banet:{k}": v for k, v in stats.items()},
    }
    item = pystac.Item(
        id=item_id(product), geometry=geometry, bbox=[left, bottom, right, top], datetime=_utc(product.window_end, end=True), properties=properties
    )
    _add_assets(item, product, (confidence, burn_date, quicklook), relative)
    item.add_link(pystac.Link(rel="license", target=f"https://spdx.org/licenses/{LICENSE}.html", media_type="text/html", title=LICENSE))
    if not relative:
        item.set_self_href(self_href)
    out = item.to_dict(include_self_link=not relative, transform_hrefs=False)
    validate_item(out)
    return out


def _add_assets(item: Any, product: Product, refs: tuple[AssetRef, AssetRef, AssetRef], relative: bool) -> None:
    import pystac
    from pystac.extensions.projection import ProjectionExtension
    from pystac.extensions.raster import DataType, NoDataStrings, RasterBand, RasterExtension

    r = product.region
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.apply(code="EPSG:4326", shape=list(r.shape), transform=list(r.transform))
    RasterExtension.add_to(item)
    confidence, burn_date, _ = refs
    bands = {
        confidence.key: RasterBand.create(nodata=NoDataStrings.NAN, data_type=DataType.FLOAT32, spatial_resolution=r.pixel_size, unit="1"),
        burn_date.key: RasterBand.create(nodata=UNOBSERVED, data_type=DataType.INT32, spatial_resolution=r.pixel_size, unit="YYYYDDD"),
    }
    for ref in refs:
        href = f"./{PurePosixPath(ref.href).name}" if relative else ref.href
        asset = pystac.Asset(href=href, media_type=ref.media_type, roles=list(ref.roles), title=ref.title)
        item.add_asset(ref.key, asset)
        if ref.key in bands:
            RasterExtension.ext(asset).apply([bands[ref.key]])


def _fail(what: str, found: object) -> ValidationError:
    return ValidationError(f"STAC item: expected {what}, found {found!r}", hint="fix the item builder")


def _parse_dt(value: object, name: str) -> dt.datetime:
    if not isinstance(value, str):
        raise _fail(f"{name} as an RFC 3339 string", value)
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _fail(f"{name} as an RFC 3339 string", value) from None
    if parsed.tzinfo is None:
        raise _fail(f"{name} with a time zone", value)
    return parsed


@lru_cache(maxsize=1)
def _validator() -> Any:
    """pystac's JSON-schema validator with the extension schemas of this repository: no network."""
    from pystac.validation.stac_validator import JsonSchemaSTACValidator

    validator = JsonSchemaSTACValidator()
    for uri, name in EXTENSION_SCHEMAS.items():
        validator.schema_cache[uri] = json.loads((SCHEMAS_DIR / name).read_text())
    return validator


def validate_schemas(item: Mapping[str, Any]) -> None:
    """Validate against the STAC core and extension JSON schemas, offline."""
    import pystac
    from pystac.errors import STACValidationError

    unknown = [e for e in item.get("stac_extensions", []) if e not in EXTENSION_SCHEMAS]
    if unknown:
        raise _fail(f"extensions whose schemas ship in {SCHEMAS_DIR} ({sorted(EXTENSION_SCHEMAS)})", unknown)
    try:
        pystac.validation.validate_dict(dict(item), validator=_validator())
    except STACValidationError as exc:
        from jsonschema.exceptions import best_match

        errors = exc.source if isinstance(exc.source, list) else []
        best = best_match(errors) if errors else None
        detail = " ".join((best.message if best else str(exc)).split())[:300]
        where = "/".join(str(p) for p in best.absolute_path) if best else ""
        what = f"STAC item {item.get('id')!r}: expected it to match the STAC JSON schemas, found at /{where}: {detail}"
        raise ValidationError(what, hint="fix the item builder") from None


def validate_item(item: Mapping[str, Any]) -> None:
    """The JSON schemas (:func:`validate_schemas`), then what they cannot check; :class:`ValidationError` if not met."""
    validate_schemas(item)
    bbox, ring = item["bbox"], item["geometry"]["coordinates"][0]
    if not (bbox[0] <= bbox[2] and bbox[1] <= bbox[3]):
        raise _fail("bbox [west, south, east, north] with west <= east and south <= north", bbox)
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    if not math.isclose(min(xs), bbox[0]) or not math.isclose(max(xs), bbox[2]) or not math.isclose(min(ys), bbox[1]) or not math.isclose(max(ys), bbox[3]):
        raise _fail(f"a bbox enclosing the geometry {[min(xs), min(ys), max(xs), max(ys)]}", bbox)
    props = item["properties"]
    if "start_datetime" in props:
        start, end = _parse_dt(props["start_datetime"], "start_datetime"), _parse_dt(props["end_datetime"], "end_datetime")
        if start > end:
            raise _fail("start_datetime <= end_datetime", [props["start_datetime"], props["end_datetime"]])
