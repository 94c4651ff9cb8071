-- The gate_lot_counts trigger recounted a lot's inside sessions for every session row written,
-- although only lots counted at their gates keep that count: a sensor batch opening or closing
-- 2,000 on-street (bay) sessions counted 2,000 times, most of the sensor writer's time. Now once per
-- statement (transition tables), and only for the lots counted at their gates that the statement's
-- rows belong to; bay sessions of lots counted by sensors cost nothing here. The recount is
-- gate_lot_recount() (migration 0061: inside sessions and holds, one function for this trigger, the
-- holds store and provisioning); a PL/pgSQL body is resolved when it runs, and no migration in
-- between writes sessions. The row function recount_gate_lot() stays, called by no trigger.
DROP TRIGGER gate_lot_counts ON sessions;

CREATE FUNCTION recount_gate_lots_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM gate_lot_recount(g.lot_id)
    FROM (SELECT l.lot_id FROM lots l
          WHERE l.counted_by = 'gates' AND l.lot_id IN (SELECT lot_id FROM new_sessions)
          ORDER BY l.lot_id) g;
    RETURN NULL;
END $$;

-- An update counts only where a session went in or out of pending/open (a column list cannot be
-- combined with transition tables, so the trigger fires on every update and compares the states).
CREATE FUNCTION recount_gate_lots_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM gate_lot_recount(g.lot_id)
    FROM (SELECT l.lot_id FROM lots l
          WHERE l.counted_by = 'gates' AND l.lot_id IN (
              SELECT n.lot_id FROM new_sessions n JOIN old_sessions o USING (session_id)
              WHERE (o.state IN ('pending', 'open')) <> (n.state IN ('pending', 'open')))
          ORDER BY l.lot_id) g;
    RETURN NULL;
END $$;

CREATE TRIGGER gate_lot_counts_insert AFTER INSERT ON sessions
    REFERENCING NEW TABLE AS new_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION recount_gate_lots_inserted();
CREATE TRIGGER gate_lot_counts_update AFTER UPDATE ON sessions
    REFERENCING OLD TABLE AS old_sessions NEW TABLE AS new_sessions
    FOR EACH STATEMENT EXECUTE FUNCTION recount_gate_lots_updated();

