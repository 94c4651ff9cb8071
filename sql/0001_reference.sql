-- Reference data: districts, lots, zones, spots, devices, tokens, tariffs.
-- Geo search uses the contrib extensions cube + earthdistance (in Debian's postgresql-contrib and in
-- PGlite alike), so one schema serves plain PostgreSQL and TimescaleDB without PostGIS.
CREATE EXTENSION IF NOT EXISTS cube;
CREATE EXTENSION IF NOT EXISTS earthdistance;

CREATE TABLE districts (
    district_id text PRIMARY KEY CHECK (district_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tariffs (
    tariff_id  text PRIMARY KEY CHECK (tariff_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    document   jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE lots (
    lot_id      text PRIMARY KEY CHECK (lot_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    district_id text NOT NULL REFERENCES districts,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('on_street', 'off_street')),
    lat         double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon         double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    earth_point cube GENERATED ALWAYS AS (ll_to_earth(lat, lon)) STORED,
    capacity    integer NOT NULL CHECK (capacity >= 0),
    time_zone   text NOT NULL DEFAULT 'Asia/Shanghai',
    tariff_id   text,
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    -- Live counters, kept by the gateway in the same transaction as the spots they count.
    free_count     integer NOT NULL DEFAULT 0,
    occupied_count integer NOT NULL DEFAULT 0,
    reserved_count integer NOT NULL DEFAULT 0,
    unknown_count  integer NOT NULL DEFAULT 0,
    closed_count   integer NOT NULL DEFAULT 0,
    counts_updated_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT lot_counts_in_range CHECK (
        free_count BETWEEN 0 AND capacity AND occupied_count BETWEEN 0 AND capacity
        AND reserved_count BETWEEN 0 AND capacity AND unknown_count BETWEEN 0 AND capacity
        AND closed_count BETWEEN 0 AND capacity
        AND free_count + occupied_count + reserved_count + unknown_count + closed_count <= capacity)
);
CREATE INDEX lots_earth_point ON lots USING gist (earth_point);
CREATE INDEX lots_district ON lots (district_id);

CREATE TABLE zones (
    zone_id    text PRIMARY KEY CHECK (zone_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    lot_id     text NOT NULL REFERENCES lots ON DELETE CASCADE,
    name       text NOT NULL DEFAULT ''
);

CREATE TABLE spots (
    spot_id    text PRIMARY KEY CHECK (spot_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    lot_id     text NOT NULL REFERENCES lots ON DELETE CASCADE,
    zone_id    text REFERENCES zones,
    label      text NOT NULL DEFAULT '',
    status     text NOT NULL DEFAULT 'unknown'
               CHECK (status IN ('free', 'occupied', 'reserved', 'closed', 'unknown')),
    since      timestamptz NOT NULL DEFAULT now(),
    -- The device time of the reading that decided the status: newer readings win.
    last_reading_ts timestamptz,
    occupied   boolean  -- the last sensor reading, kept when the spot turns unknown
);
CREATE INDEX spots_lot ON spots (lot_id);

CREATE TABLE devices (
    device_id  text PRIMARY KEY CHECK (device_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    kind       text NOT NULL CHECK (kind IN ('bay_sensor', 'gate', 'sign')),
    spot_id    text REFERENCES spots ON DELETE SET NULL,
    lot_id     text NOT NULL REFERENCES lots ON DELETE CASCADE,
    lane       text CHECK (lane IN ('entry', 'exit', 'both')),
    model      text NOT NULL DEFAULT '',
    heartbeat_interval_s integer NOT NULL DEFAULT 600 CHECK (heartbeat_interval_s > 0),
    stale_after_s        integer NOT NULL CHECK (stale_after_s > 0),
    credential_hash text NOT NULL,
    status     text NOT NULL DEFAULT 'unknown' CHECK (status IN ('online', 'offline', 'unknown')),
    last_seen_at timestamptz,
    last_ts    timestamptz,
    last_seq   bigint,
    battery_mv integer,
    rssi_dbm   integer,
    firmware   text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT one_sensor_per_spot UNIQUE (spot_id),
    CONSTRAINT sensor_has_spot CHECK (kind <> 'bay_sensor' OR spot_id IS NOT NULL),
    CONSTRAINT gate_has_lane CHECK (kind <> 'gate' OR lane IS NOT NULL)
);
CREATE INDEX devices_lot ON devices (lot_id);

CREATE TABLE tokens (
    token_id    text PRIMARY KEY,
    token_hash  text NOT NULL UNIQUE,  -- sha256 of the bearer token; the token itself is never kept
    role        text NOT NULL CHECK (role IN ('operator', 'driver')),
    label       text NOT NULL DEFAULT '',
    district_ids text[] NOT NULL DEFAULT '{}',
    lot_ids     text[] NOT NULL DEFAULT '{}',
    plates      text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);
