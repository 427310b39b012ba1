-- OAuth 2.0 authorization code with PKCE (gateway.oauth). An app registers
-- its redirect URIs and, when it can keep one, a client secret (kept as its
-- SHA-256 only: the secret is 256 random bits, so a slow hash adds nothing).
-- A user's approval on the consent page records the grant in
-- app_authorizations, as `gateway apps authorize` does, and issues a one-time
-- code; exchanging it starts a token family: the access tokens (signed JWTs)
-- and the rotating refresh tokens that descend from that one approval. A code
-- redeemed twice, or a refresh token used twice, revokes its family.
--
-- Only gateway_oauth, the OAuth endpoints' pool, touches these tables; the
-- reader pool learns whether a family is revoked through token_family_revoked().

DO $$
BEGIN
    CREATE ROLE gateway_oauth LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

ALTER TABLE apps
    ADD COLUMN client_type   text NOT NULL DEFAULT 'confidential' CHECK (client_type IN ('confidential', 'public')),
    ADD COLUMN secret_sha256 bytea,
    ADD COLUMN redirect_uris text[] NOT NULL DEFAULT '{}';

CREATE TABLE oauth_token_families (
    family_id      uuid PRIMARY KEY,
    app_id         text COLLATE "C" NOT NULL REFERENCES apps,
    user_id        text COLLATE "C" NOT NULL,
    scopes         text[] NOT NULL,
    -- The grant's generation at approval: `gateway apps revoke` moves it on, which ends the family.
    generation     integer NOT NULL,
    created_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason text
);

CREATE TABLE oauth_codes (
    code_sha256    bytea PRIMARY KEY,
    family_id      uuid NOT NULL REFERENCES oauth_token_families,
    redirect_uri   text NOT NULL,
    code_challenge text NOT NULL,
    expires_at     timestamptz NOT NULL,
    redeemed_at    timestamptz
);
CREATE INDEX oauth_codes_expiry ON oauth_codes (expires_at);

CREATE TABLE oauth_refresh_tokens (
    token_sha256 bytea PRIMARY KEY,
    family_id    uuid NOT NULL REFERENCES oauth_token_families,
    scopes       text[] NOT NULL,
    issued_at    timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz
);
CREATE INDEX oauth_refresh_tokens_family ON oauth_refresh_tokens (family_id);

GRANT USAGE ON SCHEMA public TO gateway_oauth;
GRANT SELECT ON apps TO gateway_oauth;
GRANT SELECT, INSERT, UPDATE ON app_authorizations TO gateway_oauth;
GRANT SELECT, INSERT, UPDATE ON oauth_token_families, oauth_refresh_tokens TO gateway_oauth;
GRANT SELECT, INSERT, UPDATE, DELETE ON oauth_codes TO gateway_oauth;

-- Whether the family an access token descends from was revoked (NULL: no such family), for the
-- reader pool, which has no privilege on the OAuth tables.
CREATE FUNCTION token_family_revoked(p_family uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT f.revoked_at IS NOT NULL FROM oauth_token_families f WHERE f.family_id = p_family
$$;

REVOKE ALL ON FUNCTION token_family_revoked(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION token_family_revoked(uuid) TO gateway_reader;
