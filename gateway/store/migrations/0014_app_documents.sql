-- The GraphQL documents registered for an app (`gateway apps documents add`).
-- An app may send one by its SHA-256 alone; and when the policy obliges an app
-- to (obligations.registered_documents_only), these are the only documents it
-- may run. A document is named by the hash of its exact text, which the row
-- itself guarantees. Only the owner (the CLI) writes or lists them: no pool
-- role is granted anything on the table.

CREATE TABLE app_documents (
    app_id          text COLLATE "C" NOT NULL REFERENCES apps,
    sha256          text COLLATE "C" NOT NULL,
    document        text NOT NULL,
    operation_names text[] NOT NULL,
    added_at        timestamptz NOT NULL DEFAULT now(),
    added_by        text NOT NULL DEFAULT session_user,
    PRIMARY KEY (app_id, sha256),
    CONSTRAINT app_documents_named_by_their_hash CHECK (sha256 = encode(sha256(convert_to(document, 'UTF8')), 'hex'))
);

-- The text of the document `document_hash` registered for `app`, NULL when there
-- is none, for the reader pool, which has no privilege on app_documents: a
-- request can read a document only by naming its app and its hash.
CREATE FUNCTION app_document(app text, document_hash text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT registered.document FROM app_documents registered
    WHERE registered.app_id = app AND registered.sha256 = document_hash
$$;

REVOKE ALL ON FUNCTION app_document(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_document(text, text) TO gateway_reader;
