-- Daily growth of one fire event.
--
-- One row per burn date of the event: the area first burned that day (km², WGS84 ellipsoid),
-- the running total and its share of the final area.  Days without new burned area inside the
-- event's span are listed with 0 (cloud, or a pause shorter than the event gap).
--
-- Parameters (psql variables; defaults in brackets):
--   event_id  banet.fire_event id    [the largest current event of the latest run's product]
--
-- Example:
--   psql "$DATABASE" -v event_id=42 -f sql/queries/fire_event_daily_growth.sql
\if :{?event_id}
\else
SELECT coalesce((SELECT e.id FROM banet.fire_event e
                 WHERE e.product = (SELECT product FROM banet.run WHERE status = 'succeeded' ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT 1)
                 ORDER BY e.area_km2 DESC, e.id LIMIT 1), 0) AS event_id \gset
\endif

SELECT e.id                                                          AS event_id,
       d.day::date                                                   AS burn_date,
       (d.day::date - e.first_burn_date) + 1                         AS day_of_fire,
       round(coalesce(g.area_km2, 0)::numeric, 4)                    AS new_km2,
       round((sum(coalesce(g.area_km2, 0)) OVER (ORDER BY d.day))::numeric, 4) AS cumulative_km2,
       round((100 * sum(coalesce(g.area_km2, 0)) OVER (ORDER BY d.day) / e.area_km2)::numeric, 1) AS percent_of_final
FROM banet.fire_event e
CROSS JOIN LATERAL generate_series(e.first_burn_date, e.last_burn_date, interval '1 day') AS d(day)
LEFT JOIN banet.fire_event_growth g ON g.event_id = e.id AND g.burn_date = d.day::date
WHERE e.id = CAST(:'event_id' AS bigint)
ORDER BY d.day;
