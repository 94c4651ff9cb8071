-- Plain PostgreSQL mode: the same 5-minute occupancy view, computed on the fly with date_bin.
CREATE VIEW lot_occupancy_5m AS
SELECT lot_id,
       date_bin(INTERVAL '5 minutes', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
       avg(occupied)::double precision AS occupied_avg,
       max(occupied) AS occupied_max,
       min(free) AS free_min,
       avg(free)::double precision AS free_avg,
       avg(unknown)::double precision AS unknown_avg,
       max(capacity) AS capacity,
       count(*) AS samples
FROM lot_occupancy
GROUP BY lot_id, bucket;
