"""Raster tiles of the product COGs through titiler: ``/tiles/…?run_id=N&asset=burn_date``.

The dataset is never a client-given URL: ``run_id`` and ``asset`` name a succeeded run's file
(``banet.run.outputs``), read through the reader login.  NoData (NaN confidence, 0 burn date)
comes back transparent; ``colormap_name`` and ``rescale`` colour the single band.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from fastapi import HTTPException, Query, Request

from banet_ops.web.layers import PRODUCT_OUTPUTS_SQL

ASSETS = ("confidence", "burn_date")
# The page's colour maps (docs/map.md): confidence 0..1 in viridis; burn dates over the product
# window in ``banet_burn``, plasma whose index 0 is transparent: with ``rescale=A-1,B`` (A, B the
# window's first and last day as the COG encodes them) cells below the window, i.e. 0 = observed
# and not burned, are transparent as well as NoData.
DEFAULT_COLORMAPS = {"confidence": "viridis", "burn_date": "banet_burn"}


def banet_colormaps() -> Any:
    """rio-tiler's colour maps plus ``banet_burn``."""
    from rio_tiler.colormap import cmap

    burn = dict(cast(dict[int, tuple[int, int, int, int]], cmap.get("plasma")))
    burn[0] = (0, 0, 0, 0)
    return cmap.register({"banet_burn": burn}, overwrite=True)


async def product_asset(
    request: Request,
    run_id: Annotated[int, Query(description="Run id of a succeeded product (banet.run.id)", ge=1)],
    asset: Annotated[Literal["confidence", "burn_date"], Query(description="Which COG of the product")] = "burn_date",
) -> str:
    """The URL (local path or s3://) of ``asset`` of run ``run_id``; 404 when there is none."""
    rows = await request.app.state.db.fetch(PRODUCT_OUTPUTS_SQL, run_id)
    outputs: dict[str, Any] = (rows[0]["outputs"] if rows else None) or {}
    url = outputs.get(asset)
    if not url:
        raise HTTPException(status_code=404, detail=f"no {asset} file for run {run_id}")
    return str(url)


def tiler_router(prefix: str = "/tiles") -> Any:
    """titiler's COG endpoints (tiles, tilejson, info, point, preview) over :func:`product_asset`."""
    from titiler.core.dependencies import create_colormap_dependency
    from titiler.core.factory import TilerFactory

    factory = TilerFactory(
        path_dependency=product_asset,
        colormap_dependency=create_colormap_dependency(banet_colormaps()),
        router_prefix=prefix,
        add_viewer=False,
        add_part=False,
    )
    return factory.router
