"""`GET /metrics`: Prometheus text format, read from the live objects at scrape time; operators only.

A scrape needs a `service` token: counters are for operators, not for anyone
who can reach the port. None of them moves with what one answer contained
(how many of its cells were suppressed, how much noise it carried): a counter
that did would describe a creator's private data to whoever reads it. The
latency histograms are labelled by route and operation type only; what they
time, a client times for itself.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth import authenticate_service
from gateway.policy.decider import PolicyDecider
from gateway.privacy.budget import BudgetLedger
from gateway.store.decision_log import DecisionLogWriter
from gateway.ratelimit import RateLimiter
from gateway.store.ingest import EventWriter
from gateway.store.retention import DailyRetention

__all__ = ["GatewayCollector", "metrics", "metrics_registry"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class GatewayCollector(Collector):
    def __init__(
        self,
        decider: PolicyDecider,
        decision_log: DecisionLogWriter,
        budget: BudgetLedger,
        writer: EventWriter,
        limiter: RateLimiter,
        retention: DailyRetention | None = None,
    ) -> None:
        self.decider, self.decision_log, self.budget, self.writer, self.limiter = decider, decision_log, budget, writer, limiter
        self.retention = retention

    def collect(self) -> Iterator[Metric]:
        cache = self.decider.cache
        decisions = CounterMetricFamily("gateway_policy_decisions", "Policy decisions by cache outcome.", labels=["cache"])
        decisions.add_metric(["hit"], cache.hits)
        decisions.add_metric(["miss"], cache.misses)
        yield decisions
        yield GaugeMetricFamily("gateway_policy_cache_hit_ratio", "Share of decisions served from the cache.", value=cache.hit_rate)
        yield GaugeMetricFamily("gateway_policy_cache_entries", "Decisions held in the cache.", value=len(cache))
        yield GaugeMetricFamily("gateway_policy_cache_bytes", "Bytes the cached decisions hold, as estimated against GATEWAY_POLICY_CACHE_MB.", value=cache.nbytes)
        yield from self.decider.evaluation_seconds.collect()
        engine = self.decider.engine
        yield CounterMetricFamily("gateway_policy_timeouts", "Policy evaluations that ran out of time (the request failed closed).", value=engine.timeouts)
        yield CounterMetricFamily("gateway_policy_worker_restarts", "Policy worker processes started again after one failed.", value=engine.restarts)
        yield CounterMetricFamily("gateway_ingest_batches", "Event batches committed.", value=self.writer.batches)
        yield CounterMetricFamily("gateway_ingest_events_received", "Events in the batches committed.", value=self.writer.events_received)
        yield CounterMetricFamily("gateway_ingest_events_inserted", "Events stored (received less those already stored).", value=self.writer.events_inserted)
        logged = CounterMetricFamily("gateway_decision_log_records", "Decision-log records by outcome.", labels=["outcome"])
        logged.add_metric(["written"], self.decision_log.written)
        logged.add_metric(["dropped"], self.decision_log.dropped)
        # Requests an erased person made before their erasure, written after it: left out.
        logged.add_metric(["erased"], self.decision_log.dropped_erased)
        yield logged
        yield CounterMetricFamily(
            "gateway_privacy_budget_refusals", "Requests refused with BUDGET_EXHAUSTED.", value=self.budget.refused
        )
        yield CounterMetricFamily("gateway_rate_limit_refusals", "Requests refused with RATE_LIMITED.", value=self.limiter.refused)
        if self.retention is not None:
            yield from self._retention(self.retention)

    @staticmethod
    def _retention(job: DailyRetention) -> Iterator[Metric]:
        yield CounterMetricFamily("gateway_retention_runs", "Runs of the retention job (GATEWAY_RETENTION_DAYS) that completed.", value=job.runs)
        yield CounterMetricFamily("gateway_retention_failures", "Runs of the retention job that could not reach or lock the store.", value=job.failures)
        yield CounterMetricFamily("gateway_retention_partitions_dropped", "Months of raw events the retention job dropped.", value=job.partitions_dropped)
        yield GaugeMetricFamily(
            "gateway_retention_last_run_timestamp_seconds",
            "When the retention job last completed (Unix time; 0: not yet).",
            value=job.last_run.timestamp() if job.last_run else 0,
        )


def metrics_registry(*collectors: Collector) -> CollectorRegistry:
    """A registry of `collectors` and the process's own: CPU, memory, open files, Python version."""
    registry = CollectorRegistry(auto_describe=True)
    for collector in collectors:
        registry.register(collector)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


async def metrics(request: Request) -> Response:
    authenticate_service(request.headers.get("authorization"), request.state.secret, "/metrics")
    registry: CollectorRegistry = request.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE)
