-- One ledger of parking sessions (gated lots and on-street bays), their evidence and payments.
-- The state machine is parking_core/sessions.py; session_transitions holds the same table of legal
-- moves (tests compare the two) and a trigger refuses any other move with SQLSTATE 23514.

CREATE TABLE session_transitions (
    from_state text NOT NULL,
    to_state   text NOT NULL,
    PRIMARY KEY (from_state, to_state)
);
INSERT INTO session_transitions VALUES
    ('pending', 'open'), ('pending', 'cancelled'),
    ('open', 'closed'),
    ('closed', 'priced'),
    ('priced', 'invoiced'), ('priced', 'paid'),
    ('invoiced', 'paid'), ('invoiced', 'in_arrears'),
    ('in_arrears', 'paid'), ('in_arrears', 'written_off');

CREATE TABLE sessions (
    session_id  uuid PRIMARY KEY,
    lot_id      text NOT NULL REFERENCES lots ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('gate', 'bay')),
    state       text NOT NULL CHECK (state IN ('pending', 'cancelled', 'open', 'closed', 'priced',
                                               'invoiced', 'paid', 'in_arrears', 'written_off')),
    plate       text CHECK (plate IS NULL OR length(plate) BETWEEN 2 AND 12),
    plate_color text CHECK (plate_color IN ('blue', 'yellow', 'green', 'black', 'white', 'other')),
    spot_id     text REFERENCES spots ON DELETE SET NULL,
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz CHECK (ended_at IS NULL OR ended_at >= started_at),
    -- An exit with no entry record under the lot's `charge` policy: priced at the lot's fee.
    no_entry    boolean NOT NULL DEFAULT false,
    amount_fen  bigint CHECK (amount_fen >= 0),
    paid_fen    bigint NOT NULL DEFAULT 0 CHECK (paid_fen >= 0),
    tariff_id   text,
    tariff_version integer,
    vehicle_class text,
    -- The quote's timed charges [{"at", "amount_fen"}]: later stays' daily caps count them.
    charges     jsonb NOT NULL DEFAULT '[]',
    closed_by   text CHECK (closed_by IN ('exit', 'sensor', 'superseded', 'manual')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT gate_session_has_plate CHECK (kind <> 'gate' OR plate IS NOT NULL),
    CONSTRAINT bay_session_has_spot CHECK (kind <> 'bay' OR spot_id IS NOT NULL),
    CONSTRAINT priced_has_amount CHECK (state IN ('pending', 'cancelled', 'open', 'closed')
                                        OR amount_fen IS NOT NULL)
);
-- At most one vehicle inside per plate per lot, and per spot: constraints, not hope.
CREATE UNIQUE INDEX one_inside_session_per_plate ON sessions (lot_id, plate)
    WHERE state IN ('pending', 'open') AND plate IS NOT NULL;
CREATE UNIQUE INDEX one_inside_session_per_spot ON sessions (spot_id)
    WHERE state IN ('pending', 'open') AND spot_id IS NOT NULL;
CREATE INDEX sessions_lot_started ON sessions (lot_id, started_at DESC);
CREATE INDEX sessions_plate_ended ON sessions (plate, lot_id, ended_at DESC) WHERE plate IS NOT NULL;
CREATE INDEX sessions_inside ON sessions (lot_id) WHERE state IN ('pending', 'open');

CREATE FUNCTION refuse_illegal_session_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state <> OLD.state AND NOT EXISTS (
        SELECT 1 FROM session_transitions WHERE from_state = OLD.state AND to_state = NEW.state
    ) THEN
        RAISE EXCEPTION 'session % cannot go from % to %', OLD.session_id, OLD.state, NEW.state
            USING ERRCODE = 'check_violation', CONSTRAINT = 'legal_session_transition';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER legal_session_transition BEFORE UPDATE ON sessions
    FOR EACH ROW EXECUTE FUNCTION refuse_illegal_session_transition();

-- What a session rests on: reads, passages, scores, who attached a plate, payments. Append-only.
CREATE TABLE session_evidence (
    evidence_id bigserial PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES sessions ON DELETE CASCADE,
    ts          timestamptz NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('entry_read', 'exit_read', 'passage', 'sensor',
                                              'plate_attached', 'manual_release', 'payment',
                                              'superseded', 'cancelled')),
    device_id   text,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX session_evidence_session ON session_evidence (session_id, ts);

-- Money paid on a session before it leaves (pay station, app): append-only, one row per payment,
-- idempotent per (source, reference).
CREATE TABLE session_payments (
    payment_id  bigserial PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES sessions,
    amount_fen  bigint NOT NULL CHECK (amount_fen > 0),
    paid_at     timestamptz NOT NULL,
    source      text NOT NULL CHECK (source ~ '^[A-Za-z0-9_.-]{1,64}$'),
    reference   text NOT NULL CHECK (length(reference) BETWEEN 1 AND 128),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT one_payment_per_reference UNIQUE (source, reference)
);
CREATE INDEX session_payments_session ON session_payments (session_id);
