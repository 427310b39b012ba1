-- The catalogue's version: one number that moves whenever the set of published videos, or a
-- published video's row, changes. A served answer reads videos (which exist, whose they are, when
-- they were published) besides releases; the gateway keeps whole answers for as long as the
-- releases they read and this number stay the same (gateway.graphql.responses).
--
-- It moves only with published rows: a video is recorded the first time any event names it, and a
-- number that moved then would tell that someone had watched a video not yet published.

CREATE TABLE catalog_version (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version  bigint  NOT NULL
);
INSERT INTO catalog_version VALUES (true, 0);

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
