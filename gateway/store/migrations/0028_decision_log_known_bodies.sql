-- A batch of the decision log sends only the bodies its writer does not know the store has
-- (gateway.store.decision_log).
--
-- append_decisions (0026) was sent every body its rows named, each batch: under load a worker's
-- batch of ~20 dashboards named ~20 questions of ~2.8 KB, 100 batches a second, so ~5.6 MB a second
-- a worker of text the store already had, encoded by the worker (6% of its CPU) and decoded by
-- Postgres, only to be found present and dropped. A writer now remembers the bodies it has seen
-- stored and sends only the others; this function checks, under the lock an erasure takes
-- exclusively, that every body the batch's kept rows name is either sent or stored. When one is
-- neither (an erasure in another process deleted it since the writer saw it), it writes nothing
-- and returns those digests: the writer sends the batch again with its bodies. Otherwise it does
-- what 0026 did, as one statement, and returns the rows written and no digests.
DROP FUNCTION append_decisions(bigint, uuid[], timestamptz[], text[], text[], text[], bytea[], bytea[], boolean[], boolean[],
                               double precision[], bytea[], bytea[], text[]);

CREATE FUNCTION append_decisions(
    p_erasure_lock bigint,
    p_decision_ids uuid[], p_timestamps timestamptz[], p_revisions text[], p_paths text[], p_principals text[],
    p_questions bytea[], p_results bytea[], p_cache_hits boolean[], p_denied boolean[], p_durations double precision[],
    p_askers bytea[],
    p_body_digests bytea[], p_bodies text[],
    OUT written bigint, OUT missing bytea[]
)
LANGUAGE plpgsql SET search_path = public, pg_temp SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(p_erasure_lock);
    PERFORM set_config('synchronous_commit', 'off', true);
    WITH erased AS (
        SELECT subject_key, erased_at FROM erased_subjects(array_remove(p_askers, NULL))
    ), kept AS MATERIALIZED (
        SELECT r.*
        FROM unnest(p_decision_ids, p_timestamps, p_revisions, p_paths, p_principals, p_questions, p_results,
                    p_cache_hits, p_denied, p_durations, p_askers)
             AS r(decision_id, at, revision, path, principal, question, result, cache_hit, denied, duration_ms, asker)
        LEFT JOIN erased e ON e.subject_key = r.asker
        WHERE e.erased_at IS NULL OR r.at > e.erased_at
    ), sent AS MATERIALIZED (
        SELECT b.digest, b.body FROM unnest(p_body_digests, p_bodies) AS b(digest, body)
    ), named AS MATERIALIZED (
        SELECT question AS digest FROM kept UNION SELECT result FROM kept
    ), absent AS MATERIALIZED (
        SELECT n.digest FROM named n
        WHERE NOT EXISTS (SELECT FROM sent s WHERE s.digest = n.digest)
          AND NOT EXISTS (SELECT FROM decision_bodies d WHERE d.digest = n.digest)
    ), logged AS (
        INSERT INTO decision_log (decision_id, timestamp, revision, path, principal, question, result, cache_hit, denied, duration_ms)
        SELECT decision_id, at, revision, path, principal::json, question, result, cache_hit, denied, duration_ms FROM kept
        WHERE NOT EXISTS (SELECT FROM absent)
    ), stored AS (
        INSERT INTO decision_bodies (digest, body)
        SELECT s.digest, s.body::json
        FROM sent s
        WHERE s.digest IN (SELECT digest FROM named)
          AND NOT EXISTS (SELECT FROM absent)
          AND NOT EXISTS (SELECT FROM decision_bodies d WHERE d.digest = s.digest)
        ORDER BY 1
        ON CONFLICT (digest) DO NOTHING
    )
    SELECT CASE WHEN EXISTS (SELECT FROM absent) THEN 0 ELSE (SELECT count(*) FROM kept) END,
           (SELECT array_agg(digest ORDER BY digest) FROM absent)
    INTO written, missing;
END
$$;

REVOKE ALL ON FUNCTION append_decisions(bigint, uuid[], timestamptz[], text[], text[], text[], bytea[], bytea[], boolean[], boolean[],
                                        double precision[], bytea[], bytea[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION append_decisions(bigint, uuid[], timestamptz[], text[], text[], text[], bytea[], bytea[], boolean[], boolean[],
                                           double precision[], bytea[], bytea[], text[]) TO gateway_ingest;
