"""The latency histograms /metrics serves. Their labels come from small closed sets (a route of the
app, an operation type), never from anything a client names freely."""

from __future__ import annotations

from prometheus_client import Histogram

__all__ = ["policy_evaluation_latency", "request_latency"]

# A kept answer takes about a millisecond, an answer made anew tens of them, an ingest batch seconds.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# A decision fails closed at GATEWAY_POLICY_TIMEOUT (1 s as shipped).
POLICY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


def request_latency() -> Histogram:
    """Seconds from a request's arrival to its last byte, by route and GraphQL operation type."""
    return Histogram(
        "gateway_request_duration_seconds",
        "Seconds from a request's arrival to its response's last byte, by route (one of the app's, or other) "
        "and GraphQL operation type (query, mutation, subscription; none for other routes or no operation).",
        ["route", "operation"],
        buckets=REQUEST_BUCKETS,
        registry=None,
    )


def policy_evaluation_latency() -> Histogram:
    """Seconds the policy engine took per evaluation (decisions served from the cache take none)."""
    return Histogram(
        "gateway_policy_evaluation_seconds",
        "Seconds the policy engine took to decide, per evaluation (cache hits are not evaluations).",
        buckets=POLICY_BUCKETS,
        registry=None,
    )
