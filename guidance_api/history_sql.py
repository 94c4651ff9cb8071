"""Read-side SQL over history that must give the same answer in plain and TimescaleDB modes."""

# Occupancy of lots over time, weighted by time, stitched from the 5-minute view or the hourly roll-up
# (continuous aggregates in TimescaleDB mode, on-the-fly views otherwise; sql/0040, 0085). A lot_occupancy
# row is the lot's state from its ts until the next row. Each view row knows the integral of its
# counts between its first and last sample; its last state holds until the next row's first sample
# (or the window's end), split across output buckets; the last sample before the window is carried in
# as the state at its start. Times are microseconds since 1970 (exact in bigint), averages are
# integrals over covered time, so a busy minute weighs a minute and a quiet hour an hour.
# Output buckets are `$4` wide on the local clock of zone `$5` from 2000-01-01 00:00 local: 'UTC' gives
# the UTC buckets of the operator history; a lot's own zone gives its local hours and days (a day
# across a daylight-saving change lasts 23 or 25 hours). The same arithmetic, in Python, is
# parking_core.time_weight, and tests/integration/api/test_time_weighted.py holds the two together.
# $1 lot ids, $2 window start (a multiple of the view's width), $3 window end, $4 bucket width (a
# multiple of the view's width, on bounds that are the view's bucket bounds), $5 time zone.
_SERIES = """
WITH carried AS (
    SELECT l.lot_id, c.* FROM unnest($1::text[]) AS l(lot_id)
    CROSS JOIN LATERAL (
        SELECT o.occupied, o.free, o.unknown, o.capacity FROM lot_occupancy o
        WHERE o.lot_id = l.lot_id AND o.ts < $2
        ORDER BY o.ts DESC, o.occupied DESC, o.free DESC, o.unknown DESC, o.capacity DESC
        LIMIT 1
    ) c
), pieces AS (
    SELECT lot_id, w0 AS first_us, w0 AS last_us, 0::bigint AS samples,
           occupied AS last_occupied, free AS last_free, unknown AS last_unknown, capacity AS last_capacity,
           0::bigint AS occupied_us, 0::bigint AS free_us, 0::bigint AS unknown_us, 0::bigint AS capacity_us,
           occupied AS occupied_max, free AS free_min, capacity
    FROM carried, (SELECT (extract(epoch FROM $2::timestamptz) * 1000000)::bigint AS w0) w
    UNION ALL
    SELECT lot_id, occupied_step[1], occupied_step[3], samples,
           occupied_step[4]::integer, free_step[4]::integer, unknown_step[4]::integer,
           capacity_step[4]::integer,
           occupied_step[5], free_step[5], unknown_step[5], capacity_step[5],
           occupied_max, free_min, capacity
    FROM {view} WHERE lot_id = ANY($1::text[]) AND bucket >= $2 AND bucket < $3
), timed AS (
    SELECT p.*, coalesce(lead(first_us) OVER (PARTITION BY lot_id ORDER BY first_us, samples),
                         (extract(epoch FROM $3::timestamptz) * 1000000)::bigint) AS until_us
    FROM pieces p
), parts AS (
    -- inside a 5-minute row: its samples and the time between its first and last one
    SELECT lot_id, date_bin($4::interval, (TIMESTAMPTZ 'epoch' + first_us * INTERVAL '1 microsecond')
                            AT TIME ZONE $5::text, TIMESTAMP '2000-01-01') AS local_start,
           samples, last_us - first_us AS covered_us, occupied_us, free_us, unknown_us, capacity_us,
           occupied_max, free_min, capacity
    FROM timed WHERE samples > 0
    UNION ALL
    -- after it: its last state until the next row's first sample, in every bucket it reaches
    SELECT t.lot_id, b.local_start, 0, b.span_us, t.last_occupied * b.span_us, t.last_free * b.span_us,
           t.last_unknown * b.span_us, t.last_capacity * b.span_us,
           t.last_occupied, t.last_free, t.last_capacity
    FROM timed t
    CROSS JOIN LATERAL (
        SELECT g AS local_start,
               least((extract(epoch FROM (g + $4::interval) AT TIME ZONE $5::text) * 1000000)::bigint,
                     t.until_us)
               - greatest((extract(epoch FROM g AT TIME ZONE $5::text) * 1000000)::bigint, t.last_us)
               AS span_us
        FROM generate_series(
            date_bin($4::interval, (TIMESTAMPTZ 'epoch' + t.last_us * INTERVAL '1 microsecond')
                     AT TIME ZONE $5::text, TIMESTAMP '2000-01-01'),
            (TIMESTAMPTZ 'epoch' + (t.until_us - 1) * INTERVAL '1 microsecond') AT TIME ZONE $5::text,
            $4::interval) AS g
    ) b
    WHERE t.until_us > t.last_us AND b.span_us > 0
)
SELECT lot_id, local_start AT TIME ZONE $5::text AS bucket_start,
       sum(covered_us)::bigint AS covered_us,
       sum(occupied_us)::numeric / sum(covered_us) AS occupied_avg,
       sum(free_us)::numeric / sum(covered_us) AS free_avg,
       sum(unknown_us)::numeric / sum(covered_us) AS unknown_avg,
       sum(capacity_us)::numeric / sum(covered_us) AS capacity_avg,
       max(occupied_max) AS occupied_max, min(free_min) AS free_min, max(capacity) AS capacity,
       sum(samples)::bigint AS samples
FROM parts
GROUP BY lot_id, local_start
HAVING sum(covered_us) > 0
ORDER BY lot_id, local_start
"""

# From the 5-minute view: any bucket that is a whole multiple of 5 minutes.
TIME_WEIGHTED_SERIES = _SERIES.replace("{view}", "lot_occupancy_5m")
# From the hourly roll-up (sql/0085): the same rows when every output bucket bound is a whole UTC hour
# (hours and days of a zone whose offset is whole hours); 12 times fewer rows to stitch.
HOURLY_SERIES = _SERIES.replace("{view}", "lot_occupancy_1h")
