-- An erasure also takes out of the policy decision log the requests the person made themselves
-- (as a user, or through an app acting for them): each names them as its principal. Compliance's
-- own requests stay, and the eraseUser request no longer names whom it erased (the policy guard
-- withholds that argument from the policy's input, gateway.policy.fields).
--
-- The decision log is written with COPY, which row-level security would refuse: the eraser reaches
-- it through this function instead, bound like its row-level security to the person its
-- transaction names.
CREATE INDEX decision_log_principal_id_idx ON decision_log ((principal ->> 'id'));

CREATE FUNCTION forget_decisions_of(p_person text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    forgotten bigint;
BEGIN
    IF p_person IS DISTINCT FROM current_setting('gateway.actor_id', true) THEN
        RAISE EXCEPTION 'forget_decisions_of: % is not the person this transaction erases', p_person
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    DELETE FROM decision_log
    WHERE principal ->> 'id' = p_person AND principal ->> 'kind' IN ('user', 'app');
    GET DIAGNOSTICS forgotten = ROW_COUNT;
    RETURN forgotten;
END
$$;

REVOKE ALL ON FUNCTION forget_decisions_of(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION forget_decisions_of(text) TO gateway_eraser;
