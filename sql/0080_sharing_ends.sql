-- The end of a sharing window (docs/reservations.md): reminders to drivers still parked, and the
-- overstay surcharge priced once per stay. Rules: parking_core/sharing.py, billing/overstay.py.

-- What the backend tells a driver (read with a driver token: GET /v1/driver/notifications).
CREATE TABLE driver_notifications (
    notification_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plate       text NOT NULL,
    lot_id      text NOT NULL REFERENCES lots ON DELETE CASCADE,
    session_id  uuid REFERENCES sessions ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('sharing_window_ending')),
    window_end  timestamptz,
    message     text NOT NULL,
    created_at  timestamptz NOT NULL
);
-- Exactly one reminder per stay and window end, whoever sweeps and however often.
CREATE UNIQUE INDEX one_window_reminder_per_stay ON driver_notifications (session_id, window_end)
    WHERE kind = 'sharing_window_ending';
CREATE INDEX driver_notifications_plate ON driver_notifications (plate, created_at DESC);

-- The surcharge of a public stay that left after its window ended: one row per stay (0 fen too, so a
-- stay is judged once), written with its invoice in one transaction. Append-only, and like invoices
-- a money record that stands on its own (no foreign key to sessions, whose rows tests may truncate).
CREATE TABLE overstay_charges (
    session_id   uuid PRIMARY KEY,
    lot_id       text NOT NULL,
    plate        text NOT NULL,
    started_at   timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    left_at      timestamptz NOT NULL CHECK (left_at > window_end),
    unit_min     integer NOT NULL CHECK (unit_min > 0),
    unit_fee_fen integer NOT NULL CHECK (unit_fee_fen >= 0),
    units        integer NOT NULL CHECK (units > 0),
    amount_fen   bigint NOT NULL CHECK (amount_fen = units::bigint * unit_fee_fen),
    charged_at   timestamptz NOT NULL,
    invoice_id   text REFERENCES invoices,  -- NULL: nothing to bill (0 fen)
    CONSTRAINT billed_when_due CHECK ((amount_fen > 0) = (invoice_id IS NOT NULL))
);
CREATE INDEX overstay_charges_lot ON overstay_charges (lot_id, left_at);

-- Money records are append-only (refuse_change_of_money_record, sql/0050_money.sql).
CREATE TRIGGER overstay_charges_append_only BEFORE UPDATE OR DELETE ON overstay_charges
    FOR EACH ROW EXECUTE FUNCTION refuse_change_of_money_record();
CREATE TRIGGER overstay_charges_no_truncate BEFORE TRUNCATE ON overstay_charges
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_of_money_record();
