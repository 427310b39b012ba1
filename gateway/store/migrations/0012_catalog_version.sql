-- What kept answers are checked against (gateway.graphql.responses), one row read per request:
--
-- version        moves whenever the set of published videos, or a published video's row,
--                changes. A served answer reads videos (which exist, whose they are, when they
--                were published) besides releases. It moves only with published rows: a video is
--                recorded the first time any event names it, and a number that moved then would
--                tell that someone had watched a video not yet published.
-- history_epoch  moves with each arrival a backfill applies in the past (gateway.store.replay):
--                the only way a release can appear before a cutoff already behind every commit.
--                The release reader lets go of what it kept when it moves.

CREATE TABLE catalog_version (
    only_row      boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version       bigint  NOT NULL,
    history_epoch bigint  NOT NULL
);
INSERT INTO catalog_version VALUES (true, 0, 0);

CREATE FUNCTION bump_catalog_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT FROM changed WHERE published_at IS NOT NULL) THEN
        UPDATE catalog_version SET version = version + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER videos_inserted AFTER INSERT ON videos
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_version();
CREATE TRIGGER videos_updated AFTER UPDATE ON videos
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_version();
CREATE TRIGGER videos_deleted AFTER DELETE ON videos
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_version();

GRANT SELECT, UPDATE ON catalog_version TO gateway_ingest, gateway_private;
GRANT SELECT ON catalog_version TO gateway_reader;
