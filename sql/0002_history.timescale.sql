-- TimescaleDB mode: hypertables, a continuous aggregate of lot occupancy, retention and compression.
SELECT create_hypertable('sensor_readings', by_range('ts', INTERVAL '1 day'));
SELECT create_hypertable('spot_status_changes', by_range('ts', INTERVAL '7 days'));
SELECT create_hypertable('device_presence_changes', by_range('ts', INTERVAL '30 days'));
SELECT create_hypertable('lot_occupancy', by_range('ts', INTERVAL '7 days'));

CREATE MATERIALIZED VIEW lot_occupancy_5m WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT lot_id,
       time_bucket(INTERVAL '5 minutes', ts) AS bucket,
       avg(occupied)::double precision AS occupied_avg,
       max(occupied) AS occupied_max,
       min(free) AS free_min,
       avg(free)::double precision AS free_avg,
       avg(unknown)::double precision AS unknown_avg,
       max(capacity) AS capacity,
       count(*) AS samples
FROM lot_occupancy
GROUP BY lot_id, bucket
WITH NO DATA;

SELECT add_continuous_aggregate_policy('lot_occupancy_5m',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '5 minutes',
    schedule_interval => INTERVAL '5 minutes');

ALTER TABLE sensor_readings SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id',
    timescaledb.compress_orderby = 'ts DESC, seq');
ALTER TABLE spot_status_changes SET (timescaledb.compress, timescaledb.compress_segmentby = 'lot_id',
    timescaledb.compress_orderby = 'ts DESC');
ALTER TABLE lot_occupancy SET (timescaledb.compress, timescaledb.compress_segmentby = 'lot_id',
    timescaledb.compress_orderby = 'ts DESC');
-- Old uploads are accepted for 72 h, so compress only chunks older than that.
SELECT add_compression_policy('sensor_readings', INTERVAL '7 days');
SELECT add_compression_policy('spot_status_changes', INTERVAL '14 days');
SELECT add_compression_policy('lot_occupancy', INTERVAL '14 days');
-- Raw readings are kept 90 days; status changes (the billing evidence) two years; the aggregate longer.
SELECT add_retention_policy('sensor_readings', INTERVAL '90 days');
SELECT add_retention_policy('spot_status_changes', INTERVAL '730 days');
SELECT add_retention_policy('device_presence_changes', INTERVAL '365 days');
SELECT add_retention_policy('lot_occupancy', INTERVAL '90 days');
