"""Platform events in: validation of NDJSON lines and their batching into the store."""
