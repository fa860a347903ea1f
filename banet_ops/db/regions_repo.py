"""The ``banet.region`` table: regions registered for processing."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from banet_ops.errors import RegionError
from banet_ops.regions import Region, parse_region

UpsertOutcome = Literal["inserted", "updated", "unchanged"]


def _dependents(cur: Any, name: str) -> tuple[int, int]:
    cur.execute(
        "SELECT (SELECT count(*) FROM banet.cube_day WHERE region = %(n)s), (SELECT count(*) FROM banet.run WHERE region = %(n)s)", {"n": name}
    )
    row = cur.fetchone()
    return int(row[0]), int(row[1])


def ensure_region(cur: Any, region: Region) -> UpsertOutcome:
    """The one policy for a region the database may not know yet, on a DB-API cursor (the caller's transaction).

    A region given with its definition is registered: inserted when unknown, updated while no
    cube day or run uses it, and refused (:class:`RegionError`) when its grid changed and rows
    already use the registered grid.  (A region known only by name must be registered first:
    :func:`banet_ops.cube.db.record_cube_day` refuses it.)
    """
    definition = region.to_file_dict()
    current = None
    for lock in ("", " FOR UPDATE"):  # the row is locked only to change it: publishers of one region never wait for each other
        cur.execute(f"SELECT definition FROM banet.region WHERE name = %(n)s{lock}", {"n": region.name})
        found = cur.fetchone()
        current = None if found is None else found[0]
        if current is not None and parse_region(current, f"banet.region {region.name}") == region:
            return "unchanged"
    if current is not None:
        cube_days, runs = _dependents(cur, region.name)
        if cube_days or runs:
            raise RegionError(
                f"region {region.name}: expected the same grid as the registered one ({current['bbox']}, "
                f"{current['pixel_size']}), found {definition['bbox']}, {definition['pixel_size']}; "
                f"{cube_days} cube days and {runs} runs use the registered grid",
                hint="give the new grid a new region name",
            )
    rows, cols = region.shape
    cur.execute(
        """
        INSERT INTO banet.region (name, bbox, pixel_size, n_rows, n_cols, definition)
        VALUES (%(name)s, ST_MakeEnvelope(%(left)s, %(bottom)s, %(right)s, %(top)s, 4326), %(px)s, %(rows)s, %(cols)s, CAST(%(definition)s AS jsonb))
        ON CONFLICT (name) DO UPDATE SET
            bbox = EXCLUDED.bbox, pixel_size = EXCLUDED.pixel_size, n_rows = EXCLUDED.n_rows,
            n_cols = EXCLUDED.n_cols, definition = EXCLUDED.definition, updated_at = now()
        """,
        {
            "name": region.name, "left": region.left, "bottom": region.bottom, "right": region.right, "top": region.top,
            "px": region.pixel_size, "rows": rows, "cols": cols, "definition": json.dumps(definition),
        },
    )  # fmt: skip
    return "inserted" if current is None else "updated"


def region_by_name(cur: Any, name: str) -> Region:
    """The registered region ``name`` (:class:`RegionError` when unknown)."""
    cur.execute("SELECT definition FROM banet.region WHERE name = %s", (name,))
    row = cur.fetchone()
    if row is None:
        raise RegionError(f"expected region {name} in banet.region, found none", hint="register it: `banet-ops regions add`")
    return parse_region(row[0], f"banet.region {name}")


def is_registered(conn: Connection, name: str) -> bool:
    """Whether ``banet.region`` has a row named ``name``."""
    return conn.execute(sa.text("SELECT 1 FROM banet.region WHERE name = :n"), {"n": name}).first() is not None


def _upsert(conn: Connection, region: Region) -> UpsertOutcome:
    cur = conn.connection.cursor()  # the DB-API cursor of this connection: the same transaction
    try:
        return ensure_region(cur, region)
    finally:
        cur.close()


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
