-- depends: 0006_fire_event_anchor
--
-- How a run was made: the inference tiling preset (`published`, `fast` or `custom:…`) and the
-- number of ingested days of its 64-day window (runs below BANET_MIN_WINDOW_DAYS are refused).
-- NULL on rows written before this migration.
ALTER TABLE banet.run ADD COLUMN IF NOT EXISTS tiling text;
ALTER TABLE banet.run ADD COLUMN IF NOT EXISTS observed_days smallint CHECK (observed_days BETWEEN 0 AND 64);

COMMENT ON COLUMN banet.run.tiling IS
    'Inference tiling preset: published (the published BA-Net grid), fast, or custom:<tile>/<overlap>/<blend>/<starts>';
COMMENT ON COLUMN banet.run.observed_days IS
    'Days of the 64-day input window present in the cube snapshot read';
