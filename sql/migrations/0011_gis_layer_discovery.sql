-- depends: 0009_fire_events_space_time
--
-- GIS clients that find layers by themselves (`ogrinfo PG:…` without `schemas=`, QGIS's PostGIS
-- browser) list only the analyst's layers, each with one integer key (docs/analysts.md):
--
-- * banet.burned_cell.geom is of the domain banet.cell_polygon (over geometry(Polygon, 4326)).
--   GDAL's layer discovery reads pg_class/pg_attribute (not privileges) and keeps the columns whose
--   type is named geometry or geography; PostGIS's geometry_columns does the same.  So the table
--   behind v_burned_cell and its yearly partitions in banet_internal (composite keys, unreadable by
--   analysts) no longer show up as 19 layers with warnings and errors, whatever the privileges.
--   The analyst layer banet.v_burned_cell exposes the same polygons as geometry(Polygon, 4326).
--   Functions and operators take the domain as geometry, binary COPY of EWKB is unchanged, and the
--   change rewrites no row (a domain without constraints over the column's own type).
-- * banet.region's primary key is its integer id (added by 0009); name stays UNIQUE NOT NULL and
--   is still what run, cube_day and fire_event reference (their foreign keys are re-created as
--   they were, on the new unique constraint).

-- --- burned cells: out of the layer lists -------------------------------------------------------
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'cell_polygon' AND typnamespace = 'banet'::regnamespace) THEN
        CREATE DOMAIN banet.cell_polygon AS geometry(Polygon, 4326);
    END IF;
END
$$;
COMMENT ON DOMAIN banet.cell_polygon IS
    'Polygon of a burned cell in banet.burned_cell: a geometry that GIS layer discovery skips (analysts open banet.v_burned_cell)';
GRANT USAGE ON DOMAIN banet.cell_polygon TO banet_reader, banet_writer;

DROP VIEW IF EXISTS banet.v_burned_cell;
ALTER TABLE banet.burned_cell ALTER COLUMN geom TYPE banet.cell_polygon;

CREATE VIEW banet.v_burned_cell AS
SELECT (r.id::bigint << 52) | ((c.product = 'monthly')::int::bigint << 51)
       | ((c.burn_date - DATE '1970-01-01')::bigint << 34) | (c."row"::bigint << 17) | c.col::bigint AS id,
       c.region, c.product, c.burn_date, c."row", c.col, c.confidence, c.area_km2, c.event_id, c.run_id,
       c.geom::geometry(Polygon, 4326) AS geom
FROM banet.burned_cell c
JOIN banet.region r ON r.name = c.region;
COMMENT ON VIEW banet.v_burned_cell IS
    'Burned cells (current estimate per cell and burn date) with an integer id for GIS clients; filter by region, product and burn_date';
GRANT SELECT ON banet.v_burned_cell TO banet_reader;

-- --- regions: the integer id is the primary key -------------------------------------------------
DO $$
DECLARE
    fk record;
    fks text[] := '{}';
BEGIN
    IF EXISTS (SELECT 1 FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
               WHERE c.conrelid = 'banet.region'::regclass AND c.contype = 'p' AND a.attname = 'id') THEN
        RETURN;  -- already done
    END IF;
    FOR fk IN SELECT conrelid::regclass AS tbl, conname, pg_get_constraintdef(oid) AS def
              FROM pg_constraint WHERE confrelid = 'banet.region'::regclass AND contype = 'f'
    LOOP
        fks := fks || format('ALTER TABLE %s ADD CONSTRAINT %I %s', fk.tbl, fk.conname, fk.def);
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', fk.tbl, fk.conname);
    END LOOP;
    ALTER TABLE banet.region DROP CONSTRAINT region_pkey;
    ALTER TABLE banet.region ADD CONSTRAINT region_name_key UNIQUE (name);
    ALTER TABLE banet.region DROP CONSTRAINT region_id_key;
    ALTER TABLE banet.region ADD CONSTRAINT region_pkey PRIMARY KEY (id);
    FOR i IN 1 .. coalesce(array_length(fks, 1), 0) LOOP
        EXECUTE fks[i];
    END LOOP;
END
$$;
COMMENT ON COLUMN banet.region.id IS
    'Primary key, for GIS clients (QGIS, OGR); 1..2047 (it is packed into banet.v_burned_cell.id).  Other tables reference the unique name';

-- Region ids come from max(id) + 1, not a sequence: INSERT … ON CONFLICT (name) evaluates column
-- defaults before it finds the conflict, so with the identity of 0009 every publish (which
-- re-registers its region) used up an id, and after 2047 publishes no new region fit the 1..2047
-- range.  The trigger takes no number for a name already registered (it keeps that row's id), and
-- an advisory lock makes two new regions at once take different ids.
ALTER TABLE banet.region ALTER COLUMN id DROP IDENTITY IF EXISTS;
ALTER TABLE banet.region ALTER COLUMN id SET NOT NULL;

CREATE OR REPLACE FUNCTION banet.region_assign_id() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.id IS NOT NULL THEN
        RETURN NEW;
    END IF;
    SELECT r.id INTO NEW.id FROM banet.region r WHERE r.name = NEW.name;
    IF NEW.id IS NULL THEN
        PERFORM pg_advisory_xact_lock(hashtext('banet.region.id'));
        SELECT coalesce(max(r.id), 0) + 1 INTO NEW.id FROM banet.region r;
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS region_assign_id ON banet.region;
CREATE TRIGGER region_assign_id BEFORE INSERT ON banet.region FOR EACH ROW EXECUTE FUNCTION banet.region_assign_id();
