"""`banet-ops infer --region R --date D [--mode nrt|monthly] [--weights PATH…] [--device auto|cpu|cuda] [--snapshot ID] [--tiling published|fast]`."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from banet_ops.errors import ValidationError
from banet_ops.util import pydantic_problem


class InferArgs(BaseModel):
    """Validated arguments of ``banet-ops infer``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    region: str = Field(pattern=r"^[A-Za-z0-9_]{1,32}$")
    date: dt.date
    mode: Literal["nrt", "monthly"] = "nrt"
    weights: list[Path] = Field(default_factory=list)
    device: Literal["auto", "cpu", "cuda"] | None = None
    snapshot: str | None = Field(None, min_length=1, max_length=128)
    tiling: Literal["published", "fast"] | None = None
    tile: int | None = Field(None, ge=32, le=2048)
    overlap: int | None = Field(None, ge=0, le=1024)
    batch: int | None = Field(None, ge=1, le=256)
    threshold: float | None = Field(None, gt=0, le=1)
    publish: bool = True

    @field_validator("tile")
    @classmethod
    def _tile_multiple(cls, value: int | None) -> int | None:
        if value is not None and value % 32:
            raise ValueError(f"expected a multiple of 32 (BA-Net halves the tile five times), found {value}")
        return value

    @field_validator("weights")
    @classmethod
    def _weights_exist(cls, value: list[Path]) -> list[Path]:
        for path in value:
            if not path.is_file():
                raise ValueError(f"expected an existing weight file, found no file at {path}")
        return value


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``infer`` command."""
    p = sub.add_parser("infer", help="map burned areas of a region for a day (nrt) or month (monthly) with BA-Net")
    p.add_argument("--region", required=True, help="region name (R_{name}.json in BANET_REGIONS_DIR)")
    p.add_argument("--date", required=True, help="YYYY-MM-DD: day D (nrt) or any day of month M (monthly)")
    p.add_argument("--mode", default="nrt", choices=["nrt", "monthly"], help="product (default nrt)")
    p.add_argument("--weights", nargs="+", default=[], metavar="PATH", help="weight files of the ensemble (default: BANET_WEIGHTS, else the production model)")
    p.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"], help="inference device (default BANET_DEVICE, auto)")
    p.add_argument("--snapshot", default=None, help="cube snapshot id to read (default: latest)")
    p.add_argument(
        "--tiling", default=None, choices=["published", "fast"], help="tiling preset: published (exact, the default via BANET_TILING) or fast"
    )
    p.add_argument("--tile", type=int, default=None, help="override of the preset's tile size in pixels, multiple of 32 (default BANET_TILE_SIZE)")
    p.add_argument("--overlap", type=int, default=None, help="override of the preset's tile overlap in pixels (default BANET_TILE_OVERLAP)")
    p.add_argument("--batch", type=int, default=None, help="tiles per batch (default BANET_BATCH_SIZE)")
    p.add_argument("--threshold", type=float, default=None, help="confidence threshold of burned cells (default BANET_BURN_THRESHOLD)")
    p.add_argument("--no-publish", dest="publish", action="store_false", help="compute and summarise only; write nothing")
    p.set_defaults(handler=handle_infer)


def parse_args(ns: argparse.Namespace) -> InferArgs:
    fields = {k: getattr(ns, k) for k in InferArgs.model_fields if hasattr(ns, k)}
    try:
        return InferArgs(**fields)
    except pydantic.ValidationError as exc:
        raise ValidationError(pydantic_problem(exc, field="--{}", show_input=True)) from None


def handle_infer(ns: argparse.Namespace) -> int:
    from tqdm import tqdm

    from banet_ops.inference.run import run_inference
    from banet_ops.settings import get_settings

    args = parse_args(ns)
    settings = get_settings()
    with tqdm(desc="tiles", unit="tile", file=sys.stderr, disable=None, leave=False) as bar:
        result = run_inference(
            args.region,
            args.date,
            args.mode,
            weights=args.weights or None,
            device=args.device or settings.device,
            snapshot=args.snapshot,
            tiling=args.tiling,
            tile=args.tile,
            overlap=args.overlap,
            batch=args.batch,
            threshold=args.threshold,
            settings=settings,
            publish=args.publish,
            progress=bar.update,
        )
    print(result.summary())
    return 0
