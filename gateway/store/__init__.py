"""The Postgres event store: where it runs, its schema, its pools, ingest and rollup queries."""
