-- Largest fire events of a month.
--
-- Fire events whose first burn date falls in the month, largest first, with the run that
-- produced them.  Events of every run are listed; add `AND r.id IN (SELECT run_id FROM
-- banet.v_latest_fire_events)` to keep only the latest run of each region and product.
--
-- Parameters (psql variables; defaults in brackets):
--   month    any day of the month (YYYY-MM-DD)    [2023-08-01]
--   product  nrt | monthly                        [monthly]
--   n        how many events                      [10]
--
-- Example:
--   psql "$DATABASE" -v month=2023-08-01 -v n=5 -f sql/queries/largest_fire_events_of_month.sql
\if :{?month}
\else
\set month 2023-08-01
\endif
\if :{?product}
\else
\set product monthly
\endif
\if :{?n}
\else
\set n 10
\endif

SELECT e.id,
       e.region,
       e.first_burn_date,
       e.last_burn_date,
       round(e.area_km2::numeric, 3)                     AS area_km2,
       e.n_cells,
       round(e.mean_confidence::numeric, 3)              AS mean_confidence,
       round(ST_X(ST_Centroid(e.geom))::numeric, 4)      AS lon,
       round(ST_Y(ST_Centroid(e.geom))::numeric, 4)      AS lat,
       r.id                                              AS run_id,
       r.target_date
FROM banet.fire_event e
JOIN banet.run r ON r.id = e.run_id
WHERE e.product = :'product'
  AND e.first_burn_date >= date_trunc('month', CAST(:'month' AS date))
  AND e.first_burn_date <  date_trunc('month', CAST(:'month' AS date)) + interval '1 month'
ORDER BY e.area_km2 DESC, e.id
LIMIT :n;
