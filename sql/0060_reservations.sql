-- Reservations (holds), their fees, closures of spaces, staggered sharing, and the lot_changes outbox
-- that carries every change the API makes to a lot to the gateway's availability publisher.
-- Rules: parking_core/reservations.py, parking_core/sharing.py; docs/reservations.md.

-- A lot's reservation policy (parking_core.reservations.HoldPolicy) and, for a lot shared by its
-- owner, how many of its spaces the public may use right now (NULL: a public lot; 0: a shared lot
-- outside its windows). The sharing sweep keeps shared_spaces from lot_sharing's rules.
ALTER TABLE lots
    ADD COLUMN reservation_grace_s integer NOT NULL DEFAULT 900
        CHECK (reservation_grace_s BETWEEN 0 AND 86400),
    ADD COLUMN reservation_cutoff_s integer NOT NULL DEFAULT 1800
        CHECK (reservation_cutoff_s BETWEEN 0 AND 604800),
    ADD COLUMN reservation_max_lead_s integer NOT NULL DEFAULT 86400
        CHECK (reservation_max_lead_s BETWEEN 0 AND 2592000),
    ADD COLUMN reservation_max_window_s integer NOT NULL DEFAULT 7200
        CHECK (reservation_max_window_s BETWEEN 60 AND 86400),
    ADD COLUMN shared_spaces integer CHECK (shared_spaces >= 0);

