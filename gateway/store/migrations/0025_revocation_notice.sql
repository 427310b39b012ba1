-- Two gaps a red team left open in erasure (issue 14).
--
-- 1. A revocation reaches every serving process at its commit. Each process keeps what it
--    looked up of apps' grants and token families for GATEWAY_APP_GRANT_TTL seconds, so an app's
--    token used to keep working that long after `gateway apps revoke`, an app's own revocation,
--    or an erasure. Every change to either table now sends a notice on `gateway_revocations`;
--    each process listens (gateway.store.revocations) and forgets what it kept. The TTL stays as
--    the bound for a process whose listening connection is down.
CREATE FUNCTION announce_revocation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gateway_revocations', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER app_authorizations_announce
AFTER INSERT OR UPDATE OR DELETE ON app_authorizations
FOR EACH STATEMENT EXECUTE FUNCTION announce_revocation();

CREATE TRIGGER oauth_token_families_announce
AFTER UPDATE OR DELETE ON oauth_token_families
FOR EACH STATEMENT EXECUTE FUNCTION announce_revocation();

-- 2. An erasure also takes out the logged questions and results only the person's requests
--    named: a question holds the request's arguments (which videos they looked at, which creator
--    they chose to be shown to). Bodies other logged requests still name stay. The decision log's
--    writers no longer assume a body they once wrote is still there: each batch asks
--    (gateway.store.decision_log), under the lock an erasure takes exclusively.
CREATE INDEX decision_log_question_idx ON decision_log (question);
CREATE INDEX decision_log_result_idx ON decision_log (result);

CREATE OR REPLACE FUNCTION forget_decisions_of(p_person text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    forgotten bigint;
    bodies    bytea[];
BEGIN
    IF p_person IS DISTINCT FROM current_setting('gateway.actor_id', true) THEN
        RAISE EXCEPTION 'forget_decisions_of: % is not the person this transaction erases', p_person
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    WITH gone AS (
        DELETE FROM decision_log
        WHERE principal ->> 'id' = p_person AND principal ->> 'kind' IN ('user', 'app')
        RETURNING question, result
    )
    SELECT count(*), array_agg(DISTINCT digest)
    INTO forgotten, bodies
    FROM gone, LATERAL (VALUES (gone.question), (gone.result)) AS named(digest);
    forgotten := forgotten / 2;
    DELETE FROM decision_bodies b
    WHERE b.digest = ANY (coalesce(bodies, '{}'))
      AND NOT EXISTS (SELECT FROM decision_log l WHERE l.question = b.digest)
      AND NOT EXISTS (SELECT FROM decision_log l WHERE l.result = b.digest);
    RETURN forgotten;
END
$$;
