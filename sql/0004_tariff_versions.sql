-- Tariffs are versioned: a price change is a new version valid from a date, and a stay is priced by
-- the version in force at its entry, so old sessions keep old prices. A published version is immutable.
DROP TABLE tariffs;
CREATE TABLE tariff_versions (
    tariff_id  text NOT NULL CHECK (tariff_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    version    integer NOT NULL CHECK (version >= 1),
    valid_from date NOT NULL,
    valid_to   date,
    document   jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tariff_id, version)
);
