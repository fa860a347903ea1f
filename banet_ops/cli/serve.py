"""`banet-ops serve`: the map standalone (OGC API Features/Tiles, COG tiles, STAC, map page)."""

from __future__ import annotations

import argparse

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_PORT = 8090


class ServeArgs(BaseModel):
    model_config = ConfigDict(frozen=True)

    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(DEFAULT_PORT, ge=1, le=65535)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``serve``."""
    parser = sub.add_parser(
        "serve",
        help="serve the burned-area map, OGC API Features/Tiles, COG tiles and STAC (read-only, BANET_WEB_DATABASE_URL)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only; no login is asked)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    parser.set_defaults(handler=handle)


def urls(host: str, port: int) -> dict[str, str]:
    """What an analyst opens: the page, the OGC API landing page and the STAC catalog."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - only compares
    base = f"http://{shown}:{port}"
    return {"map": f"{base}/", "ogc": f"{base}/ogc", "stac": f"{base}/stac/catalog.json"}


def handle(args: argparse.Namespace) -> int:
    import uvicorn

    from banet_ops.web.app import create_app

    opts = ServeArgs(host=args.host, port=args.port)
    for name, url in urls(opts.host, opts.port).items():
        print(f"{name:>4}: {url}", flush=True)
    uvicorn.run(create_app(), host=opts.host, port=opts.port, log_level="warning")
    return 0
