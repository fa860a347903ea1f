-- Cells burned twice (or more): cells that belong to two or more fire events.
--
-- A fire event (banet.fire_event) joins burn dates of neighbouring cells that are at most
-- BANET_EVENT_MAX_GAP_DAYS (default 5) apart, so a cell re-dated by a day or two between
-- near-real-time runs is one fire, and a cell in two events burned again.  One row per cell:
-- the events, its first and last burn dates, the days between them, and the cell centre.
--
-- Parameters (psql variables; defaults in brackets):
--   first_day  first burn date, inclusive    [2012-01-01]
--   last_day   last burn date, inclusive     [2099-12-31]
--   product    nrt | monthly                 [the product of the latest run]
--
-- Example:
--   psql "$DATABASE" -v first_day=2017-01-01 -v last_day=2024-12-31 -f sql/queries/cells_burned_twice.sql
\if :{?first_day}
\else
\set first_day 2012-01-01
\endif
\if :{?last_day}
\else
\set last_day 2099-12-31
\endif
\if :{?product}
\else
SELECT coalesce((SELECT product FROM banet.run WHERE status = 'succeeded' ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT 1), 'nrt') AS product \gset
\endif

SELECT c.region,
       c."row",
       c.col,
       count(DISTINCT c.event_id)                                  AS n_fires,
       array_agg(DISTINCT c.event_id)                              AS event_ids,
       min(c.burn_date)                                            AS first_burn,
       max(c.burn_date)                                            AS last_burn,
       max(c.burn_date) - min(c.burn_date)                         AS days_between,
       round(ST_X(ST_Centroid(min(c.geom::text)::geometry))::numeric, 4) AS lon,
       round(ST_Y(ST_Centroid(min(c.geom::text)::geometry))::numeric, 4) AS lat
FROM banet.burned_cell c
WHERE c.product = :'product'
  AND c.burn_date BETWEEN CAST(:'first_day' AS date) AND CAST(:'last_day' AS date)
  AND c.event_id IS NOT NULL
GROUP BY c.region, c."row", c.col
HAVING count(DISTINCT c.event_id) >= 2
ORDER BY c.region, c."row", c.col;
