-- History: readings, spot status changes, device presence, lot occupancy samples; rejected messages.
-- In TimescaleDB mode 0002_history.timescale.sql turns the history tables into hypertables.

CREATE TABLE sensor_readings (
    ts          timestamptz NOT NULL,  -- the device's clock
    device_id   text NOT NULL,
    seq         bigint NOT NULL,
    spot_id     text NOT NULL,
    received_at timestamptz NOT NULL,
    message     text NOT NULL CHECK (message IN ('state', 'heartbeat')),
    occupied    boolean NOT NULL,
    battery_mv  integer,
    rssi_dbm    integer,
    -- At-least-once delivery: the same (device, seq, ts) is one reading.
    CONSTRAINT one_reading_per_device_seq_ts UNIQUE (device_id, seq, ts)
);
CREATE INDEX sensor_readings_spot_ts ON sensor_readings (spot_id, ts DESC);

CREATE TABLE spot_status_changes (
    ts              timestamptz NOT NULL,
    spot_id         text NOT NULL,
    lot_id          text NOT NULL,
    status          text NOT NULL,
    previous_status text NOT NULL,
    cause           text NOT NULL CHECK (cause IN ('reading', 'comms_lost', 'admin', 'reservation')),
    device_id       text
);
CREATE INDEX spot_status_changes_spot_ts ON spot_status_changes (spot_id, ts DESC);
CREATE INDEX spot_status_changes_lot_ts ON spot_status_changes (lot_id, ts DESC);

CREATE TABLE device_presence_changes (
    ts        timestamptz NOT NULL,
    device_id text NOT NULL,
    -- CDS vocabulary: comms_lost / comms_restored from liveness, online / offline from presence.
    event     text NOT NULL CHECK (event IN ('comms_lost', 'comms_restored', 'online', 'offline')),
    detail    text NOT NULL DEFAULT ''
);
CREATE INDEX device_presence_changes_device_ts ON device_presence_changes (device_id, ts DESC);

CREATE TABLE lot_occupancy (
    ts        timestamptz NOT NULL,
    lot_id    text NOT NULL,
    capacity  integer NOT NULL,
    free      integer NOT NULL,
    occupied  integer NOT NULL,
    reserved  integer NOT NULL,
    unknown   integer NOT NULL,
    closed    integer NOT NULL
);
CREATE INDEX lot_occupancy_lot_ts ON lot_occupancy (lot_id, ts DESC);

CREATE TABLE rejected_messages (
    rejected_id bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text NOT NULL,
    device_id   text,
    reason      text NOT NULL,
    detail      text NOT NULL DEFAULT '',
    payload     text NOT NULL DEFAULT ''  -- truncated
);
CREATE INDEX rejected_messages_device ON rejected_messages (device_id, received_at DESC);
CREATE INDEX rejected_messages_time ON rejected_messages (received_at DESC);
