-- depends: 0004_roles
--
-- banet.burned_cell, re-designed for bulk publishing (1,000,000 cells in a few seconds of
-- database CPU instead of ~45 s; figures in benchmarks/README.md, `## publish`).  What a row
-- cost under the 0001 design, measured per row: two foreign keys checked row by row (one SPI
-- query each) ~15 µs, the GiST index on the cell polygons ~12 µs, the B-tree on (region, row,
-- col) ~2.5 µs, the B-tree on run_id ~2.6 µs; and every re-estimated NRT cell was a non-HOT
-- update (new entries in every index, the unique check visiting the old version).  This
-- migration keeps the guarantees and changes how they are enforced:
--
-- * Foreign keys (region) -> banet.region (name) and (run_id) -> banet.run (id) are enforced by
--   statement-level triggers: one set-based check per statement over its transition table
--   (the distinct region/run_id values, which are locked FOR KEY SHARE like a real foreign key
--   locks them), on the parent and on every partition (statement triggers of a parent do not
--   fire for a COPY straight into a partition, which the publisher does).  The referenced side
--   keeps the old behaviour: deleting a run deletes its cells (ON DELETE CASCADE), renaming a
--   region renames it in its cells (ON UPDATE CASCADE), deleting a region that still has
--   cells, changing a referenced run id or truncating banet.run / banet.region while cells
--   exist is refused.  Violations raise SQLSTATE 23503 (foreign_key_violation) naming the
--   same constraints as before (burned_cell_region_fkey, burned_cell_run_id_fkey).  Caveat:
--   under REPEATABLE READ, a region or run deleted concurrently with a publish that inserted
--   cells for it is not detected on the deleting side (a real foreign key uses a cross-check
--   snapshot there); the pipeline runs in READ COMMITTED, where it is.
-- * Spatial index: BRIN (geom) with 8-page ranges replaces the GiST index.  Cells are written
--   sorted by (burn_date, row, col), so a block range holds a narrow band of rows of the grid
--   and its bounding box prunes well (polygon queries: see sql/queries/burned_area_in_polygon).
--   BRIN costs nothing per row; new ranges are summarised by the publisher right after its
--   commit (banet.summarize_burned_cell) and by autovacuum (autosummarize) after other writers.
-- * No B-tree on run_id (the cascade from banet.run finds a run's cells through the primary
--   key prefix (region, product)) and none on (region, row, col) (no query needs it: a cell's
--   history is a BRIN (geom) lookup of the cell, or a primary key range).  Without an index on
--   run_id, re-estimating a cell (new confidence, new run_id, same key) is a HOT update...
-- * ...when its page has room: partitions are created with fillfactor 50, so a page keeps
--   room for the next version of each of its rows (the old one is pruned once no snapshot
--   needs it).  Closed years can be compacted (ALTER TABLE … SET (fillfactor = 100);
--   VACUUM FULL) when they are no longer re-published.
--
-- Unchanged: the primary key (region, product, burn_date, row, col), CHECK constraints, BRIN on
-- burn_date, yearly RANGE partitions with a DEFAULT partition.

ALTER TABLE banet.burned_cell DROP CONSTRAINT IF EXISTS burned_cell_region_fkey;
ALTER TABLE banet.burned_cell DROP CONSTRAINT IF EXISTS burned_cell_run_id_fkey;
DROP INDEX IF EXISTS banet.burned_cell_geom_gist;
DROP INDEX IF EXISTS banet.burned_cell_run;
DROP INDEX IF EXISTS banet.burned_cell_cell;
CREATE INDEX IF NOT EXISTS burned_cell_geom_brin ON banet.burned_cell USING brin (geom)
    WITH (pages_per_range = 8, autosummarize = on);

-- --- referencing side: rows written to banet.burned_cell -----------------------------------
--
-- The trigger functions are SECURITY DEFINER, as the checks and cascades of a real foreign key
-- run as the table owner (the writer role needs no lock or delete rights of its own for them).

CREATE OR REPLACE FUNCTION banet.burned_cell_check_keys()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    regions  text[];
    runs     bigint[];
    bad_text text;
    bad_run  bigint;
