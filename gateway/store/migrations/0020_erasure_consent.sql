-- Sharers' consent (0018) under the least privilege of 0016: erasure, run as gateway_eraser,
-- deletes a person's consent changes (row-level security binds it to the person its transaction
-- names); the private pool reads and appends its principal's own changes and deletes nothing.
--
-- Other people's changes that name an erased person as the creator they chose to be shown to stay:
-- they are those people's choices, and the creator id in them names nobody who is still counted.
REVOKE DELETE ON consent_changes FROM gateway_private;
GRANT SELECT, DELETE ON consent_changes TO gateway_eraser;
CREATE POLICY consent_changes_erased_rows ON consent_changes
    FOR ALL TO gateway_eraser
    USING (user_id = current_setting('gateway.actor_id', true));
