-- Distinct actors per bucket of any width, from the distinct-actor ledger.
--
-- The hourly rollups count distinct actors per hour; summed over the hours of a
-- day, a week or a step of the release they count one person once per hour they
-- were active: one account sharing in five hours would pass for five people. The
-- privacy layer asks this function instead, per bucket of `p_granularity` before
-- `p_until`: how many distinct people acted in it (`actors`), and how many of
-- them acted for the first time on the video (`newcomers`; a step of the release
-- needs k new people). Counts only: the reader may call it, and still cannot read
-- the ledger.
CREATE FUNCTION actor_units(p_video text, p_metrics "char"[], p_granularity text, p_until timestamptz)
RETURNS TABLE (bucket timestamptz, actors bigint, newcomers bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT date_trunc(p_granularity, a.hour, 'UTC') AS bucket,
           count(DISTINCT a.actor_id) AS actors,
           count(DISTINCT a.actor_id) FILTER (WHERE a.hour = a.first_hour) AS newcomers
    FROM (
        SELECT actor_id, hour, min(hour) OVER (PARTITION BY actor_id) AS first_hour
        FROM video_cell_actors
        WHERE video_id = p_video AND metric = ANY (p_metrics) AND hour < p_until
    ) a
    WHERE p_granularity IN ('hour', 'day', 'week', 'month')
    GROUP BY 1
$$;

REVOKE ALL ON FUNCTION actor_units(text, "char"[], text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION actor_units(text, "char"[], text, timestamptz) TO gateway_reader;
