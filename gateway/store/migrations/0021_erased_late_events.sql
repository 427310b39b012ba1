-- An erased person's events that occurred before their erasure and arrive after it (up to the
-- lateness window late) are not stored: the erasure covered them. Without this, a share made while
-- the person's anonymous setting was on would be applied without it (erasure deleted the setting)
-- and land in its channel's cell. Ingest recognises an erased person only by the keyed hash an
-- erasure record keeps (gateway.store.erasure.subject_key, computed by the writer, which holds the
-- secret): this function answers for the hashes it is given, and names nobody.
CREATE FUNCTION erased_subjects(p_keys bytea[], OUT subject_key bytea, OUT erased_at timestamptz)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT e.subject_key, max(e.erased_at) FROM erasures e WHERE e.subject_key = ANY (p_keys) GROUP BY e.subject_key
$$;

REVOKE ALL ON FUNCTION erased_subjects(bytea[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION erased_subjects(bytea[]) TO gateway_ingest;
