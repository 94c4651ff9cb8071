-- A lot counted at its gates gets a lot_occupancy sample whenever its counts change, as the sensor
-- writer writes one for a lot counted by sensors; without it such a lot had no occupancy history,
-- and its KPIs said "source offline" (-1) while its gates were busy. Lots counted by sensors are
-- left to the writer (the WHEN clause), so their updates stay as cheap as before.
CREATE FUNCTION sample_gate_lot() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO lot_occupancy (ts, lot_id, capacity, free, occupied, reserved, unknown, closed)
    VALUES (now(), NEW.lot_id, NEW.capacity, NEW.free_count, NEW.occupied_count, NEW.reserved_count,
            NEW.unknown_count, NEW.closed_count);
    RETURN NULL;
END $$;
CREATE TRIGGER gate_lot_samples
    AFTER UPDATE OF capacity, free_count, occupied_count, reserved_count, unknown_count, closed_count
    ON lots FOR EACH ROW
    WHEN (NEW.counted_by = 'gates'
          AND (OLD.capacity, OLD.free_count, OLD.occupied_count, OLD.reserved_count,
               OLD.unknown_count, OLD.closed_count)
              IS DISTINCT FROM (NEW.capacity, NEW.free_count, NEW.occupied_count,
                                NEW.reserved_count, NEW.unknown_count, NEW.closed_count))
    EXECUTE FUNCTION sample_gate_lot();
