"""Settings read from `GATEWAY_*` environment variables."""

from __future__ import annotations

import ipaddress
import os
import secrets
from datetime import timedelta
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from limits.aio.storage import MovingWindowSupport
from limits.errors import ConfigurationError
from limits.storage import storage_from_string
from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """The gateway's configuration; every field maps to `GATEWAY_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", frozen=True)

    database_url: str | None = None
    data_dir: Path = Path(".gateway")
    opa_url: str | None = None
    policy_dir: Path = Path("policies")
    # HS256 wants a key of at least 32 bytes (RFC 7518 §3.2).
    secret: str | None = Field(default=None, min_length=32)
    host: str = "127.0.0.1"
    port: int = 8000
    # Serving processes `gateway serve` runs on that one port, each with its own pools, policy
    # engine and caches (gateway.serving.workers); one for each core the gateway may use by default.
    workers: int = Field(default_factory=lambda: usable_cores(), ge=1)
    # Log lines as text, or one JSON object a line; either way each carries its request's id.
    log_format: Literal["text", "json"] = "text"
    # Seconds `gateway serve` lets requests in flight finish after SIGTERM before it cancels them.
    shutdown_seconds: int = Field(default=30, gt=0)
    # Largest `POST /events` body accepted; bigger ones get 413 unread.
    max_ingest_bytes: int = 32 * 1024 * 1024
    ingest_batch_size: int = 10_000
    # Largest `/graphql` body accepted (a query and its variables); bigger ones get 413.
    max_body: int = Field(default=1024 * 1024, gt=0)
    # Days an event may be late: one whose occurred_at is older is refused (a backfill aside).
    lateness_days: int = Field(default=7, ge=0)
    # Days of raw events `gateway serve` keeps: once a day it drops the months older than that
    # (gateway.store.retention). Unset: none are dropped. At least lateness_days.
    retention_days: int | None = Field(default=None, ge=1)
    # Seconds a client may take, from opening a connection (or from its last response), to send a
    # request's headers; past it the connection is closed.
    header_timeout: float = Field(default=10.0, gt=0)
    # Connections one serving process holds open at once; one more is closed as it opens.
    max_connections: int = Field(default=4096, ge=1)
    # Seconds a client may take to send a request body (POST /graphql, /events) before it gets 408.
    body_timeout: float = Field(default=30.0, gt=0)
    # Seconds a request may wait for a connection to the store (all in use, or the server slow to
    # accept one) before it gets 503 STORE_UNAVAILABLE.
    pool_timeout: float = Field(default=5.0, gt=0)
    # Seconds a read of the store may take (waiting on locks included) before the request gets 503.
    statement_timeout: float = Field(default=5.0, gt=0)
    # Seconds a policy evaluation may take before the request fails closed (503).
    policy_timeout: float = Field(default=1.0, gt=0)
    # Seconds a request may wait for a policy worker's turn while others' questions are decided (at
    # a cold start every distinct question is new) before it fails closed (503).
    policy_queue_timeout: float = Field(default=5.0, gt=0)
    # Worker processes evaluating the embedded policy: one slow decision holds up only the requests
    # queued behind it on its worker. Each loads the policy (tens of MB).
    policy_workers: int = Field(default=2, ge=1)
    # Policy decisions kept in the LRU cache; 0 asks the engine every time.
    policy_cache_size: int = Field(default=4096, ge=0)
    # Megabytes those decisions may hold (their questions included), whatever their number.
    policy_cache_mb: int = Field(default=64, ge=0)
    # Megabytes of whole answers kept (gateway.graphql.responses); 0 keeps none.
    response_cache_mb: int = Field(default=64, ge=0)
    # Seconds a replica may go on trusting an app grant it looked up: how long a revocation takes.
    app_grant_ttl: float = Field(default=5.0, ge=0)
    # Megabytes of documents each serving process remembers for automatic persisted queries
    # (gateway.graphql.persisted); 0 remembers none (a hash alone then names registered documents only).
    apq_cache_mb: int = Field(default=16, ge=0)
    # Seconds a replica may go on trusting what it looked up of an app's registered documents: how
    # long a newly registered document takes to work everywhere.
    app_documents_ttl: float = Field(default=5.0, ge=0)
    # Serve the GraphiQL IDE at /graphiql (its files ship in the package; the policy still decides
    # every field it asks for).
    ide: bool = False
    # The demo (`make run`): the dashboard offers sign-in as one of the store's busiest creators, and
    # serve prints such a creator's token. Never on a server with real people's data.
    demo: bool = False
    # The gateway's URL as apps and their users reach it (the OAuth issuer, and the audience of the
    # access tokens it signs); default http://HOST:PORT.
    public_url: str | None = None
    # Origins whose pages may call the API from a browser (CORS), comma-separated; none by default.
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    # Proxies (addresses or networks, comma-separated) whose X-Forwarded-For is believed: behind
    # them, a signed-out client's rate limit is counted by the address they forwarded for. None by default.
    trusted_proxies: Annotated[tuple[IPv4Network | IPv6Network, ...], NoDecode] = ()
    # Where the rate limits' moving windows are kept: a `limits` storage URI. memory:// keeps them in
    # each process, so N replicas allow N times the policy's limits; a shared one (redis://host:6379,
    # with its client installed: limits[async-redis]) makes them one.
    rate_limit_storage: str = "memory://"

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        origins = tuple(origin.strip().rstrip("/") for origin in value.split(",") if origin.strip())
        for origin in origins:
            parts = urlsplit(origin)
            if origin != "*" and (parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], or *)")
        return origins

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        networks = []
        for item in (part.strip() for part in value.split(",")):
            if item:
                try:
                    networks.append(ipaddress.ip_network(item))
                except ValueError as exc:
                    raise ValueError(f"{item!r} is not an IP address or network ({exc})") from exc
        return tuple(networks)

    @field_validator("rate_limit_storage")
    @classmethod
    def _moving_window_storage(cls, value: str) -> str:
        # Made once to be checked (a storage connects when first used): an unknown scheme, a client
        # library missing, or a storage without moving windows (memcached) is said at start.
        try:
            storage = storage_from_string(async_storage_uri(value))
        except ConfigurationError as exc:
            reason = str(exc)
        else:
            if isinstance(storage, MovingWindowSupport):
                return value
            reason = "it keeps no moving windows"
        # The URI may carry a password: it is never repeated.
        password = urlsplit(value).password
        message = f"{value!r} is not a rate limit storage the gateway can use: {reason}"
        raise ValueError(message.replace(password, "***") if password else message)

    @property
    def rate_limit_storage_uri(self) -> str:
        """GATEWAY_RATE_LIMIT_STORAGE as `limits` names its asyncio storages."""
        return async_storage_uri(self.rate_limit_storage)
    @field_validator("public_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"{value!r} is not a base URL (scheme://host[:port][/path])")
        return value.rstrip("/")

    @field_validator("retention_days")
    @classmethod
    def _retention_outlasts_lateness(cls, value: int | None, info: ValidationInfo) -> int | None:
        # lateness_days is declared first, so it is validated by now (absent if it was invalid).
        lateness = info.data.get("lateness_days")
        if value is not None and lateness is not None and value < lateness:
            raise ValueError(f"must be at least GATEWAY_LATENESS_DAYS ({lateness}): events that old may still arrive")
        return value

    @property
    def issuer(self) -> str:
        """The OAuth issuer: `public_url`, or where `gateway serve` listens."""
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def lateness(self) -> timedelta:
        return timedelta(days=self.lateness_days)

    def signing_secret(self) -> str:
        """`GATEWAY_SECRET`, or in development one generated once and kept in the data dir."""
        if self.secret:
            return self.secret
        path = self.data_dir / "secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(48))
        return path.read_text().strip()


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, as a container's cpuset sets it)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no affinity on this platform (macOS)
        return os.cpu_count() or 1


def async_storage_uri(uri: str) -> str:
    """`limits` names the asyncio kind of each storage `async+<scheme>://`."""
    return uri if uri.startswith("async+") else f"async+{uri}"
