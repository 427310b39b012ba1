-- The ε budget of third-party apps: what each (app, user) has spent on each
-- UTC day, one row per distinct noisy release. A release is identified by a
-- keyed digest of the question and of the data it was answered from, so the
-- same question about the same data is charged once.
--
-- No pool role has a privilege on the table. The reader pool calls
-- spend_epsilon(), which checks and records a request's releases atomically.
CREATE TABLE privacy_spend (
    app_id  text COLLATE "C" NOT NULL,
    user_id text COLLATE "C" NOT NULL,
    day     date             NOT NULL,
    release bytea            NOT NULL,
    epsilon numeric          NOT NULL CHECK (epsilon >= 0),
    PRIMARY KEY (app_id, user_id, day, release)
);

-- Charge the releases not yet charged today; refuse (recording nothing) when that
-- would take the day's spend over p_budget. Returns whether it was allowed, what
-- this call charged and what the day's spend is after it.
CREATE FUNCTION spend_epsilon(p_app text, p_user text, p_day date, p_releases bytea[], p_costs numeric[], p_budget numeric)
RETURNS TABLE (allowed boolean, charged numeric, spent numeric)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    already numeric;
    fresh numeric := 0;
    refused boolean := false;
BEGIN
    IF cardinality(p_releases) IS DISTINCT FROM cardinality(p_costs) THEN
        RAISE EXCEPTION 'releases and costs differ in length' USING ERRCODE = '22023';
    END IF;
    -- One (app, user) at a time, so two concurrent requests cannot both fit in what is left.
    PERFORM pg_advisory_xact_lock(hashtextextended(p_app || chr(31) || p_user, 7));
    SELECT coalesce(sum(s.epsilon), 0) INTO already
    FROM privacy_spend s WHERE s.app_id = p_app AND s.user_id = p_user AND s.day = p_day;
    BEGIN
        WITH charged AS (
            INSERT INTO privacy_spend (app_id, user_id, day, release, epsilon)
            SELECT DISTINCT ON (r.release) p_app, p_user, p_day, r.release, r.epsilon
            FROM unnest(p_releases, p_costs) AS r(release, epsilon)
            ORDER BY r.release, r.epsilon DESC
            ON CONFLICT DO NOTHING
            RETURNING epsilon
        )
        SELECT coalesce(sum(c.epsilon), 0) INTO fresh FROM charged c;
        IF fresh > 0 AND already + fresh > p_budget THEN
            RAISE EXCEPTION 'over budget' USING ERRCODE = 'P0001';  -- undoes this block's inserts
        END IF;
    EXCEPTION WHEN raise_exception THEN
        refused := true;
    END;
    IF refused THEN
        RETURN QUERY SELECT false, fresh, already;
    ELSE
        RETURN QUERY SELECT true, fresh, already + fresh;
    END IF;
END
$$;

REVOKE ALL ON FUNCTION spend_epsilon(text, text, date, bytea[], numeric[], numeric) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION spend_epsilon(text, text, date, bytea[], numeric[], numeric) TO gateway_reader;
