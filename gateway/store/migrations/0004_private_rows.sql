-- gateway_private reads and erases one principal's own rows. Row-level
-- security binds it to the actor named by the transaction-local setting
-- gateway.actor_id, so a query that forgets its WHERE clause still sees only
-- that principal's events; with the setting unset it sees nothing.

ALTER TABLE events ENABLE ROW LEVEL SECURITY;

CREATE POLICY events_own_rows ON events
    FOR ALL TO gateway_private
    USING (actor_id = current_setting('gateway.actor_id', true));

-- The other roles that touch events keep their access: ingest appends.
CREATE POLICY events_ingest ON events
    FOR ALL TO gateway_ingest
    USING (true) WITH CHECK (true);