CREATE TABLE reservations (
    reservation_id text PRIMARY KEY CHECK (reservation_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    lot_id       text NOT NULL REFERENCES lots ON DELETE CASCADE,
    spot_id      text REFERENCES spots ON DELETE SET NULL,  -- NULL: a lot counted without spots
    zone_id      text,
    plate        text NOT NULL,
    token_id     text,  -- the driver token that made it
    status       text NOT NULL DEFAULT 'held' CHECK (status IN ('held', 'arrived', 'cancelled', 'no_show')),
    arrival_from timestamptz NOT NULL,
    arrival_to   timestamptz NOT NULL,
    deadline     timestamptz NOT NULL,  -- arrival_to + the lot's grace: released as a no-show then
    created_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    evidence     text CHECK (evidence IN ('gate', 'sensor')),
    session_id   text,  -- the parking session the arrival opened, when the gate path made one
    moved_from   text[] NOT NULL DEFAULT '{}',  -- held spots another plate took; the hold moved on
    late_cancellation boolean NOT NULL DEFAULT false,
    fees_charged_at timestamptz,  -- when the API's sweep priced its fees (none due is also recorded)
    tariff_id    text,
    tariff_version integer,
    CONSTRAINT reservation_window CHECK (arrival_to > arrival_from AND deadline >= arrival_to),
    CONSTRAINT reservation_ended CHECK ((status = 'held') = (ended_at IS NULL)),
    CONSTRAINT arrival_evidence CHECK ((status = 'arrived') = (evidence IS NOT NULL))
);
-- Never two holds on one spot, never two holds of one plate at one lot: constraints, not hope.
-- (That holds never exceed the lot's spaces is the lots' counter constraint: a hold moves one free
-- space to reserved, under the lot's row lock.)
CREATE UNIQUE INDEX reservations_one_hold_per_spot ON reservations (spot_id) WHERE status = 'held';
CREATE UNIQUE INDEX reservations_one_hold_per_plate ON reservations (lot_id, plate) WHERE status = 'held';
CREATE INDEX reservations_deadline ON reservations (deadline) WHERE status = 'held';
CREATE INDEX reservations_plate ON reservations (plate, created_at DESC);
CREATE INDEX reservations_lot ON reservations (lot_id, created_at DESC);
CREATE INDEX reservations_unpriced ON reservations (ended_at) WHERE status <> 'held' AND fees_charged_at IS NULL;

-- What reservations cost (billing.reservation_fees), append-only: a fee is charged once, never edited.
CREATE TABLE reservation_charges (
    charge_id      bigserial PRIMARY KEY,
    reservation_id text NOT NULL REFERENCES reservations,
    lot_id         text NOT NULL,
    plate          text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('reservation', 'no_show')),
    amount_fen     bigint NOT NULL CHECK (amount_fen > 0),
    tariff_id      text NOT NULL,
    tariff_version integer NOT NULL,
    charged_at     timestamptz NOT NULL,
    invoice_id     text,  -- set by the invoicing side; the only column that may change, once
    CONSTRAINT one_charge_per_kind UNIQUE (reservation_id, kind)
);
CREATE INDEX reservation_charges_plate ON reservation_charges (plate, charged_at);

CREATE FUNCTION reservation_charges_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The one change allowed: linking the charge to its invoice, once.
    IF TG_OP = 'UPDATE' AND OLD.invoice_id IS NULL AND NEW.invoice_id IS NOT NULL
       AND (NEW.charge_id, NEW.reservation_id, NEW.lot_id, NEW.plate, NEW.kind, NEW.amount_fen,
            NEW.tariff_id, NEW.tariff_version, NEW.charged_at)
           IS NOT DISTINCT FROM
           (OLD.charge_id, OLD.reservation_id, OLD.lot_id, OLD.plate, OLD.kind, OLD.amount_fen,
            OLD.tariff_id, OLD.tariff_version, OLD.charged_at) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'reservation charges are append-only' USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER reservation_charges_append_only BEFORE UPDATE OR DELETE ON reservation_charges
    FOR EACH ROW EXECUTE FUNCTION reservation_charges_append_only();

-- Operators close and reopen spaces with a reason and an optional schedule; each row is the audit.
CREATE TABLE spot_closures (
    closure_id  text PRIMARY KEY,
    lot_id      text NOT NULL REFERENCES lots ON DELETE CASCADE,
    spot_ids    text[] NOT NULL CHECK (cardinality(spot_ids) > 0),
    reason      text NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz,
    state       text NOT NULL CHECK (state IN ('scheduled', 'active', 'ended')),
    closed_by   text NOT NULL,  -- token id, or 'admin'
    created_at  timestamptz NOT NULL,
    reopened_by text,
    reopened_at timestamptz,
    CONSTRAINT closure_schedule CHECK (ends_at IS NULL OR ends_at > starts_at)
);
CREATE INDEX spot_closures_due ON spot_closures (starts_at) WHERE state <> 'ended';
CREATE INDEX spot_closures_lot ON spot_closures (lot_id, created_at DESC);

-- Staggered sharing (错时停车): an owner's lot, its recurring windows, members and the owner's split.
CREATE TABLE lot_sharing (
    lot_id        text PRIMARY KEY REFERENCES lots ON DELETE CASCADE,
    owner_name    text NOT NULL,
    owner_share_percent integer NOT NULL CHECK (owner_share_percent BETWEEN 0 AND 100),
    rules         jsonb NOT NULL,  -- [{"rule_id","day_types","start","end","spaces"}]
    members       text[] NOT NULL DEFAULT '{}',  -- normalised plates of staff or residents
    reminder_before_min integer NOT NULL DEFAULT 30 CHECK (reminder_before_min BETWEEN 0 AND 1440),
    overstay_unit_min integer NOT NULL DEFAULT 60 CHECK (overstay_unit_min BETWEEN 1 AND 1440),
    overstay_unit_fee_fen integer NOT NULL DEFAULT 0 CHECK (overstay_unit_fee_fen BETWEEN 0 AND 100000000),
    updated_by    text NOT NULL,
    updated_at    timestamptz NOT NULL
);

-- Every change the API (or its sweeps) makes to a lot's status or counts, for the gateway's
-- availability publisher: it LISTENs on 'lot_changes' and reads rows after its cursor.
CREATE TABLE lot_changes (
    change_id  bigserial PRIMARY KEY,
    lot_id     text NOT NULL,
    changed_at timestamptz NOT NULL,
    reason     text NOT NULL
);
CREATE INDEX lot_changes_time ON lot_changes (changed_at);
