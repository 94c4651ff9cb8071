-- TimescaleDB mode: the hourly roll-up of lot occupancy, for KPIs over hours and days (and the CDS
-- metrics): the columns of lot_occupancy_5m, an hour wide, so a city's month of hours reads 12 times
-- fewer rows. Real-time aggregation as for the 5-minute aggregate (0040); the policy refreshes from the
-- oldest sample (start_offset NULL), so a database upgraded with months of history gets all of it
-- materialized by the policy's first run, and later runs redo only what late uploads invalidated.
CREATE MATERIALIZED VIEW lot_occupancy_1h WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT lot_id,
       time_bucket(INTERVAL '1 hour', ts) AS bucket,
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

SELECT add_continuous_aggregate_policy('lot_occupancy_1h',
    start_offset => NULL, end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '30 minutes');
