-- Largest fire events of a month.
--
-- Current fire events (banet.fire_event: one row per fire, its latest state) whose first burn
-- date falls in the month, largest first.  `run_id` is the run that last changed the event;
-- banet.fire_event_version has its earlier states.
--
-- Parameters (psql variables; defaults in brackets):
--   product  nrt | monthly                        [the product of the latest run]
--   month    any day of the month (YYYY-MM-DD)    [the month of the product's latest fire start]
--   n        how many events                      [10]
--
-- Example:
--   psql "$DATABASE" -v month=2024-07-01 -v n=5 -f sql/queries/largest_fire_events_of_month.sql
\if :{?product}
\else
SELECT coalesce((SELECT product FROM banet.run WHERE status = 'succeeded' ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT 1), 'nrt') AS product \gset
\endif
\if :{?month}
\else
SELECT coalesce((SELECT max(first_burn_date) FROM banet.fire_event WHERE product = :'product'), current_date) AS month \gset
\endif
\if :{?n}
\else
\set n 10
\endif

SELECT e.id,
       e.region,
       e.first_burn_date,
       e.last_burn_date,
       e.duration_days,
       round(e.area_km2::numeric, 3)                     AS area_km2,
       e.n_cells,
       round(e.mean_confidence::numeric, 3)              AS mean_confidence,
       round(ST_X(ST_Centroid(e.geom))::numeric, 4)      AS lon,
       round(ST_Y(ST_Centroid(e.geom))::numeric, 4)      AS lat,
       e.run_id
FROM banet.fire_event e
WHERE e.product = :'product'
  AND e.first_burn_date >= date_trunc('month', CAST(:'month' AS date))
  AND e.first_burn_date <  date_trunc('month', CAST(:'month' AS date)) + interval '1 month'
ORDER BY e.area_km2 DESC, e.id
LIMIT :n;
