"""privacy-gateway: engagement aggregates for creators, with sharers kept unidentifiable."""
