-- A repeated erasure covers what the person did up to it, as the first one did (a red team).
--
-- eraseUser on a person of whom nothing is left gives back the receipt of the erasure that removed
-- them (`repeated`) and wrote no record. But what the person did after that erasure and had not yet
-- reached a table (a request the decision log's writer still held, an event arriving late) was then
-- compared with the first erasure's time only, found to be later, and written after the repeated
-- erasure had said nothing of them was left. The repeated erasure now moves its record's
-- `covers_until` to its own moment, and erased_subjects (which the log's writer and late ingest
-- check against) answers the later of the two. The receipt, and the record's erased_at, are as they
-- were.
ALTER TABLE erasures ADD COLUMN covers_until timestamptz;
GRANT UPDATE (covers_until) ON erasures TO gateway_eraser;

CREATE OR REPLACE FUNCTION erased_subjects(p_keys bytea[], OUT subject_key bytea, OUT erased_at timestamptz)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT e.subject_key, max(greatest(e.erased_at, e.covers_until)) FROM erasures e WHERE e.subject_key = ANY (p_keys) GROUP BY e.subject_key
$$;
