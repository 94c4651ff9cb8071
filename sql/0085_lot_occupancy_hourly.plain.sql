-- Plain PostgreSQL mode: the hourly roll-up of lot occupancy as a view, the same rows as TimescaleDB
-- mode's continuous aggregate (the columns of lot_occupancy_5m, an hour wide).
CREATE VIEW lot_occupancy_1h AS
SELECT lot_id,
       date_bin(INTERVAL '1 hour', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
       max(occupied) AS occupied_max,
       min(free) AS free_min,
       max(capacity) AS capacity,
       count(*) AS samples,
       step_integral(ts, occupied ORDER BY ts, occupied, free, unknown, capacity) AS occupied_step,
       step_integral(ts, free ORDER BY ts, occupied, free, unknown, capacity) AS free_step,
       step_integral(ts, unknown ORDER BY ts, occupied, free, unknown, capacity) AS unknown_step,
       step_integral(ts, capacity ORDER BY ts, occupied, free, unknown, capacity) AS capacity_step
FROM lot_occupancy
GROUP BY lot_id, bucket;
