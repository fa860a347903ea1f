-- depends: 0001_base_schema
--
-- banet.ensure_burned_cell_partitions(first_day, last_day): create the yearly partitions of
-- banet.burned_cell that cover [first_day, last_day] and do not exist yet.  Idempotent and safe
-- to call concurrently (an advisory lock serialises callers).  Rows that already sit in the
-- DEFAULT partition for a new year are moved into the new partition in the same transaction,
-- so attaching never fails on them.  Returns the number of partitions created.
--
-- SECURITY DEFINER: the pipeline's writer role may call it without owning the table; the new
-- partitions belong to the schema owner and get its default privileges (migration 0004).

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
    PERFORM pg_advisory_xact_lock(hashtext('banet.burned_cell partitions'));
    FOR y IN extract(year FROM first_day)::integer .. extract(year FROM last_day)::integer LOOP
        part := format('burned_cell_y%s', y);
        CONTINUE WHEN to_regclass(format('banet.%I', part)) IS NOT NULL;
        lo := make_date(y, 1, 1);
        hi := make_date(y + 1, 1, 1);
        EXECUTE format('CREATE TABLE banet.%I (LIKE banet.burned_cell INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
        EXECUTE format(
            'WITH moved AS (DELETE FROM banet.burned_cell_default WHERE burn_date >= %L AND burn_date < %L RETURNING *) '
            'INSERT INTO banet.%I SELECT * FROM moved', lo, hi, part);
        EXECUTE format('ALTER TABLE banet.burned_cell ATTACH PARTITION banet.%I FOR VALUES FROM (%L) TO (%L)', part, lo, hi);
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;

COMMENT ON FUNCTION banet.ensure_burned_cell_partitions(date, date) IS
    'Create the missing yearly partitions of banet.burned_cell covering [first_day, last_day]; returns how many were created';

REVOKE ALL ON FUNCTION banet.ensure_burned_cell_partitions(date, date) FROM PUBLIC;

-- Partitions for the VIIRS era up to next year; later years are added by the publisher.
DO $$
BEGIN
    PERFORM banet.ensure_burned_cell_partitions(DATE '2012-01-01', (date_trunc('year', now()) + interval '1 year')::date);
END
$$;
