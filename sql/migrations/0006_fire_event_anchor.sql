-- depends: 0005_burned_cell_fast_publish
--
-- Stable fire-event ids.  An event is identified within its product window (region, product,
-- window_start, window_end of its run) by its anchor: the first of its cells in raster order
-- (smallest row, then smallest column).  Re-publishing a window keeps the id of every event
-- whose anchor is unchanged (its row is updated in place, or left alone when nothing changed),
-- deletes the events whose anchor is gone and inserts the new ones.  Rows written before this
-- migration have no anchor; the next publish of their window replaces them once.
ALTER TABLE banet.fire_event ADD COLUMN IF NOT EXISTS anchor_row integer CHECK (anchor_row >= 0);
ALTER TABLE banet.fire_event ADD COLUMN IF NOT EXISTS anchor_col integer CHECK (anchor_col >= 0);

COMMENT ON COLUMN banet.fire_event.anchor_row IS
    'Grid row of the event''s first cell in raster order: with anchor_col, the event''s identity within its run window (ids survive re-publishing)';
COMMENT ON COLUMN banet.fire_event.anchor_col IS
    'Grid column of the event''s first cell in raster order (see anchor_row)';
