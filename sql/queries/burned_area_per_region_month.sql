-- Burned area per region per month.
--
-- Reads the view banet.v_burned_area_monthly (current burned cells grouped by month of burn
-- date) for a range of months, with each region's share of its own area (the bbox measured on
-- the ellipsoid, its edges along parallels).
--
-- Parameters (psql variables; defaults in brackets):
--   first_month  first month (any day of it, YYYY-MM-DD)   [2012-01-01]
--   last_month   last month (any day of it)                [2099-12-01]
--   product      nrt | monthly                             [the product of the latest run]
--
-- Example:
--   psql "$DATABASE" -v first_month=2024-01-01 -v last_month=2024-12-01 -f sql/queries/burned_area_per_region_month.sql
\if :{?first_month}
\else
\set first_month 2012-01-01
\endif
\if :{?last_month}
\else
\set last_month 2099-12-01
\endif
\if :{?product}
\else
SELECT coalesce((SELECT product FROM banet.run WHERE status = 'succeeded' ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT 1), 'nrt') AS product \gset
\endif

SELECT m.region,
       to_char(m.month, 'YYYY-MM')                                              AS month,
       m.n_cells,
       round(m.area_km2::numeric, 3)                                            AS area_km2,
       round((100 * m.area_km2 / (ST_Area(ST_Segmentize(r.bbox, r.pixel_size)::geography) / 1e6))::numeric, 6) AS percent_of_region
FROM banet.v_burned_area_monthly m
JOIN banet.region r ON r.name = m.region
WHERE m.product = :'product'
  AND m.month BETWEEN date_trunc('month', CAST(:'first_month' AS date)) AND date_trunc('month', CAST(:'last_month' AS date))
ORDER BY m.region, m.month;
