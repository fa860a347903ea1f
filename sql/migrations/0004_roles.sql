-- depends: 0003_views
--
-- Roles: banet_reader (analysts: SELECT only) and banet_writer (the pipeline: read/write).
-- They are NOLOGIN group roles, created only when missing (roles are cluster-wide, so several
-- databases of one cluster share them); grant them to login users:
--     CREATE ROLE alice LOGIN PASSWORD '...' IN ROLE banet_reader;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'banet_reader') THEN
        CREATE ROLE banet_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'banet_writer') THEN
        CREATE ROLE banet_writer NOLOGIN;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA banet TO banet_reader, banet_writer;

-- Reader: SELECT on every table and view, now and in the future.
GRANT SELECT ON ALL TABLES IN SCHEMA banet TO banet_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA banet GRANT SELECT ON TABLES TO banet_reader;

-- Writer: read/write on tables, sequences for the bigserial keys, and the partition function.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA banet TO banet_writer;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA banet TO banet_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA banet GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO banet_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA banet GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO banet_writer;
GRANT EXECUTE ON FUNCTION banet.ensure_burned_cell_partitions(date, date) TO banet_writer;
