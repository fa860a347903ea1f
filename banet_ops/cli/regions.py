"""`banet-ops regions add FILE…` / `regions list [--files]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from banet_ops.db.engine import get_engine, require_schema
from banet_ops.db.regions_repo import list_regions, upsert_regions
from banet_ops.errors import RegionError
from banet_ops.regions import Region, load_region, load_regions
from banet_ops.settings import get_settings


class AddArgs(BaseModel):
    model_config = ConfigDict(frozen=True)

    files: list[Path] = Field(min_length=1)


class ListArgs(BaseModel):
    model_config = ConfigDict(frozen=True)

    files: bool = False


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``regions add`` and ``regions list``."""
    parser = sub.add_parser("regions", help="register and list regions (R_{name}.json files)")
    actions = parser.add_subparsers(dest="regions_action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="validate region files and upsert them into banet.region (all or nothing)")
    add.add_argument("files", nargs="+", type=Path, metavar="FILE", help="R_{name}.json files")
    add.set_defaults(handler=handle_add)
    lst = actions.add_parser("list", help="list registered regions: name, bbox, shape, cells")
    lst.add_argument("--files", action="store_true", help="list the files in BANET_REGIONS_DIR instead of the database")
    lst.set_defaults(handler=handle_list)


def handle_add(ns: argparse.Namespace) -> int:
    args = AddArgs(files=ns.files)
    regions: list[Region] = []
    seen: dict[str, Path] = {}
    for path in args.files:  # validate every file before writing anything
        region = load_region(path)
        if region.name in seen:
            raise RegionError(f"{path}: field 'name': expected each region once, found {region.name!r} also in {seen[region.name]}")
        seen[region.name] = path
        regions.append(region)
    engine = get_engine()
    require_schema(engine)
    outcomes = upsert_regions(engine, regions)
    for region in regions:
        rows, cols = region.shape
        print(f"{outcomes[region.name]:<9} {region.name} ({rows} x {cols})")
    counts = {k: sum(1 for v in outcomes.values() if v == k) for k in ("inserted", "updated", "unchanged")}
    print(f"{len(regions)} region(s): {counts['inserted']} inserted, {counts['updated']} updated, {counts['unchanged']} unchanged")
    return 0


def format_table(regions: list[Region]) -> list[str]:
    """Fixed-width lines: name, bbox, shape and number of cells."""
    lines = [f"{'name':<12} {'bbox (left, bottom, right, top)':<36} {'pixel':>6} {'shape':>11} {'cells':>12}"]
    for r in regions:
        rows, cols = r.shape
        bbox = ", ".join(f"{v:g}" for v in r.bbox)
        lines.append(f"{r.name:<12} {'[' + bbox + ']':<36} {r.pixel_size:>6g} {f'{rows}x{cols}':>11} {rows * cols:>12,}")
    return lines


def handle_list(ns: argparse.Namespace) -> int:
    args = ListArgs(files=ns.files)
    if args.files:
        folder = get_settings().regions_dir
        regions = list(load_regions(folder).values())
        source = str(folder)
    else:
        engine = get_engine()
        require_schema(engine)
        regions = list_regions(engine)
        source = "database"
    for line in format_table(regions):
        print(line)
    print(f"{len(regions)} region(s) ({source})")
    if not args.files:
        for line in mismatch_notes({r.name for r in regions}, get_settings().regions_dir):
            print(line)
    return 0


def mismatch_notes(in_db: set[str], folder: Path) -> list[str]:
    """What to do about regions in the database without a file, or with a file but not in the database."""
    try:
        files = load_regions(folder)
    except RegionError as exc:
        return [f"note: the region files in {folder} do not load: {exc}"]
    notes = [
        f"note: {name} is in the database but has no file in BANET_REGIONS_DIR {folder}: no DAGs run for it; put R_{name}.json there"
        for name in sorted(in_db - set(files))
    ]
    notes += [
        f"note: {name} has a file in BANET_REGIONS_DIR but is not in the database: run `banet-ops regions add {folder / f'R_{name}.json'}`"
        for name in sorted(set(files) - in_db)
    ]
    return notes
