-- TimescaleDB mode: refusals become a hypertable and a retention policy drops whole days after 30 days.
-- (Plain mode: the gateway deletes refusals older than PARKING_GATEWAY_REJECTED_RETENTION_DAYS.)
ALTER TABLE rejected_messages DROP CONSTRAINT rejected_messages_pkey;
ALTER TABLE rejected_messages ADD PRIMARY KEY (rejected_id, received_at);
SELECT create_hypertable('rejected_messages', by_range('received_at', INTERVAL '1 day'), migrate_data => true);
SELECT add_retention_policy('rejected_messages', INTERVAL '30 days');
