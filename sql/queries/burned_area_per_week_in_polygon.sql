-- Burned area per week inside a polygon.
--
-- Weeks start on Monday (ISO weeks), by burn date.  For each week with burned cells intersecting
-- the polygon: the number of cells, the burned area inside the polygon (km², WGS84 ellipsoid)
-- and the running total over the period.  Regions are summed (a polygon across two regions of
-- the same product counts both).
--
-- Parameters (psql variables; defaults in brackets):
--   polygon    WKT polygon or multipolygon in EPSG:4326 lon/lat  [the bbox of the region of the latest run]
--   product    nrt | monthly                                      [the product of the latest run]
--   first_day  first burn date, inclusive                         [365 days before last_day]
--   last_day   last burn date, inclusive                          [the latest burn date of the product]
--
-- Example:
--   psql "$DATABASE" -v polygon='POLYGON((-8.3 39.2,-7.5 39.2,-7.5 40.0,-8.3 40.0,-8.3 39.2))' \
--        -f sql/queries/burned_area_per_week_in_polygon.sql
\if :{?product}
\else
SELECT coalesce((SELECT product FROM banet.run WHERE status = 'succeeded' ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT 1), 'nrt') AS product \gset
\endif
\if :{?polygon}
\else
SELECT coalesce((SELECT ST_AsText(g.bbox) FROM banet.run r JOIN banet.region g ON g.name = r.region
                 WHERE r.status = 'succeeded' AND r.product = :'product' ORDER BY r.finished_at DESC NULLS LAST, r.id DESC LIMIT 1),
                'POLYGON((-180 -90,180 -90,180 90,-180 90,-180 -90))') AS polygon \gset
\endif
\if :{?last_day}
\else
SELECT coalesce((SELECT max(last_burn_date) FROM banet.fire_event WHERE product = :'product'), current_date) AS last_day \gset
\endif
\if :{?first_day}
\else
SELECT CAST(:'last_day' AS date) - 365 AS first_day \gset
\endif

WITH area AS (
    SELECT ST_GeomFromText(:'polygon', 4326) AS geom
), weekly AS (
    SELECT date_trunc('week', c.burn_date)::date                               AS week_start,
           count(*)                                                            AS n_cells,
           sum(ST_Area(ST_Intersection(c.geom, a.geom)::geography)) / 1e6       AS km2
    FROM banet.burned_cell c, area a
    WHERE c.product = :'product'
      AND c.burn_date BETWEEN CAST(:'first_day' AS date) AND CAST(:'last_day' AS date)
      AND ST_Intersects(c.geom, a.geom)
    GROUP BY 1
)
SELECT week_start,
       to_char(week_start, 'IYYY-"W"IW')                           AS iso_week,
       n_cells,
       round(km2::numeric, 3)                                      AS burned_km2,
       round((sum(km2) OVER (ORDER BY week_start))::numeric, 3)    AS cumulative_km2
FROM weekly
ORDER BY week_start;
