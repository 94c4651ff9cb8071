-- TimescaleDB mode: the continuous aggregate again, with the columns time weighting needs.
DROP MATERIALIZED VIEW lot_occupancy_5m;

CREATE MATERIALIZED VIEW lot_occupancy_5m WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT lot_id,
       time_bucket(INTERVAL '5 minutes', ts) AS bucket,
       max(occupied) AS occupied_max,
       min(free) AS free_min,
       max(capacity) AS capacity,
       count(*) AS samples,
       step_integral(ts, occupied ORDER BY ts, occupied, free, unknown, capacity) AS occupied_step,
       step_integral(ts, free ORDER BY ts, occupied, free, unknown, capacity) AS free_step,
       step_integral(ts, unknown ORDER BY ts, occupied, free, unknown, capacity) AS unknown_step,
       step_integral(ts, capacity ORDER BY ts, occupied, free, unknown, capacity) AS capacity_step
FROM lot_occupancy
GROUP BY lot_id, bucket
WITH NO DATA;

SELECT add_continuous_aggregate_policy('lot_occupancy_5m',
    start_offset => INTERVAL '3 days', end_offset => INTERVAL '5 minutes',
    schedule_interval => INTERVAL '5 minutes');
