-- Raw events: append-only, partitioned by month on occurred_at.
-- A partitioned table cannot hold a unique key without its partition key, so
-- event_id's primary key, which makes ingest idempotent, is kept by the
-- event_ids ledger: a row enters events only in the transaction that
-- inserted its event_id there. events itself carries no second copy of
-- that index, which would only slow ingest.

CREATE TYPE event_type AS ENUM (
    'video_published', 'view', 'like', 'unlike', 'comment', 'share', 'follow', 'unfollow'
);

CREATE TYPE share_channel AS ENUM (
    'copy_link', 'direct_message', 'whatsapp', 'facebook', 'x', 'instagram', 'email', 'sms', 'other'
);

CREATE TABLE event_ids (
    event_id    text COLLATE "C" PRIMARY KEY,
    occurred_at timestamptz      NOT NULL
);

CREATE TABLE events (
    event_id    text COLLATE "C" NOT NULL,
    type        event_type       NOT NULL,
    occurred_at timestamptz      NOT NULL,
    video_id    text COLLATE "C",
    creator_id  text COLLATE "C" NOT NULL,
    actor_id    text COLLATE "C" NOT NULL,
    channel     share_channel,
    region      char(2),
    age_band    text,
    watch_ms    integer          CHECK (watch_ms >= 0),
    completed   boolean,
    text        text,
    anonymous   boolean,
    ingested_at timestamptz      NOT NULL DEFAULT now(),
    CHECK ((type IN ('follow', 'unfollow')) = (video_id IS NULL)),
    CHECK ((type = 'share') = (channel IS NOT NULL)),
    CHECK ((type = 'view') = (watch_ms IS NOT NULL))
) PARTITION BY RANGE (occurred_at);

CREATE INDEX events_actor_idx ON events (actor_id, occurred_at);

-- Creates the month's partition of events if it is missing. Ingest calls it
-- for each month a batch touches; the name is derived from the date, never
-- from input text.
CREATE FUNCTION ensure_events_partition(month_of timestamptz) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    month_start timestamptz := date_trunc('month', month_of, 'UTC');
    partition   text := format('events_%s', to_char(month_start AT TIME ZONE 'UTC', 'YYYY"m"MM'));
BEGIN
    IF to_regclass(partition) IS NULL THEN
        PERFORM pg_advisory_xact_lock(hashtext('events partitions'));
        EXECUTE format(
            'CREATE TABLE IF NOT EXISTS %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
            partition, month_start, month_start + interval '1 month'
        );
    END IF;
    RETURN partition;
END
$$;
