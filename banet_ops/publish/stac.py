"""STAC Item of a published product (pystac), and an offline structural validator.

The item covers the region bbox, spans the product's effective window (``start_datetime`` /
``end_datetime``, ``datetime`` = end of the target day), and lists the two COGs and the quicklook
with absolute hrefs, roles and media types.  The projection and raster extensions describe the
grid.  Validation against the published JSON schemas would need the network, so
:func:`validate_item` checks the structure the STAC spec requires, offline.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from banet_ops import __version__
from banet_ops.errors import ValidationError
from banet_ops.product import NO_BURN, Product

COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
PNG_MEDIA_TYPE = "image/png"
JSON_MEDIA_TYPE = "application/geo+json"


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
) -> dict[str, Any]:
    """The item as a JSON-ready dict (already checked by :func:`validate_item`)."""
    import pystac
    from pystac.extensions.projection import ProjectionExtension
    from pystac.extensions.raster import DataType, NoDataStrings, RasterBand, RasterExtension

    r = product.region
    left, bottom, right, top = r.bbox
    geometry = {"type": "Polygon", "coordinates": [[[left, bottom], [right, bottom], [right, top], [left, top], [left, bottom]]]}
    first, last = effective_window
    properties: dict[str, Any] = {
        "title": f"BA-Net {product.mode} burned area, region {r.name}, {target_label(product)}",
        "start_datetime": _utc(first).isoformat().replace("+00:00", "Z"),
        "end_datetime": _utc(last, end=True).isoformat().replace("+00:00", "Z"),
        "banet:region": r.name,
        "banet:product": product.mode,
        "banet:target_date": product.target_date.isoformat(),
        "banet:window": [product.window_start.isoformat(), product.window_end.isoformat()],
        "banet:threshold": product.threshold,
        "banet:model_key": "+".join(sorted(m.sha256 for m in product.models)),
        "banet:model_ids": sorted(m.model_id for m in product.models if m.model_id),
        "banet:cube_snapshot": product.cube_snapshot,
        "banet:tiling": product.tiling or None,
        "banet:observed_days": product.observed_days,
        "banet:run_id": run_id,
        "banet:software_version": __version__,
        **{f"banet:{k}": v for k, v in stats.items()},
    }
    item = pystac.Item(
        id=item_id(product),
        geometry=geometry,
        bbox=[left, bottom, right, top],
        datetime=_utc(product.window_end, end=True),
        properties=properties,
    )
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.apply(code="EPSG:4326", shape=list(r.shape), transform=list(r.transform))
    RasterExtension.add_to(item)
    for ref, band in (
        (confidence, RasterBand.create(nodata=NoDataStrings.NAN, data_type=DataType.FLOAT32, spatial_resolution=r.pixel_size, unit="1")),
        (burn_date, RasterBand.create(nodata=NO_BURN, data_type=DataType.UINT16, spatial_resolution=r.pixel_size, unit="day of year")),
        (quicklook, None),
    ):
        asset = pystac.Asset(href=ref.href, media_type=ref.media_type, roles=list(ref.roles), title=ref.title)
        item.add_asset(ref.key, asset)
        if band is not None:
            RasterExtension.ext(asset).apply([band])
    item.set_self_href(self_href)
    out = item.to_dict(include_self_link=True, transform_hrefs=False)
    validate_item(out)
    return out


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


def validate_item(item: Mapping[str, Any]) -> None:
    """Check the structure the STAC Item spec requires; raise :class:`ValidationError` if not met."""
    if item.get("type") != "Feature":
        raise _fail('type "Feature"', item.get("type"))
    if not isinstance(item.get("stac_version"), str):
        raise _fail("a stac_version string", item.get("stac_version"))
    if not isinstance(item.get("id"), str) or not item["id"]:
        raise _fail("a non-empty id", item.get("id"))
    bbox = item.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, int | float) and math.isfinite(v) for v in bbox)):
        raise _fail("bbox of four finite numbers", bbox)
    if not (bbox[0] <= bbox[2] and bbox[1] <= bbox[3]):
        raise _fail("bbox [west, south, east, north] with west <= east and south <= north", bbox)
    geom = item.get("geometry")
    if not isinstance(geom, Mapping) or geom.get("type") != "Polygon":
        raise _fail("a GeoJSON Polygon geometry", geom)
    ring = geom.get("coordinates", [[]])[0]
    if len(ring) < 4 or ring[0] != ring[-1]:
        raise _fail("a closed outer ring of at least 4 positions", ring)
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    if not math.isclose(min(xs), bbox[0]) or not math.isclose(max(xs), bbox[2]) or not math.isclose(min(ys), bbox[1]) or not math.isclose(max(ys), bbox[3]):
        raise _fail(f"a bbox enclosing the geometry {[min(xs), min(ys), max(xs), max(ys)]}", bbox)
    props = item.get("properties")
    if not isinstance(props, Mapping):
        raise _fail("a properties object", props)
    if props.get("datetime") is None:
        if "start_datetime" not in props or "end_datetime" not in props:
            raise _fail("datetime, or start_datetime and end_datetime", sorted(props))
    else:
        _parse_dt(props["datetime"], "datetime")
    if "start_datetime" in props or "end_datetime" in props:
        start = _parse_dt(props.get("start_datetime"), "start_datetime")
        end = _parse_dt(props.get("end_datetime"), "end_datetime")
        if start > end:
            raise _fail("start_datetime <= end_datetime", [props["start_datetime"], props["end_datetime"]])
    links = item.get("links")
    if not isinstance(links, list) or not all(isinstance(lk, Mapping) and lk.get("href") and lk.get("rel") for lk in links):
        raise _fail("links with href and rel", links)
    exts = item.get("stac_extensions", [])
    if not isinstance(exts, list) or not all(isinstance(e, str) and e.startswith("https://") for e in exts):
        raise _fail("stac_extensions as a list of schema URLs", exts)
    assets = item.get("assets")
    if not isinstance(assets, Mapping) or not assets:
        raise _fail("at least one asset", assets)
    for key, asset in assets.items():
        if not isinstance(asset, Mapping) or not isinstance(asset.get("href"), str) or not asset["href"]:
            raise _fail(f"asset {key!r} with an href", asset)
        if not isinstance(asset.get("type"), str) or "/" not in asset["type"]:
            raise _fail(f"asset {key!r} with a media type", asset.get("type"))
        roles = asset.get("roles")
        if not isinstance(roles, list) or not roles or not all(isinstance(x, str) for x in roles):
            raise _fail(f"asset {key!r} with a list of roles", roles)
