"""How `gateway serve` holds its connections: the HTTP protocol with the gateway's limits."""
