-- Device gateway bookkeeping: the tie-break of same-ts readings, the silence deadline, last presence.

-- Newest (ts, seq) wins for a spot's current state; ts alone can tie after a device reboot.
ALTER TABLE spots ADD COLUMN last_reading_seq bigint;

-- last_seen_at + stale_after_s, kept by the gateway with every message it accepts. Deliberately
-- not indexed: an index would make every device update non-HOT (all indexes rewritten); the
-- liveness sweep scans devices every few seconds instead (~0.1 s per million devices).
ALTER TABLE devices ADD COLUMN silent_after timestamptz;
-- The last presence message (retained will): a redelivered retained message records nothing new.
ALTER TABLE devices ADD COLUMN presence text CHECK (presence IN ('online', 'offline'));

-- The gateway updates a spot and its sensor with nearly every reading: leave room on each page
-- so those updates stay HOT (no index writes, no page hops).
ALTER TABLE spots SET (fillfactor = 70);
ALTER TABLE devices SET (fillfactor = 70);
