-- Drivers sent to lots by POST /v1/guidance, so that the next driver is not sent into the queue the
-- previous ones are forming. A row lives until an hour after the driver's expected arrival (the route
-- deletes older rows as it writes), so the table stays small whatever the traffic.
CREATE TABLE guidance_sends (
    send_id   bigserial PRIMARY KEY,
    lot_id    text NOT NULL REFERENCES lots ON DELETE CASCADE,
    sent_at   timestamptz NOT NULL,
    arrive_at timestamptz NOT NULL
);
CREATE INDEX guidance_sends_lot_arrive ON guidance_sends (lot_id, arrive_at);
CREATE INDEX guidance_sends_arrive ON guidance_sends (arrive_at);
