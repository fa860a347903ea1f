-- depends: 0002_burned_cell_partitions
--
-- Views for the common questions.

-- Burned area per region, product and calendar month of burn date.
CREATE OR REPLACE VIEW banet.v_burned_area_monthly AS
SELECT region,
       product,
       date_trunc('month', burn_date)::date AS month,
       count(*)                             AS n_cells,
       sum(area_km2)                        AS area_km2
FROM banet.burned_cell
GROUP BY region, product, date_trunc('month', burn_date);

COMMENT ON VIEW banet.v_burned_area_monthly IS
    'Burned cells and area (km2, WGS84 ellipsoid) per region, product (nrt|monthly) and month of burn date';

-- Fire events of the latest succeeded run of each region and product (latest target date,
-- then latest finish, then highest id).
CREATE OR REPLACE VIEW banet.v_latest_fire_events AS
WITH latest AS (
    SELECT DISTINCT ON (region, product) id, region, product, target_date, finished_at
    FROM banet.run
    WHERE status = 'succeeded'
    ORDER BY region, product, target_date DESC, finished_at DESC NULLS LAST, id DESC
)
SELECT e.id,
       e.run_id,
       e.region,
       e.product,
       l.target_date,
       e.first_burn_date,
       e.last_burn_date,
       e.area_km2,
       e.n_cells,
       e.mean_confidence,
       e.geom
FROM banet.fire_event e
JOIN latest l ON l.id = e.run_id;

COMMENT ON VIEW banet.v_latest_fire_events IS
    'Fire events of the latest succeeded run per region and product';
