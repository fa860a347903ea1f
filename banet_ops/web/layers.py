"""What the map serves: the analyst layers (OGC API collections) and the page's own queries.

This is the one place that names database relations for the web app.  A :class:`Schema` maps
stable collection ids (what clients bookmark) to relations the read-only role can SELECT, and
holds the page's queries (products, a product's events, an event's growth, the calendar).

``ANALYST`` is the schema served: ``banet.fire_event`` one current row per physical event,
``banet.fire_event_version`` its per-run history, ``banet.v_burned_cell`` with an integer id, and
burn-date COGs as ``YYYYDDD`` (migration 0009, docs/analysts.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Layer:
    """One OGC API collection: ``id`` served from ``relation`` (``schema.name``)."""

    id: str
    relation: str
    title: str
    description: str
    id_column: str | None = None  # None: the relation's primary key or an ``id`` column
    datetime_column: str | None = None  # the default column of ``datetime=`` filters


@dataclass(frozen=True)
class Schema:
    """The served layers and the page's queries for one database schema."""

    name: str
    layers: tuple[Layer, ...]
    run_events_sql: str  # $1 = run id -> id, run_id, dates, area, cells, confidence, geojson
    growth_sql: str  # $1 = event id -> burn_date, n_cells (or NULL), area_km2

    def layer(self, layer_id: str) -> Layer:
        """The layer called ``layer_id`` (KeyError when none)."""
        for item in self.layers:
            if item.id == layer_id:
                return item
        raise KeyError(layer_id)

    @staticmethod
    def encode_day(day: dt.date) -> int:
        """``day`` as the burn-date COGs store it: ``YYYYDDD``."""
        return day.year * 1000 + day.timetuple().tm_yday


_CUBE_DAYS = Layer(
    "cube_days",
    "banet.cube_day",
    "Cube days",
    "Days ingested into each region's cube: status (complete/partial/empty) and valid fraction.",
    datetime_column="day",
)

ANALYST = Schema(
    name="analyst",
    layers=(
        Layer(
            "fire_events",
            "banet.fire_event",
            "Fire events (current)",
            "One row per physical fire event, current state: dates, duration, area, daily growth; stable ids across runs.",
            id_column="id",
            datetime_column="last_burn_date",
        ),
        Layer(
            "fire_events_by_run",
            "banet.fire_event_version",
            "Fire event versions (per run)",
            "What each inference run changed: an event created, updated, merged into another or gone (provenance).",
            id_column="id",
            datetime_column="last_burn_date",
        ),
        Layer(
            "burned_cells",
            "banet.v_burned_cell",
            "Burned cells",
            "Burned 0.01 degree cells with burn date, confidence, area (km2) and event; filter by region and product.",
            id_column="id",
            datetime_column="burn_date",
        ),
        Layer("regions", "banet.region", "Regions", "Mapped regions: footprint and grid.", id_column="id"),
        _CUBE_DAYS,
    ),
    # Events as the product of run $1 saw them: each event's latest version up to that product's date.
    run_events_sql="""
WITH target AS (SELECT region, product, target_date FROM banet.run WHERE id = $1),
latest AS (
    SELECT DISTINCT ON (v.event_id) v.*
    FROM banet.fire_event_version v
    JOIN banet.run r ON r.id = v.run_id
    JOIN target t ON t.region = v.region AND t.product = v.product AND r.target_date <= t.target_date
    ORDER BY v.event_id, r.target_date DESC, v.run_id DESC
)
SELECT event_id AS id, run_id, first_burn_date, last_burn_date, area_km2, n_cells, mean_confidence,
       ST_AsGeoJSON(geom, 6)::json AS geometry
FROM latest WHERE change IN ('created', 'updated')
ORDER BY first_burn_date, id
""",
    growth_sql="SELECT burn_date, NULL::bigint AS n_cells, area_km2 FROM banet.fire_event_growth WHERE event_id = $1 ORDER BY burn_date",
)

# --- the page's other queries -----------------------------------------------------------------------
# Products the page can show: succeeded runs with their files (run.outputs holds the asset URLs).
PRODUCTS_SQL = """
SELECT id AS run_id, region, product, target_date, window_start, window_end, finished_at,
       n_events, burned_area_km2, outputs
FROM banet.run
WHERE status = 'succeeded' AND outputs IS NOT NULL
  AND ($1::text IS NULL OR region = $1)
ORDER BY region, product, target_date, id
"""

# One product's files (for the tiler and the STAC routes).
PRODUCT_OUTPUTS_SQL = "SELECT region, product, target_date, outputs FROM banet.run WHERE id = $1 AND status = 'succeeded'"

# The cube-coverage calendar of one region.
CUBE_DAYS_SQL = "SELECT day, status, valid_fraction FROM banet.cube_day WHERE region = $1 ORDER BY day"

# Region names and bounding boxes for the page's region picker.
REGIONS_SQL = "SELECT name, ST_XMin(bbox) AS xmin, ST_YMin(bbox) AS ymin, ST_XMax(bbox) AS xmax, ST_YMax(bbox) AS ymax FROM banet.region ORDER BY name"