BEGIN
    SELECT array_agg(DISTINCT g.region), array_agg(DISTINCT g.run_id) INTO regions, runs
    FROM (SELECT n.region, n.run_id FROM new_rows n GROUP BY n.region, n.run_id) g;
    IF regions IS NULL THEN
        RETURN NULL;
    END IF;
    -- Lock what the rows reference, as a foreign key does: a concurrent delete waits for us (and
    -- then cascades or refuses), one that committed first makes the check below fail.
    PERFORM 1 FROM banet.region r WHERE r.name = ANY (regions) FOR KEY SHARE;
    PERFORM 1 FROM banet.run r WHERE r.id = ANY (runs) FOR KEY SHARE;
    SELECT x INTO bad_text FROM unnest(regions) x WHERE NOT EXISTS (SELECT 1 FROM banet.region r WHERE r.name = x) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "%" violates foreign key constraint "burned_cell_region_fkey"', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'burned_cell_region_fkey', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
                  DETAIL = format('Key (region)=(%s) is not present in table "region".', bad_text),
                  HINT = 'register the region (banet.region) before writing its cells';
    END IF;
    SELECT x INTO bad_run FROM unnest(runs) x WHERE NOT EXISTS (SELECT 1 FROM banet.run r WHERE r.id = x) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'insert or update on table "%" violates foreign key constraint "burned_cell_run_id_fkey"', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'burned_cell_run_id_fkey', SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
                  DETAIL = format('Key (run_id)=(%s) is not present in table "run".', bad_run),
                  HINT = 'insert the banet.run row before writing its cells';
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION banet.burned_cell_check_keys() IS
    'Statement trigger: the foreign keys of banet.burned_cell (region -> banet.region, run_id -> banet.run), checked once per statement';

-- The triggers of one table (the parent or a partition).  SECURITY DEFINER for the same reason
-- as banet.ensure_burned_cell_partitions, which calls it for every new partition.
CREATE OR REPLACE FUNCTION banet.burned_cell_add_key_triggers(tbl regclass)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = tbl AND tgname = 'burned_cell_keys_insert') THEN
        EXECUTE format('CREATE TRIGGER burned_cell_keys_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION banet.burned_cell_check_keys()', tbl);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = tbl AND tgname = 'burned_cell_keys_update') THEN
        EXECUTE format('CREATE TRIGGER burned_cell_keys_update AFTER UPDATE ON %s REFERENCING NEW TABLE AS new_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION banet.burned_cell_check_keys()', tbl);
    END IF;
END
$$;

REVOKE ALL ON FUNCTION banet.burned_cell_add_key_triggers(regclass) FROM PUBLIC;

DO $$
DECLARE
    part regclass;
BEGIN
    PERFORM banet.burned_cell_add_key_triggers('banet.burned_cell'::regclass);
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'banet.burned_cell'::regclass LOOP
        PERFORM banet.burned_cell_add_key_triggers(part);
        EXECUTE format('ALTER TABLE %s SET (fillfactor = 50)', part);
    END LOOP;
END
$$;

-- --- referenced side: banet.run and banet.region -------------------------------------------

CREATE OR REPLACE FUNCTION banet.run_cascade_to_cells()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN  -- ON DELETE CASCADE (statement trigger over the deleted runs)
        DELETE FROM banet.burned_cell b USING old_rows o
        WHERE b.region = o.region AND b.product = o.product AND b.run_id = o.id;
    ELSIF TG_OP = 'UPDATE' THEN  -- NO ACTION (row trigger, fires only when the id changes)
        IF EXISTS (SELECT 1 FROM banet.burned_cell b WHERE b.region = OLD.region AND b.product = OLD.product AND b.run_id = OLD.id) THEN
            RAISE EXCEPTION 'update or delete on table "run" violates foreign key constraint "burned_cell_run_id_fkey" on table "burned_cell"'
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'burned_cell_run_id_fkey', SCHEMA = 'banet', TABLE = 'burned_cell',
                      DETAIL = format('Key (id)=(%s) is still referenced from table "burned_cell".', OLD.id);
        END IF;
    ELSIF EXISTS (SELECT 1 FROM banet.burned_cell) THEN  -- TRUNCATE without the cells
        RAISE EXCEPTION 'cannot truncate table "run" while banet.burned_cell has rows referencing it'
            USING ERRCODE = 'feature_not_supported', HINT = 'truncate banet.burned_cell in the same statement';
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION banet.region_cascade_to_cells()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad text;
BEGIN
    IF TG_OP = 'UPDATE' THEN  -- ON UPDATE CASCADE (row trigger: pairs the old and new name)
        UPDATE banet.burned_cell SET region = NEW.name WHERE region = OLD.name;
        RETURN NULL;
    ELSIF TG_OP = 'DELETE' THEN  -- NO ACTION
        SELECT o.name INTO bad FROM old_rows o WHERE EXISTS (SELECT 1 FROM banet.burned_cell b WHERE b.region = o.name) LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'update or delete on table "region" violates foreign key constraint "burned_cell_region_fkey" on table "burned_cell"'
                USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'burned_cell_region_fkey', SCHEMA = 'banet', TABLE = 'burned_cell',
                      DETAIL = format('Key (name)=(%s) is still referenced from table "burned_cell".', bad);
        END IF;
    ELSIF EXISTS (SELECT 1 FROM banet.burned_cell) THEN  -- TRUNCATE without the cells
        RAISE EXCEPTION 'cannot truncate table "region" while banet.burned_cell has rows referencing it'
            USING ERRCODE = 'feature_not_supported', HINT = 'truncate banet.burned_cell in the same statement';
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS burned_cell_run_delete ON banet.run;
CREATE TRIGGER burned_cell_run_delete AFTER DELETE ON banet.run REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION banet.run_cascade_to_cells();
DROP TRIGGER IF EXISTS burned_cell_run_update ON banet.run;
CREATE TRIGGER burned_cell_run_update AFTER UPDATE OF id ON banet.run
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION banet.run_cascade_to_cells();
DROP TRIGGER IF EXISTS burned_cell_run_truncate ON banet.run;
CREATE TRIGGER burned_cell_run_truncate AFTER TRUNCATE ON banet.run
    FOR EACH STATEMENT EXECUTE FUNCTION banet.run_cascade_to_cells();
