-- Live lot counts are pushed, not polled: every statement that changes what a lot shows (its counts,
-- status, capacity, sharing quota or name) notifies channel 'lot_counts' with the changed lot ids,
-- comma separated, at commit; whoever wrote it (the gateway's batches and sweeps, the gate counts of
-- 0012, holds, closures, the admin). The API's live feed LISTENs (guidance_api.live.LotWatch: one
-- connection per API process for all open operator pages). A payload holds at most ~7000 characters
-- of ids; more ids go out as several notifications. A statement that changes nothing shown (a batch
-- whose changes cancel out only moves counts_updated_at) notifies nothing.
CREATE FUNCTION notify_lot_ids(ids text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    chunk text;
BEGIN
    FOR chunk IN
        SELECT string_agg(id, ',' ORDER BY id)
        FROM (SELECT id, sum(length(id) + 1) OVER (ORDER BY id) AS upto FROM unnest(ids) AS id) c
        GROUP BY upto / 7000
    LOOP
        PERFORM pg_notify('lot_counts', chunk);
    END LOOP;
END $$;

CREATE FUNCTION notify_lots_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM notify_lot_ids(array_agg(n.lot_id))
    FROM new_lots n JOIN old_lots o USING (lot_id)
    WHERE (n.free_count, n.occupied_count, n.reserved_count, n.unknown_count, n.closed_count, n.capacity,
           n.status, n.shared_spaces, n.name)
          IS DISTINCT FROM
          (o.free_count, o.occupied_count, o.reserved_count, o.unknown_count, o.closed_count, o.capacity,
           o.status, o.shared_spaces, o.name)
    HAVING count(*) > 0;
    RETURN NULL;
END $$;

CREATE FUNCTION notify_lots_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM notify_lot_ids(array_agg(lot_id)) FROM new_lots HAVING count(*) > 0;
    RETURN NULL;
END $$;

CREATE TRIGGER lot_counts_notify_update AFTER UPDATE ON lots
    REFERENCING OLD TABLE AS old_lots NEW TABLE AS new_lots
    FOR EACH STATEMENT EXECUTE FUNCTION notify_lots_updated();
CREATE TRIGGER lot_counts_notify_insert AFTER INSERT ON lots
    REFERENCING NEW TABLE AS new_lots
    FOR EACH STATEMENT EXECUTE FUNCTION notify_lots_inserted();
