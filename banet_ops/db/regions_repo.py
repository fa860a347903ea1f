"""The ``banet.region`` table: regions registered for processing."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from banet_ops.errors import RegionError
from banet_ops.regions import Region, parse_region

UpsertOutcome = Literal["inserted", "updated", "unchanged"]


def _dependents(conn: Connection, name: str) -> tuple[int, int]:
    row = conn.execute(
        sa.text(
            "SELECT (SELECT count(*) FROM banet.cube_day WHERE region = :n), "
            "(SELECT count(*) FROM banet.run WHERE region = :n)"
        ),
        {"n": name},
    ).one()
    return int(row[0]), int(row[1])


def _upsert(conn: Connection, region: Region) -> UpsertOutcome:
    definition = region.to_file_dict()
    current = conn.execute(
        sa.text("SELECT definition FROM banet.region WHERE name = :n FOR UPDATE"), {"n": region.name}
    ).scalar_one_or_none()
    if current is not None and parse_region(current, f"banet.region {region.name}") == region:
        return "unchanged"
    if current is not None:
        cube_days, runs = _dependents(conn, region.name)
        if cube_days or runs:
            raise RegionError(
                f"region {region.name}: expected the same grid as the registered one ({current['bbox']}, "
                f"{current['pixel_size']}), found {definition['bbox']}, {definition['pixel_size']}; "
                f"{cube_days} cube days and {runs} runs use the registered grid",
                hint="give the new grid a new region name",
            )
    rows, cols = region.shape
    conn.execute(
        sa.text(
            """
            INSERT INTO banet.region (name, bbox, pixel_size, n_rows, n_cols, definition)
            VALUES (:name, ST_MakeEnvelope(:left, :bottom, :right, :top, 4326), :px, :rows, :cols, CAST(:definition AS jsonb))
            ON CONFLICT (name) DO UPDATE SET
                bbox = EXCLUDED.bbox, pixel_size = EXCLUDED.pixel_size, n_rows = EXCLUDED.n_rows,
                n_cols = EXCLUDED.n_cols, definition = EXCLUDED.definition, updated_at = now()
            """
        ),
        {
            "name": region.name,
            "left": region.left,
            "bottom": region.bottom,
            "right": region.right,
            "top": region.top,
            "px": region.pixel_size,
            "rows": rows,
            "cols": cols,
            "definition": json.dumps(definition),
        },
    )
    return "inserted" if current is None else "updated"


def upsert_regions(engine: Engine, regions: Iterable[Region]) -> dict[str, UpsertOutcome]:
    """Insert or update several regions in one transaction (all or nothing); outcome per name.

    Changing the grid of a region that already has cube days or runs is refused: their rows and
    columns would silently point at other places.
    """
    outcomes: dict[str, UpsertOutcome] = {}
    with engine.begin() as conn:
        for region in regions:
            outcomes[region.name] = _upsert(conn, region)
    return outcomes


def upsert_region(engine: Engine, region: Region) -> UpsertOutcome:
    """Insert or update one region; returns ``inserted``, ``updated`` or ``unchanged``."""
    return upsert_regions(engine, [region])[region.name]


def list_regions(engine: Engine, names: Sequence[str] | None = None) -> list[Region]:
    """The registered regions (optionally only ``names``), sorted by name."""
    sql = "SELECT name, definition FROM banet.region"
    params: dict[str, object] = {}
    if names is not None:
        sql += " WHERE name = ANY(:names)"
        params["names"] = list(names)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql + " ORDER BY name"), params).all()
    return [parse_region(definition, f"banet.region {name}") for name, definition in rows]
