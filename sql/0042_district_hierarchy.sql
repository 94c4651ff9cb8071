-- The city → county or district → lot hierarchy: what kind of division a district is, which outline
-- of the city's map it is, how many public parking spaces it has (so coverage can be a share), and
-- when it joined the system (the city grows from its central districts to its counties).
ALTER TABLE districts
    ADD COLUMN kind text NOT NULL DEFAULT 'district'
        CHECK (kind IN ('district', 'county', 'county_city')),  -- 区, 县, 县级市
    ADD COLUMN outline_name text,  -- the feature's name in the city outline (e.g. 金水区)
    ADD COLUMN public_spaces integer CHECK (public_spaces >= 0),  -- all public spaces, ours or not
    ADD COLUMN onboarded_on date;  -- its lots count in coverage from this day (default: their creation)
