-- Leave first, pay later: driver accounts and plate bindings, invoices, the append-only money ledger,
-- payments and provider transactions, the notification log, the refund and reminder outboxes, the
-- money deny list, lot money policies, reconciliation runs. Semantics: docs/money.md.

CREATE TABLE driver_accounts (
    account_id  text PRIMARY KEY CHECK (account_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    name        text NOT NULL DEFAULT '',
    pay_later_consent boolean NOT NULL DEFAULT false,
    consent_changed_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A driver token may name its account; its plates are then the account's bound plates.
ALTER TABLE tokens ADD COLUMN account_id text REFERENCES driver_accounts;

-- Bindings are history: unbinding sets unbound_at, nothing is deleted. One account per plate at a time.
CREATE TABLE plate_bindings (
    binding_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plate       text NOT NULL CHECK (length(plate) BETWEEN 2 AND 12),
    account_id  text NOT NULL REFERENCES driver_accounts,
    bound_at    timestamptz NOT NULL,
    bound_by    text NOT NULL,
    unbound_at  timestamptz,
    unbound_by  text,
    CHECK (unbound_at IS NULL OR unbound_at >= bound_at)
);
CREATE UNIQUE INDEX one_account_per_plate ON plate_bindings (plate) WHERE unbound_at IS NULL;
CREATE INDEX plate_bindings_account ON plate_bindings (account_id) WHERE unbound_at IS NULL;

-- Who did what to money and bindings: binding, consent, write-off, deny listing and lifting.
CREATE TABLE money_audit (
    audit_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    action      text NOT NULL,
    plate       text,
    account_id  text,
    invoice_id  text,
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX money_audit_plate ON money_audit (plate, at);

CREATE TABLE lot_money_policies (
    lot_id      text PRIMARY KEY REFERENCES lots ON DELETE CASCADE,
    pay_later   boolean NOT NULL DEFAULT true,
    arrears_limit_fen bigint NOT NULL DEFAULT 5000 CHECK (arrears_limit_fen >= 0),
    deny_entry_when_blacklisted boolean NOT NULL DEFAULT false,
    pay_within_s integer NOT NULL DEFAULT 259200 CHECK (pay_within_s BETWEEN 0 AND 31536000)
);

-- One invoice per priced session (session_id is unique). The document never changes: its status
-- is derived from the ledger (invoice_balances below), so UPDATE and DELETE are refused.
CREATE TABLE invoices (
    invoice_id  text PRIMARY KEY,
    session_id  text NOT NULL UNIQUE,
    lot_id      text NOT NULL REFERENCES lots,
    plate       text NOT NULL,
    entry_at    timestamptz NOT NULL,
    exit_at     timestamptz NOT NULL CHECK (exit_at >= entry_at),
    amount_fen  bigint NOT NULL CHECK (amount_fen > 0),
    lines       jsonb NOT NULL,
    tariff_id   text NOT NULL,
    tariff_version integer NOT NULL,
    issued_at   timestamptz NOT NULL,
    due_at      timestamptz NOT NULL
);
CREATE INDEX invoices_plate ON invoices (plate, exit_at);
CREATE INDEX invoices_lot_day ON invoices (lot_id, issued_at);

-- Every movement of money. Append-only: a trigger refuses UPDATE, DELETE and TRUNCATE.
CREATE TABLE ledger_entries (
    entry_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    invoice_id  text NOT NULL REFERENCES invoices,
    lot_id      text NOT NULL,
    kind        text NOT NULL
                CHECK (kind IN ('invoiced', 'captured', 'refunded', 'written_off', 'adjusted')),
    amount_fen  bigint NOT NULL
                CHECK ((kind = 'adjusted' AND amount_fen <> 0) OR amount_fen > 0),
    at          timestamptz NOT NULL,
    reference   text NOT NULL DEFAULT '',
    actor       text NOT NULL DEFAULT 'system',
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX one_invoiced_entry_per_invoice ON ledger_entries (invoice_id) WHERE kind = 'invoiced';
CREATE UNIQUE INDEX one_refund_entry_per_refund ON ledger_entries (reference) WHERE kind = 'refunded';
CREATE INDEX ledger_entries_invoice ON ledger_entries (invoice_id);
CREATE INDEX ledger_entries_day ON ledger_entries (at, lot_id);

-- The sums of an invoice's entries by kind, kept in the transaction that appends each entry, so
-- arrears and lists need no scan of the ledger. due_fen is Balance.due_fen of billing/ledger.py
-- (the generated column is checked against it by a Hypothesis test).
CREATE TABLE invoice_balances (
    invoice_id  text PRIMARY KEY REFERENCES invoices,
    plate       text NOT NULL,
    lot_id      text NOT NULL,
    due_at      timestamptz NOT NULL,
    invoiced_fen    bigint NOT NULL DEFAULT 0,
    adjusted_fen    bigint NOT NULL DEFAULT 0,
    captured_fen    bigint NOT NULL DEFAULT 0,
    refunded_fen    bigint NOT NULL DEFAULT 0,
    written_off_fen bigint NOT NULL DEFAULT 0,
    due_fen bigint GENERATED ALWAYS AS
        (invoiced_fen + adjusted_fen - (captured_fen - refunded_fen) - written_off_fen) STORED,
    CONSTRAINT never_owed_below_zero CHECK (due_fen >= 0)
);
CREATE INDEX invoice_balances_open_by_plate ON invoice_balances (plate, due_at) WHERE due_fen > 0;
CREATE INDEX invoice_balances_open_by_lot ON invoice_balances (lot_id, due_at, invoice_id) WHERE due_fen > 0;

CREATE FUNCTION refuse_change_of_money_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- 23001 restrict_violation: money records are append-only (docs/money.md).
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = '23001';
END;
$$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION refuse_change_of_money_record();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_of_money_record();
CREATE TRIGGER invoices_append_only BEFORE UPDATE OR DELETE ON invoices
    FOR EACH ROW EXECUTE FUNCTION refuse_change_of_money_record();
CREATE TRIGGER invoices_no_truncate BEFORE TRUNCATE ON invoices
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change_of_money_record();

-- A payment is one attempt to pay an invoice through a provider; payment_id is the out_trade_no.
CREATE TABLE payments (
    payment_id  text PRIMARY KEY,
    invoice_id  text NOT NULL REFERENCES invoices,
    provider    text NOT NULL CHECK (provider IN ('wechatpay', 'alipay')),
    amount_fen  bigint NOT NULL CHECK (amount_fen > 0),
    account_id  text,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX payments_invoice ON payments (invoice_id);

-- What the provider captured: one row per provider transaction, ever (the unit of idempotency).
CREATE TABLE payment_captures (
    provider    text NOT NULL,
    transaction_id text NOT NULL,
    payment_id  text NOT NULL REFERENCES payments,
    invoice_id  text NOT NULL REFERENCES invoices,
    amount_fen  bigint NOT NULL CHECK (amount_fen > 0),
    applied_fen bigint NOT NULL CHECK (applied_fen BETWEEN 0 AND amount_fen),
    captured_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, transaction_id)
);

-- Refunds to send through the provider (an outbox): the ledger's refunded entry is written with it.
CREATE TABLE refunds (
    refund_id   text PRIMARY KEY,
    provider    text NOT NULL,
    transaction_id text NOT NULL,
    payment_id  text NOT NULL REFERENCES payments,
    invoice_id  text NOT NULL REFERENCES invoices,
    amount_fen  bigint NOT NULL CHECK (amount_fen > 0),
    requested_at timestamptz NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    sent_at     timestamptz,
    last_error  text,
    provider_refund_id text,
    confirmed_at timestamptz
);
CREATE INDEX refunds_unsent ON refunds (requested_at) WHERE sent_at IS NULL;

-- Every verified notification (the nonce makes a replay visible); refused unsigned ones are only
-- logged and counted, so a flood of forgeries writes nothing.
CREATE TABLE payment_notifications (
    notification_pk bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider    text NOT NULL,
    nonce       text NOT NULL,
    received_at timestamptz NOT NULL,
    answer      text NOT NULL,
    notification_id text,
    transaction_id text,
    body        text NOT NULL,
    CONSTRAINT one_delivery_per_nonce UNIQUE (provider, nonce)
);

-- Reminders for the notifier to deliver (an outbox), one per invoice and step.
CREATE TABLE arrears_reminders (
    reminder_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    invoice_id  text NOT NULL REFERENCES invoices,
    plate       text NOT NULL,
    step        integer NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('due_soon', 'overdue', 'final_notice')),
    due_fen     bigint NOT NULL,
    due_at      timestamptz NOT NULL,
    created_at  timestamptz NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    delivered_at timestamptz,
    last_error  text,
    CONSTRAINT one_reminder_per_step UNIQUE (invoice_id, step)
);
CREATE INDEX arrears_reminders_undelivered ON arrears_reminders (reminder_id) WHERE delivered_at IS NULL;

-- The city-wide money deny list ("blacklist"): no pay-later anywhere, no entry where a lot says so.
-- History is kept: lifting sets lifted_at.
CREATE TABLE money_deny_list (
    listing_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plate       text NOT NULL,
    reason      text NOT NULL,
    listed_at   timestamptz NOT NULL,
    listed_by   text NOT NULL,
    lifted_at   timestamptz,
    lifted_by   text
);
CREATE UNIQUE INDEX one_listing_per_plate ON money_deny_list (plate) WHERE lifted_at IS NULL;

-- Each reconciliation run of a provider's daily statement, with every mismatch it found.
CREATE TABLE reconciliation_runs (
    run_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider    text NOT NULL,
    day         date NOT NULL,
    ran_at      timestamptz NOT NULL,
    statement_sha256 text NOT NULL,
    statement_count integer NOT NULL,
    mismatches  jsonb NOT NULL
);
