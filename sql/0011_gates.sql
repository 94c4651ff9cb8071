-- Barrier gates: per-lot policy and deny list, reads with their one command each, passages, acks,
-- events for operators, and the audit log of operators' plate look-ups (docs/gates.md).
-- History tables (reads, passages, acks, events, look-ups) become hypertables in TimescaleDB mode.

-- How a lot's free count is kept: from its bay sensors, or at its gates (capacity - inside sessions).
ALTER TABLE lots ADD COLUMN counted_by text NOT NULL DEFAULT 'sensors'
    CHECK (counted_by IN ('sensors', 'gates'));

CREATE TABLE lot_gate_policies (
    lot_id            text PRIMARY KEY REFERENCES lots ON DELETE CASCADE,
    min_confidence    double precision NOT NULL DEFAULT 0.8 CHECK (min_confidence BETWEEN 0 AND 1),
    no_entry_record   text NOT NULL DEFAULT 'refer' CHECK (no_entry_record IN ('refer', 'charge')),
    no_entry_fee_fen  bigint NOT NULL DEFAULT 0 CHECK (no_entry_fee_fen >= 0),
    pending_window_s  integer NOT NULL DEFAULT 120 CHECK (pending_window_s > 0),
    min_match_score   double precision NOT NULL DEFAULT 0.7 CHECK (min_match_score BETWEEN 0 AND 1),
    arrears_limit_fen bigint CHECK (arrears_limit_fen >= 0),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE lot_plate_denials (
    lot_id     text NOT NULL REFERENCES lots ON DELETE CASCADE,
    plate      text NOT NULL,
    reason     text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (lot_id, plate)
);

-- Every command sent to a gate: one per plate read (its (device_id, read_seq, read_ts) is the key
-- that makes a redelivered read get the same command), or a manual release (no read).
CREATE TABLE gate_commands (
    command_id  uuid PRIMARY KEY,
    device_id   text NOT NULL,
    lot_id      text NOT NULL,
    lane        text NOT NULL CHECK (lane IN ('entry', 'exit')),
    read_seq    bigint,
    read_ts     timestamptz,
    ts          timestamptz NOT NULL,  -- when it was decided (the command's ts)
    action      text NOT NULL CHECK (action IN ('open', 'hold')),
    reason      text NOT NULL,
    plate       text,
    amount_fen  bigint NOT NULL DEFAULT 0 CHECK (amount_fen >= 0),
    display     text NOT NULL DEFAULT '',
    session_id  uuid REFERENCES sessions,
    match_score double precision,
    sends       integer NOT NULL DEFAULT 0,      -- how often it was published
    last_sent_at timestamptz,
    acked_at    timestamptz,
    ack_ok      boolean,
    flagged_at  timestamptz,                     -- re-sent as often as allowed, never acknowledged
    passage_at  timestamptz,                     -- the passage that followed an open command
    expired_at  timestamptz,                     -- an open command's window passed without one
    CONSTRAINT one_command_per_read UNIQUE (device_id, read_seq, read_ts)
);
-- The re-send sweep looks only at commands still waiting for an ack.
CREATE INDEX gate_commands_unacked ON gate_commands (last_sent_at) WHERE acked_at IS NULL AND flagged_at IS NULL;
-- Passages look for the open commands of their gate still waiting for the vehicle.
CREATE INDEX gate_commands_awaiting ON gate_commands (device_id, read_ts)
    WHERE action = 'open' AND passage_at IS NULL AND expired_at IS NULL;
CREATE INDEX gate_commands_lot_ts ON gate_commands (lot_id, ts DESC);

CREATE TABLE gate_reads (
    ts          timestamptz NOT NULL,  -- the camera's clock
    device_id   text NOT NULL,
    seq         bigint NOT NULL,
    lot_id      text NOT NULL,
    received_at timestamptz NOT NULL,
    lane        text NOT NULL CHECK (lane IN ('entry', 'exit')),
    plate       text NOT NULL,
    plate_color text,
    confidence  double precision NOT NULL,
    command_id  uuid NOT NULL,
    CONSTRAINT one_read_per_device_seq_ts UNIQUE (device_id, seq, ts)
);
CREATE INDEX gate_reads_lot_ts ON gate_reads (lot_id, ts DESC);
CREATE INDEX gate_reads_plate_ts ON gate_reads (plate, ts DESC);

CREATE TABLE gate_passages (
    ts          timestamptz NOT NULL,
    device_id   text NOT NULL,
    seq         bigint NOT NULL,
    lot_id      text NOT NULL,
    received_at timestamptz NOT NULL,
    lane        text NOT NULL CHECK (lane IN ('entry', 'exit')),
    plate       text,
    command_id  uuid,  -- the command it confirmed; NULL: tailgating
    CONSTRAINT one_passage_per_device_seq_ts UNIQUE (device_id, seq, ts)
);
CREATE INDEX gate_passages_lot_ts ON gate_passages (lot_id, ts DESC);

CREATE TABLE gate_acks (
    ts          timestamptz NOT NULL,  -- the gate's clock
    device_id   text NOT NULL,
    command_id  uuid NOT NULL,
    ok          boolean NOT NULL,
    received_at timestamptz NOT NULL
);
CREATE INDEX gate_acks_command ON gate_acks (command_id, ts DESC);

CREATE TABLE gate_events (
    ts          timestamptz NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('tailgating', 'missing_passage', 'unacked_command',
                                              'exit_missing', 'ambiguous_plate', 'manual_release')),
    device_id   text NOT NULL,
    lot_id      text NOT NULL,
    plate       text,
    session_id  uuid,
    command_id  uuid,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX gate_events_lot_ts ON gate_events (lot_id, ts DESC);

-- Every plate an operator looked up (who, when, which plate, through which route).
CREATE TABLE plate_lookups (
    ts        timestamptz NOT NULL,
    token_id  text NOT NULL,
    label     text NOT NULL DEFAULT '',
    plate     text NOT NULL,
    lot_id    text,
    route     text NOT NULL
);
CREATE INDEX plate_lookups_plate_ts ON plate_lookups (plate, ts DESC);
CREATE INDEX plate_lookups_token_ts ON plate_lookups (token_id, ts DESC);

-- A lot counted at its gates has free = capacity - sessions inside (pending or open), kept in the
-- same transaction as every session change by this trigger (the gate path, manual releases and
-- attendants all move sessions); lots counted by sensors are left to the sensor writer.
CREATE FUNCTION recount_gate_lot() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.state IN ('pending', 'open')) = (NEW.state IN ('pending', 'open')) THEN
        RETURN NULL;
    END IF;
    UPDATE lots l SET occupied_count = least(i.inside, l.capacity),
                      free_count = l.capacity - least(i.inside, l.capacity),
                      unknown_count = 0, reserved_count = 0, closed_count = 0,
                      counts_updated_at = now()
    FROM (SELECT count(*)::integer AS inside FROM sessions
          WHERE lot_id = NEW.lot_id AND state IN ('pending', 'open')) i
    WHERE l.lot_id = NEW.lot_id AND l.counted_by = 'gates';
    RETURN NULL;
END $$;
CREATE TRIGGER gate_lot_counts AFTER INSERT OR UPDATE OF state ON sessions
    FOR EACH ROW EXECUTE FUNCTION recount_gate_lot();
