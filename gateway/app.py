"""The Starlette application: routes, and the lifespan that opens the store and the policy engine."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Route

from gateway.auth import AppGrants, IssuedTokens
from gateway.clock import Clock, utc_now
from gateway.config import Settings
from gateway.graphql.persisted import PersistedDocuments
from gateway.graphql.responses import ResponseCache
from gateway.graphql.schema import build_schema
from gateway.policy.cache import DecisionCache
from gateway.policy.decider import PolicyDecider, weigh_decision
from gateway.oauth.keys import KeyRing
from gateway.policy.engines import open_engine
from gateway.privacy.budget import BudgetLedger
from gateway.privacy.history_k import keeping_history_k
from gateway.privacy.noise import derive_noise_key
from gateway.ratelimit import RateLimiter
from gateway.routes.errors import EXCEPTION_HANDLERS
from gateway.routes.events import post_events
from gateway.routes.graphql import graphql_endpoint
from gateway.routes.health import healthz, readyz
from gateway.routes.metrics import GatewayCollector, metrics, metrics_registry
from gateway.routes.oauth import oauth_routes
from gateway.routes.pages import announce_demo, page_routes
from gateway.serving.balance import ConnectionShares, install
from gateway.store.apps import current_grant
from gateway.store.answer_version import AnswerVersion
from gateway.store.decision_log import DecisionLogWriter
from gateway.store.erasure import derive_erasure_key
from gateway.store.documents import registered_document
from gateway.store.ingest import EventWriter
from gateway.store.migrate import migrate
from gateway.store.oauth import family_revoked
from gateway.store.pools import Store
from gateway.store.releases import ReleaseReader
from gateway.store.retention import DailyRetention
from gateway.store.revocations import listen_for_revocations
from gateway.store.server import database_url, release_embedded
from gateway.telemetry.middleware import RequestTelemetry
from gateway.telemetry.timings import request_latency
from gateway.telemetry.workers import WorkerSlot, all_workers_registry

__all__ = ["create_app"]

log = logging.getLogger(__name__)

GC_THRESHOLD = 20_000
EPOCH_SECONDS = 5.0


def create_app(settings: Settings | None = None, *, policy_guard: bool = True, clock: Clock = utc_now,
               worker_dir: Path | None = None) -> Starlette:
    """The gateway. `policy_guard=False` serves without asking the policy: the benchmark's baseline
    only. `clock` is the time arrivals are stamped with and answers are given at. `worker_dir`: one
    of `gateway serve --workers N`'s processes, whose supervisor (gateway.serving.workers) migrated
    the store and announced the demo once for all of them, and shares this directory with them
    (their metrics and connection counts: gateway.telemetry.workers, gateway.serving.balance)."""
    supervised = worker_dir is not None
    settings = settings or Settings()
    schema = build_schema(policy_guard=policy_guard)
    latency = request_latency()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        secret = settings.signing_secret()
        erasure_key = derive_erasure_key(secret)
        url = await database_url(settings)
        if not supervised:
            await migrate(url, secret)
        store = await Store.open(url, secret, statement_timeout=settings.statement_timeout, acquire_timeout=settings.pool_timeout)
        engine = await open_engine(settings)
        decision_log = DecisionLogWriter(store.ingest, erasure_key=erasure_key)
        decision_log.start()
        cache = DecisionCache(settings.policy_cache_size, settings.policy_cache_mb * 1024 * 1024, weigh=weigh_decision)
        decider = PolicyDecider(engine, cache, record=decision_log.record)
        budget = BudgetLedger(store.reader)
        writer = EventWriter(store.ingest, clock, erasure_key=erasure_key)
        retention = DailyRetention(store.eraser, settings.retention_days, settings.lateness_days, clock) if settings.retention_days else None
        limiter = RateLimiter.open(settings.rate_limit_storage_uri)
        registry = metrics_registry(GatewayCollector(decider, decision_log, budget, writer, limiter, retention), latency)
        slot = WorkerSlot(worker_dir) if worker_dir is not None else None
        publishing = asyncio.create_task(slot.keep_publishing(registry)) if slot is not None else None
        connection_shares = ConnectionShares(slot.directory, slot.number) if slot is not None else None
        balancing = asyncio.create_task(connection_shares.keep_refreshing()) if connection_shares is not None else None
        install(connection_shares)
        # What exists now lives as long as the process: keep the collector from rescanning it, and let
        # it run less often (a GraphQL request allocates thousands of short-lived objects).
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
        issued = IssuedTokens(await asyncio.to_thread(KeyRing, settings.data_dir), settings.issuer)
        releases = ReleaseReader(store.reader, clock)
        # Backfills reach the reader's kept answers within this many seconds when no request reads
        # the history's epoch (a server keeping no whole answers); requests that do, at once.
        following = asyncio.create_task(releases.follow_epoch(EPOCH_SECONDS))
        grants = AppGrants(
            functools.partial(current_grant, store.reader),
            ttl=settings.app_grant_ttl,
            family_revoked=functools.partial(family_revoked, store.reader),
        )
        listening = asyncio.Event()
        revocations = asyncio.create_task(listen_for_revocations(url, secret, grants.forget, listening))
        retaining = asyncio.create_task(retention.run_forever()) if retention is not None else None
        try:
            if settings.demo and not supervised:
                await announce_demo(store.reader, secret, settings)
            async with keeping_history_k(engine, store.ingest):
                yield {
                    "settings": settings,
                    "secret": secret,
                    "clock": clock,
                    "noise_key": derive_noise_key(secret),
                    "erasure_key": erasure_key,
                    "budget": budget,
                    "issued": issued,
                    "grants": grants,
                    "revocations_heard": listening,
                    "persisted": PersistedDocuments(
                        schema._schema,
                        functools.partial(registered_document, store.reader),
                        remember_bytes=settings.apq_cache_mb * 1024 * 1024,
                        registered_ttl=settings.app_documents_ttl,
                    ),
                    "releases": releases,
                    "answer_version": AnswerVersion(store.reader),
                    "store": store,
                    "writer": writer,
                    "retention": retention,
                    "schema": schema,
                    # None without the policy guard: a baseline that decides nothing keeps nothing.
                    "responses": ResponseCache(settings.response_cache_mb * 1024 * 1024) if policy_guard else None,
                    "engine": engine,
                    "decider": decider,
                    "limiter": limiter,
                    "decision_log": decision_log,
                    "metrics": registry if slot is None else all_workers_registry(registry, slot),
                }
        finally:
            for task in (following, retaining, revocations, publishing, balancing):
                if task is not None:
                    task.cancel()
                    try:
                        await task
                    except asyncio.CancelledError:
                        pass
                    except Exception:  # it ended before: said, and the rest still shuts down
                        log.exception("a background task had failed")
            install(None)
            if connection_shares is not None:
                connection_shares.close()
            if slot is not None:
                slot.close()
            await decision_log.close()
            await engine.close()
            await store.close()
            await asyncio.to_thread(release_embedded, settings)

    routes: list[BaseRoute] = [
        Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
        Route("/events", post_events, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *page_routes(settings),
        *oauth_routes(),
    ]
    middleware = [Middleware(RequestTelemetry, routes=[route.path for route in routes if isinstance(route, Route)], latency=latency)]
    if settings.cors_origins:
        middleware.append(cors(settings.cors_origins))
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS, middleware=middleware)


def cors(origins: tuple[str, ...]) -> Middleware:
    """Pages from `origins` may call the API. Credentials are bearer tokens a page sends in
    `Authorization`, never cookies: the browser is told not to send its cookies."""
    return Middleware(
        CORSMiddleware,
        allow_origins=list(origins),
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "Accept", "X-Request-Id"],
        allow_credentials=False,
        expose_headers=["X-Request-Id", "Retry-After", "RateLimit", "RateLimit-Policy"],
        max_age=600,
    )
