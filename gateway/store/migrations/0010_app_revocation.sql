-- Revoking an app. `gateway apps revoke` empties the grant's scopes and moves
-- its generation on; tokens carry the generation they were issued under, so
-- re-authorizing later grants scopes to new tokens only. A request whose app
-- token is of an older generation, or carries a scope the user no longer
-- grants, is refused (gateway.auth.AppGrants).
ALTER TABLE app_authorizations
    ADD COLUMN generation integer NOT NULL DEFAULT 0,
    ADD COLUMN revoked_at timestamptz;

-- The current grant of `p_app` by `p_user` (NULLs when there is none), for the
-- reader pool, which has no privilege on app_authorizations.
CREATE FUNCTION app_grant(p_app text, p_user text, OUT scopes text[], OUT generation integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT a.scopes, a.generation FROM app_authorizations a WHERE a.app_id = p_app AND a.user_id = p_user
$$;

REVOKE ALL ON FUNCTION app_grant(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_grant(text, text) TO gateway_reader;
