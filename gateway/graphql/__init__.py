"""The GraphQL API: types, resolvers, per-request context and the document cache."""
