-- Occupancy weighted by time, not by samples. A lot_occupancy row is the lot's state from its ts
-- until the next row; a 5-minute bucket keeps, besides the old per-sample columns, its first and last
-- sample and the integral of each count over the time between them (count × microseconds), so that a
-- reader can stitch buckets together: each bucket's last state holds until the next bucket's first
-- sample, and the state before a window is carried into it (guidance_api/history_sql.py).
-- TimescaleDB's own time_weight() lives in the separate timescaledb_toolkit extension, which is not
-- part of TimescaleDB itself (and not in the TimescaleDB build the test tier runs); the same arithmetic
-- is written here once, as an ordinary ordered aggregate, and serves both modes.

-- State: {first µs since the epoch, first value, last µs, last value, integral in value × µs}.
-- Microseconds since 1970 fit 53 bits until the year 2255, so bigint arithmetic is exact.
CREATE FUNCTION step_integral_add(state bigint[], at timestamptz, value integer)
RETURNS bigint[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN state IS NULL THEN
            ARRAY[(extract(epoch FROM at) * 1000000)::bigint, value, (extract(epoch FROM at) * 1000000)::bigint, value, 0]
        ELSE
            ARRAY[state[1], state[2], (extract(epoch FROM at) * 1000000)::bigint, value,
                  state[5] + state[4] * ((extract(epoch FROM at) * 1000000)::bigint - state[3])]
    END
$$;

-- step_integral(ts, value ORDER BY ts, ...): the integral of a step function over [first ts, last ts].
-- It needs its input in time order (ORDER BY inside the call); it is not parallel-combinable.
CREATE AGGREGATE step_integral(timestamptz, integer) (SFUNC = step_integral_add, STYPE = bigint[]);
