-- Fire events larger than N km², with duration and growth.
--
-- Current fire events (one row per fire) of at least `min_km2`, whose burn dates overlap the
-- period: duration, mean growth (area / duration), the day of fastest growth and its area, and
-- the centre.  Daily growth is the area first burned on each burn date (banet.fire_event_growth).
--
-- Parameters (psql variables; defaults in brackets):
--   min_km2    smallest event area, km²          [1]
--   product    nrt | monthly                     [the product of the latest run]
--   first_day  period start (burn date)          [2012-01-01]
--   last_day   period end (burn date)            [2099-12-31]
--
-- Example:
--   psql "$DATABASE" -v min_km2=5 -v first_day=2024-06-01 -v last_day=2024-09-30 -f sql/queries/large_fire_events.sql
\if :{?min_km2}
\else
\set min_km2 1
\endif
\if :{?product}
\else
SELECT coalesce((SELECT product FROM banet.run WHERE status = 'succeeded' ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT 1), 'nrt') AS product \gset
\endif
\if :{?first_day}
\else
\set first_day 2012-01-01
\endif
\if :{?last_day}
\else
\set last_day 2099-12-31
\endif

SELECT e.id,
       e.region,
       e.first_burn_date,
       e.last_burn_date,
       e.duration_days,
       round(e.area_km2::numeric, 3)                                  AS area_km2,
       e.n_cells,
       round((e.area_km2 / e.duration_days)::numeric, 3)              AS mean_growth_km2_per_day,
       peak.burn_date                                                 AS peak_day,
       round(peak.area_km2::numeric, 3)                               AS peak_day_km2,
       round(ST_X(ST_Centroid(e.geom))::numeric, 4)                   AS lon,
       round(ST_Y(ST_Centroid(e.geom))::numeric, 4)                   AS lat
FROM banet.fire_event e
CROSS JOIN LATERAL (
    SELECT g.burn_date, g.area_km2 FROM banet.fire_event_growth g
    WHERE g.event_id = e.id ORDER BY g.area_km2 DESC, g.burn_date LIMIT 1
) peak
WHERE e.product = :'product'
  AND e.area_km2 >= CAST(:'min_km2' AS double precision)
  AND e.last_burn_date >= CAST(:'first_day' AS date)
  AND e.first_burn_date <= CAST(:'last_day' AS date)
ORDER BY e.area_km2 DESC, e.id;
