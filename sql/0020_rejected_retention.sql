-- Refusals are kept for a while, not for ever, and paged newest first by (received_at, rejected_id).
DROP INDEX IF EXISTS rejected_messages_time;
CREATE INDEX rejected_messages_page ON rejected_messages (received_at DESC, rejected_id DESC);
