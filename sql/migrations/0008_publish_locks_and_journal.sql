-- depends: 0007_run_tiling_window
--
-- Publishing locks that readers cannot take, and the token that says a publish committed.
--
-- * banet.publish_lock: one row per lock scope ('<region>/<product>' for the publisher,
--   'burned_cell partitions' for the partition function).  Writers lock the row with
--   SELECT ... FOR UPDATE, which needs the UPDATE privilege: a SELECT-only login can no longer
--   block publishing (advisory locks are open to every login).  Writers also set lock_timeout,
--   so a lock that is held too long becomes a retryable error instead of a wait without end.
-- * banet.run.publish_token: the token of the file transaction (journal) whose commit made
--   the run current.  A publisher killed between its file puts and its commit leaves a journal
--   in the products root; the next publish of the scope looks its token up here: present means
--   the commit happened (drop the backups), absent means it did not (restore them).
CREATE TABLE IF NOT EXISTS banet.publish_lock (
    scope text PRIMARY KEY
);
COMMENT ON TABLE banet.publish_lock IS
    'Lock rows of the publishers (SELECT ... FOR UPDATE needs UPDATE: readers cannot block publishing)';
REVOKE ALL ON banet.publish_lock FROM PUBLIC;
REVOKE ALL ON banet.publish_lock FROM banet_reader;
GRANT SELECT, INSERT, UPDATE ON banet.publish_lock TO banet_writer;
INSERT INTO banet.publish_lock (scope) VALUES ('burned_cell partitions') ON CONFLICT DO NOTHING;

ALTER TABLE banet.run ADD COLUMN IF NOT EXISTS publish_token text;
CREATE UNIQUE INDEX IF NOT EXISTS run_publish_token_key ON banet.run (publish_token) WHERE publish_token IS NOT NULL;
COMMENT ON COLUMN banet.run.publish_token IS
    'Token of the file transaction committed with this run (see banet_ops/publish/storage.py journals)';

-- The partition function (SECURITY DEFINER) serialises its callers on the lock row instead of
-- an advisory lock.
DO $$
DECLARE
    def text := pg_get_functiondef('banet.ensure_burned_cell_partitions(date, date)'::regprocedure);
    old text := 'PERFORM pg_advisory_xact_lock(hashtext(''banet.burned_cell partitions''));';
BEGIN
    IF position(old IN def) = 0 THEN
        RAISE EXCEPTION 'expected the advisory lock in banet.ensure_burned_cell_partitions, found another body';
    END IF;
    EXECUTE replace(def, old, 'PERFORM 1 FROM banet.publish_lock WHERE scope = ''burned_cell partitions'' FOR UPDATE;');
END
$$;

-- Only writers create partitions (a reader calling it inside an open transaction would hold the lock row).
REVOKE EXECUTE ON FUNCTION banet.ensure_burned_cell_partitions(date, date) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION banet.ensure_burned_cell_partitions(date, date) TO banet_writer;
