"""What the map serves: the analyst layers (OGC API collections) and the page's own queries.

This is the one place that names database relations for the web app.  Each :class:`Layer` maps
a collection id (stable, what clients bookmark) to a relation the read-only role can SELECT;
the queries below feed the page's product list, event growth and coverage calendar.  Point
them at other relations here (e.g. a ``fire_event_current`` view) and nothing else changes.
"""

from __future__ import annotations

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


LAYERS: tuple[Layer, ...] = (
    Layer(
        "fire_events",
        "banet.v_latest_fire_events",
        "Fire events (current)",
        "Fire events of the latest succeeded run of each region and product: one row per event.",
        id_column="id",
        datetime_column="last_burn_date",
    ),
    Layer(
        "fire_events_by_run",
        "banet.fire_event",
        "Fire events (every run)",
        "Fire events as each inference run published them (provenance; overlapping versions).",
        id_column="id",
        datetime_column="last_burn_date",
    ),
    Layer(
        "burned_cells",
        "banet.burned_cell",
        "Burned cells",
        "Burned 0.01 degree cells with burn date, confidence and area (km2); filter by region and product.",
        datetime_column="burn_date",
    ),
    Layer("regions", "banet.region", "Regions", "Mapped regions: footprint and grid.", id_column="name"),
    Layer(
        "cube_days",
        "banet.cube_day",
        "Cube days",
        "Days ingested into each region's cube: status (complete/partial/empty) and valid fraction.",
        datetime_column="day",
    ),
)

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

# Daily growth of one published event: area per burn date of the cells inside its outline.
EVENT_GROWTH_SQL = """
SELECT c.burn_date, count(*) AS n_cells, sum(c.area_km2) AS area_km2
FROM banet.fire_event e
JOIN banet.burned_cell c
  ON c.region = e.region AND c.product = e.product
 AND c.burn_date BETWEEN e.first_burn_date AND e.last_burn_date
 AND ST_Intersects(e.geom, ST_PointOnSurface(c.geom))
WHERE e.id = $1
GROUP BY c.burn_date
ORDER BY c.burn_date
"""

# The cube-coverage calendar of one region.
CUBE_DAYS_SQL = """
SELECT day, status, valid_fraction
FROM banet.cube_day
WHERE region = $1
ORDER BY day
"""

# Region outlines and names for the page's region picker.
REGIONS_SQL = "SELECT name, ST_XMin(bbox) AS xmin, ST_YMin(bbox) AS ymin, ST_XMax(bbox) AS xmax, ST_YMax(bbox) AS ymax FROM banet.region ORDER BY name"


def layer(layer_id: str) -> Layer:
    """The layer called ``layer_id`` (KeyError when none)."""
    for item in LAYERS:
        if item.id == layer_id:
            return item
    raise KeyError(layer_id)
