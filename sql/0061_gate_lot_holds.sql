-- A lot counted at its gates counts its holds too: reserved = holds without a spot (capped by the
-- room left), free = capacity - inside - reserved. One function for the sessions trigger, the
-- holds store and provisioning, so the three never disagree (docs/reservations.md).
CREATE FUNCTION gate_lot_recount(lot text) RETURNS void LANGUAGE sql AS $$
    UPDATE lots l SET occupied_count = least(i.inside, l.capacity),
                      reserved_count = least(h.held, l.capacity - least(i.inside, l.capacity)),
                      free_count = l.capacity - least(i.inside, l.capacity)
                                   - least(h.held, l.capacity - least(i.inside, l.capacity)),
                      unknown_count = 0, closed_count = 0,
                      counts_updated_at = now()
    FROM (SELECT count(*)::integer AS inside FROM sessions
          WHERE lot_id = lot AND state IN ('pending', 'open')) i,
         (SELECT count(*)::integer AS held FROM reservations
          WHERE lot_id = lot AND status = 'held' AND spot_id IS NULL) h
    WHERE l.lot_id = lot AND l.counted_by = 'gates';
$$;

CREATE OR REPLACE FUNCTION recount_gate_lot() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.state IN ('pending', 'open')) = (NEW.state IN ('pending', 'open')) THEN
        RETURN NULL;
    END IF;
    PERFORM gate_lot_recount(NEW.lot_id);
    RETURN NULL;
END $$;
