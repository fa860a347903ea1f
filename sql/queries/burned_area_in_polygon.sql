-- Burned area inside a polygon during a period.
--
-- For every region, the burned cells whose burn date lies in [first_day, last_day] and that
-- intersect the polygon; the area counts only the part of each cell inside the polygon, measured
-- on the WGS84 ellipsoid (geography), in km².  Cells are the current estimate (banet.burned_cell:
-- one row per cell and burn date, the latest run's where runs overlap).
--
-- Parameters (psql variables; defaults in brackets):
--   polygon    WKT polygon or multipolygon in EPSG:4326 lon/lat  [the bbox of the region of the latest run]
--   product    nrt | monthly                                      [the product of the latest run]
--   first_day  first burn date, inclusive                         [365 days before last_day]
--   last_day   last burn date, inclusive                          [the latest burn date of the product]
--
-- Example:
--   psql "$DATABASE" -v polygon='POLYGON((-8.3 39.2,-7.0 39.2,-7.0 40.4,-8.3 40.4,-8.3 39.2))' \
--        -v first_day=2024-07-01 -v last_day=2024-08-31 -f sql/queries/burned_area_in_polygon.sql
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
)
SELECT c.region,
       count(*)                                                         AS n_cells,
       round((sum(ST_Area(ST_Intersection(c.geom, a.geom)::geography)) / 1e6)::numeric, 6) AS burned_km2,
       min(c.burn_date)                                                 AS first_burn,
       max(c.burn_date)                                                 AS last_burn
FROM banet.burned_cell c, area a
WHERE c.product = :'product'
  AND c.burn_date BETWEEN CAST(:'first_day' AS date) AND CAST(:'last_day' AS date)
  AND ST_Intersects(c.geom, a.geom)
GROUP BY c.region
ORDER BY c.region;
