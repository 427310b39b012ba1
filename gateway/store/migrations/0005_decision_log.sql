-- Every policy decision, in OPA's decision-log shape: decision_id, timestamp,
-- the policy revision (bundle revision), the entrypoint path, the input (no
-- tokens: the principal appears as kind, id and scopes), the result, and
-- whether the decision came from the cache. Compliance reads it through
-- GraphQL (Query.decisionLog); nobody else can.
--
-- A dashboard asks the same question (operation and fields, a few KB of JSON)
-- thousands of times and gets the same answer: decision_bodies stores each
-- question and each result once, by sha256; a log row names them by digest
-- and keeps its own principal. read_decisions puts the input back together.

CREATE TABLE decision_bodies (
    digest bytea PRIMARY KEY,
    body   json  NOT NULL  -- json, not jsonb: written often, read rarely, kept verbatim
);

CREATE TABLE decision_log (
    decision_id uuid             PRIMARY KEY,
    timestamp   timestamptz      NOT NULL,
    revision    text             NOT NULL,
    path        text             NOT NULL,
    principal   json             NOT NULL,
    question    bytea            NOT NULL,  -- decision_bodies.digest of {"operation", "fields"}
    result      bytea            NOT NULL,  -- decision_bodies.digest of the result
    cache_hit   boolean          NOT NULL,
    denied      boolean          NOT NULL,
    duration_ms double precision NOT NULL
);
CREATE INDEX decision_log_timestamp_idx ON decision_log (timestamp, decision_id);

GRANT SELECT, INSERT ON decision_bodies TO gateway_ingest;
GRANT INSERT ON decision_log TO gateway_ingest;
GRANT SELECT ON decision_log, decision_bodies TO gateway_private;
