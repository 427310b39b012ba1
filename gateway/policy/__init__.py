"""Policy: every requested GraphQL field is decided by OPA/Rego before any resolver runs."""
