-- Distinct viewers per region or age band, counting the hours before p_until only.
--
-- video_audience counts every view ingested so far, the last minutes' included:
-- asked twice, it would tell a creator the age band of the viewer who just
-- commented. The gateway serves the audience as of the video's released views
-- (gateway.privacy.release) instead, exact, from the distinct-actor ledger. The
-- reader may call this function, which returns counts only; it still cannot
-- read the ledger.
CREATE FUNCTION audience_released(p_video text, p_dimension text, p_until timestamptz)
RETURNS TABLE (value text, viewers bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT CASE p_dimension WHEN 'region' THEN a.region WHEN 'age_band' THEN a.age_band END AS value,
           count(DISTINCT a.actor_id) AS viewers
    FROM video_cell_actors a
    WHERE a.video_id = p_video AND a.metric = 'v' AND a.hour < p_until
      AND p_dimension IN ('region', 'age_band')
    GROUP BY 1
$$;

REVOKE ALL ON FUNCTION audience_released(text, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audience_released(text, text, timestamptz) TO gateway_reader;
