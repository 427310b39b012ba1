"""The privacy layer: what may be served of the release history, under the policy's obligations.

    metrics      the table of metrics: what the history holds for each, and how its breakdowns are served
    terms        the obligations of a decision, typed (k, granularity floor, delay, ε, budget)
    release      which release a principal sees, and the time buckets of timelines
    suppression  k-threshold and complementary suppression of breakdown cells within a release
    noise        consistent noise: discrete Laplace sampled exactly from a keyed PRF
    budget       the ε an (app, user) spends a day on distinct draws, kept in Postgres
    history_k    the history's k kept equal to the policy's smallest
    surges       share surges: releases far above the video's running median of shares per hour
    disclosure   one request's privacy service over all of the above, and its `extensions.privacy` report
"""
