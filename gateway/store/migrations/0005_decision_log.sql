-- Every policy decision, in OPA's decision-log shape: decision_id, timestamp,
-- the policy revision (bundle revision), the entrypoint path, the input (no
-- tokens: the principal appears as kind, id and scopes), the result, and
-- whether the decision came from the cache. Compliance reads it through
-- GraphQL (Query.decisionLog); nobody else can.

CREATE TABLE decision_log (
    decision_id uuid        PRIMARY KEY,
    timestamp   timestamptz NOT NULL,
    revision    text        NOT NULL,
    path        text        NOT NULL,
    input       json        NOT NULL,  -- json, not jsonb: written on every request, read rarely
    result      json        NOT NULL,
    cache_hit   boolean     NOT NULL,
    denied      boolean     NOT NULL,
    duration_ms double precision NOT NULL
);
CREATE INDEX decision_log_timestamp_idx ON decision_log (timestamp, decision_id);

GRANT INSERT ON decision_log TO gateway_ingest;
GRANT SELECT ON decision_log TO gateway_private;