DROP TRIGGER IF EXISTS burned_cell_region_rename ON banet.region;
CREATE TRIGGER burned_cell_region_rename AFTER UPDATE OF name ON banet.region
    FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION banet.region_cascade_to_cells();
DROP TRIGGER IF EXISTS burned_cell_region_delete ON banet.region;
CREATE TRIGGER burned_cell_region_delete AFTER DELETE ON banet.region REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION banet.region_cascade_to_cells();
DROP TRIGGER IF EXISTS burned_cell_region_truncate ON banet.region;
CREATE TRIGGER burned_cell_region_truncate AFTER TRUNCATE ON banet.region
    FOR EACH STATEMENT EXECUTE FUNCTION banet.region_cascade_to_cells();

-- --- partitions -----------------------------------------------------------------------------

-- As in 0002, plus: new partitions get fillfactor 50 and the key triggers.
CREATE OR REPLACE FUNCTION banet.ensure_burned_cell_partitions(first_day date, last_day date)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    y        integer;
    lo       date;
    hi       date;
    part     text;
    created  integer := 0;
BEGIN
    IF first_day IS NULL OR last_day IS NULL OR first_day > last_day THEN
        RAISE EXCEPTION 'ensure_burned_cell_partitions: expected first_day <= last_day, found % and %', first_day, last_day
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF extract(year FROM last_day) - extract(year FROM first_day) > 200 THEN
        RAISE EXCEPTION 'ensure_burned_cell_partitions: expected at most 200 years, found % to %', first_day, last_day
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Fast path without the lock: the common call finds every partition in place.
    IF NOT EXISTS (
        SELECT 1 FROM generate_series(extract(year FROM first_day)::integer, extract(year FROM last_day)::integer) g
        WHERE to_regclass(format('banet.burned_cell_y%s', g)) IS NULL
    ) THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('banet.burned_cell partitions'));
    FOR y IN extract(year FROM first_day)::integer .. extract(year FROM last_day)::integer LOOP
        part := format('burned_cell_y%s', y);
        CONTINUE WHEN to_regclass(format('banet.%I', part)) IS NOT NULL;
        lo := make_date(y, 1, 1);
        hi := make_date(y + 1, 1, 1);
        EXECUTE format('CREATE TABLE banet.%I (LIKE banet.burned_cell INCLUDING DEFAULTS INCLUDING CONSTRAINTS) WITH (fillfactor = 50)', part);
        EXECUTE format(
            'WITH moved AS (DELETE FROM banet.burned_cell_default WHERE burn_date >= %L AND burn_date < %L RETURNING *) '
            'INSERT INTO banet.%I SELECT * FROM moved', lo, hi, part);
        EXECUTE format('ALTER TABLE banet.burned_cell ATTACH PARTITION banet.%I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
        PERFORM banet.burned_cell_add_key_triggers(format('banet.%I', part)::regclass);
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;

-- Summarise the BRIN indexes of the partitions holding [first_day, last_day] over the block
-- ranges written since their last summary; returns the number of ranges summarised.  The
-- publisher calls it right after its commit (in a short transaction of its own: summarising
-- takes a SHARE UPDATE EXCLUSIVE lock on the partition, which would otherwise serialise
-- publishers of other regions until the commit), so that polygon queries prune the new cells
-- at once; autosummarize covers other writers and a publisher that died in between.
CREATE OR REPLACE FUNCTION banet.summarize_burned_cell(first_day date, last_day date)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    idx     regclass;
    total   integer := 0;
BEGIN
    FOR idx IN
        SELECT i.indexrelid::regclass
        FROM pg_inherits h
        JOIN pg_class p ON p.oid = h.inhrelid
        JOIN pg_index i ON i.indrelid = h.inhrelid
        JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'brin'
        WHERE h.inhparent = 'banet.burned_cell'::regclass
          AND (p.relname = 'burned_cell_default'
               OR p.relname IN (SELECT format('burned_cell_y%s', g)
                                FROM generate_series(extract(year FROM first_day)::integer, extract(year FROM last_day)::integer) g))
    LOOP
        total := total + brin_summarize_new_values(idx);
    END LOOP;
    RETURN total;
END
$$;

REVOKE ALL ON FUNCTION banet.summarize_burned_cell(date, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION banet.summarize_burned_cell(date, date) TO banet_writer;
