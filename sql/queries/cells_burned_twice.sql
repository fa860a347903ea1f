-- Cells burned twice (or more) in a period.
--
-- A cell that has burned-cell rows with burn dates at least `min_gap_days` apart burned again
-- (a smaller gap is usually one fire dated differently by successive near-real-time runs).
-- One row per cell: its first and last burn dates, the number of distinct burn dates, and the
-- cell centre.
--
-- Parameters (psql variables; defaults in brackets):
--   first_day     first burn date, inclusive    [2012-01-01]
--   last_day      last burn date, inclusive     [2099-12-31]
--   product       nrt | monthly                 [monthly]
--   min_gap_days  days between two fires        [30]
--
-- Example:
--   psql "$DATABASE" -v first_day=2017-01-01 -v last_day=2023-12-31 -f sql/queries/cells_burned_twice.sql
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
\set product monthly
\endif
\if :{?min_gap_days}
\else
\set min_gap_days 30
\endif

SELECT c.region,
       c."row",
       c.col,
       min(c.burn_date)                                       AS first_burn,
       max(c.burn_date)                                       AS last_burn,
       count(DISTINCT c.burn_date)                            AS n_burn_dates,
       round(ST_X(ST_Centroid((array_agg(c.geom))[1]))::numeric, 4) AS lon,
       round(ST_Y(ST_Centroid((array_agg(c.geom))[1]))::numeric, 4) AS lat
FROM banet.burned_cell c
WHERE c.product = :'product'
  AND c.burn_date BETWEEN CAST(:'first_day' AS date) AND CAST(:'last_day' AS date)
GROUP BY c.region, c."row", c.col
HAVING max(c.burn_date) - min(c.burn_date) >= CAST(:'min_gap_days' AS integer)
ORDER BY c.region, c."row", c.col;
