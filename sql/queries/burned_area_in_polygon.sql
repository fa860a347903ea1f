-- Burned area inside a polygon during a period.
--
-- For every region, the burned cells whose burn date lies in [first_day, last_day] and that
-- intersect the polygon; the area counts only the part of each cell inside the polygon, measured
-- on the WGS84 ellipsoid (geography), in km².
--
-- Parameters (psql variables; defaults in brackets):
--   polygon    WKT polygon or multipolygon in EPSG:4326 lon/lat  [the Portugal region bbox]
--   first_day  first burn date, inclusive                         [2023-01-01]
--   last_day   last burn date, inclusive                          [2023-12-31]
--   product    nrt | monthly                                      [monthly]
--
-- Example:
--   psql "$DATABASE" -v polygon='POLYGON((-9 39,-8 39,-8 40,-9 40,-9 39))' \
--        -v first_day=2023-08-01 -v last_day=2023-08-31 -f sql/queries/burned_area_in_polygon.sql
\if :{?polygon}
\else
\set polygon 'POLYGON((-10 36,-6 36,-6 44,-10 44,-10 36))'
\endif
\if :{?first_day}
\else
\set first_day 2023-01-01
\endif
\if :{?last_day}
\else
\set last_day 2023-12-31
\endif
\if :{?product}
\else
\set product monthly
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
