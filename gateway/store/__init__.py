"""The Postgres event store: where it runs, its schema, its pools, ingest, and the release history and its reader."""
