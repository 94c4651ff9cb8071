"""Read-side SQL over history that must give the same answer in plain and TimescaleDB modes."""

# Occupancy of one lot over time, re-bucketed from the 5-minute view (a continuous aggregate in
# TimescaleDB mode, an on-the-fly date_bin view otherwise). Bucket widths are multiples of 5 minutes.
# $1 lot_id, $2 from, $3 to, $4 bucket interval.
LOT_OCCUPANCY_SERIES = """
SELECT date_bin($4::interval, bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket_start,
       sum(occupied_avg * samples) / sum(samples) AS occupied_avg,
       max(occupied_max) AS occupied_max,
       min(free_min) AS free_min,
       sum(free_avg * samples) / sum(samples) AS free_avg,
       sum(unknown_avg * samples) / sum(samples) AS unknown_avg,
       max(capacity) AS capacity,
       sum(samples)::bigint AS samples
FROM lot_occupancy_5m
WHERE lot_id = $1 AND bucket >= $2 AND bucket < $3
GROUP BY bucket_start
ORDER BY bucket_start
"""
