-- Liveness without scanning devices: when each live bay sensor must next be looked at.
--
-- devices.silent_after moves with nearly every message and stays unindexed (an index there would
-- make every device update non-HOT, 0003). This table holds a lower bound of it instead, written
-- only when a sensor comes to life (first message, or back from offline) and by the sweep, which
-- moves a due row forward to the device's current silent_after (about once per stale window per
-- device) or, when the device really is silent, turns it offline and deletes the row. The sweep
-- reads only the due end of the index, so it costs the same at 1,000 or 1,000,000 devices.
CREATE TABLE device_deadlines (
    device_id text PRIMARY KEY REFERENCES devices ON DELETE CASCADE,
    check_at  timestamptz NOT NULL
);
CREATE INDEX device_deadlines_due ON device_deadlines (check_at);

INSERT INTO device_deadlines (device_id, check_at)
SELECT device_id, silent_after FROM devices
WHERE kind = 'bay_sensor' AND status <> 'offline' AND silent_after IS NOT NULL;

-- check_at must never be later than the deadline it stands for. silent_after only grows, except
-- when a device's window shrinks: then bring its check forward to what the new window allows.
CREATE FUNCTION device_deadline_window_shrunk() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE device_deadlines
    SET check_at = least(check_at, coalesce(NEW.last_seen_at, now()) + make_interval(secs => NEW.stale_after_s))
    WHERE device_id = NEW.device_id;
    RETURN NULL;
END $$;
CREATE TRIGGER device_deadline_window_shrunk
    AFTER UPDATE OF stale_after_s ON devices
    FOR EACH ROW WHEN (NEW.stale_after_s < OLD.stale_after_s)
    EXECUTE FUNCTION device_deadline_window_shrunk();
