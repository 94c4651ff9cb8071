-- TimescaleDB mode: gate history as hypertables. Reads and passages are the evidence of sessions
-- (kept two years, like spot status changes); acks are diagnostics; events what operators saw.
-- Operators' plate look-ups are an audit log: no retention policy.
SELECT create_hypertable('gate_reads', by_range('ts', INTERVAL '30 days'));
SELECT create_hypertable('gate_passages', by_range('ts', INTERVAL '30 days'));
SELECT create_hypertable('gate_acks', by_range('ts', INTERVAL '30 days'));
SELECT create_hypertable('gate_events', by_range('ts', INTERVAL '30 days'));
SELECT create_hypertable('plate_lookups', by_range('ts', INTERVAL '30 days'));
SELECT add_retention_policy('gate_reads', INTERVAL '730 days');
SELECT add_retention_policy('gate_passages', INTERVAL '730 days');
SELECT add_retention_policy('gate_acks', INTERVAL '90 days');
SELECT add_retention_policy('gate_events', INTERVAL '365 days');
