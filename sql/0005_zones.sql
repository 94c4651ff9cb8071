-- Zones: the level between a lot and its spots (a garage's floors, a street's blocks), provisioned by
-- the admin. A spot's zone must be one of its own lot's: the foreign key names both columns.
-- `kind` is billing's lot kind (on_street, above_ground, underground), which tariffs are made for.
ALTER TABLE zones ADD COLUMN kind text CHECK (kind IN ('on_street', 'above_ground', 'underground'));
ALTER TABLE zones ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE zones ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE zones ADD CONSTRAINT zone_in_lot UNIQUE (zone_id, lot_id);
CREATE INDEX zones_lot ON zones (lot_id);

ALTER TABLE spots DROP CONSTRAINT spots_zone_id_fkey;
ALTER TABLE spots ADD CONSTRAINT spot_zone_in_lot
    FOREIGN KEY (zone_id, lot_id) REFERENCES zones (zone_id, lot_id);
