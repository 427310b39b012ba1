"""The privacy layer: what a resolver may release of an aggregate, under the policy's obligations.

    terms        the obligations of a decision, typed (k, granularity floor, delay, ε, budget)
    release      which closed buckets may be served, and how totals grow in steps of k actors
    suppression  k-threshold and complementary suppression of cells and buckets
    noise        consistent noise: discrete Laplace sampled exactly from a keyed PRF
    budget       the ε an (app, user) spends a day, kept in Postgres
    layer        one request's view of all of the above, and its `extensions.privacy` report
"""
