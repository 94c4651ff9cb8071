-- Device gateway bookkeeping: the tie-break of same-ts readings, the silence deadline, last presence.

-- Newest (ts, seq) wins for a spot's current state; ts alone can tie after a device reboot.
ALTER TABLE spots ADD COLUMN last_reading_seq bigint;

-- last_seen_at + stale_after_s, kept by the gateway so the liveness sweep is an index range scan.
ALTER TABLE devices ADD COLUMN silent_after timestamptz;
-- The last presence message (retained will): a redelivered retained message records nothing new.
ALTER TABLE devices ADD COLUMN presence text CHECK (presence IN ('online', 'offline'));

CREATE INDEX devices_silent_after ON devices (silent_after)
    WHERE kind = 'bay_sensor' AND status <> 'offline';
