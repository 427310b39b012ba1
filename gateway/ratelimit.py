"""Rate limits: how many requests a key (a principal, or an address) may make in any minute.

The limit is the policy's (`rate_limit.requests_per_minute` among a decision's obligations); the
counting is a moving window: a request is refused when the key made as many in the 60 s before
it. The windows live where GATEWAY_RATE_LIMIT_STORAGE says: with memory:// in each process (so N
replicas allow N times the limit), in the process's own deques of request times (`limits`'
memory storage would hand each key to a thread every time it expires entries, over and over
under load); with a shared one (redis://…) in `limits`' moving window over that storage.

A route asks `await limiter.hit(key, per_minute)` for each request it counts, and answers by the
`Verdict`: refused (RATE_LIMITED) or not, and with its headers either way.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from limits import RateLimitItemPerMinute
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from gateway.auth import Principal, PrincipalKind
from gateway.errors import PolicyUnavailable, RateLimited, StoreUnavailable

__all__ = ["WINDOW_SECONDS", "RateLimiter", "Verdict", "rate_limit_key", "requests_per_minute"]

WINDOW_SECONDS = 60
# The quota policy's name in the RateLimit-Policy and RateLimit headers.
POLICY_NAME = "minute"


@dataclass(frozen=True)
class Verdict:
    """A request counted against its key: whether it may go on, the limit, how many more the key may
    make now, and the seconds until the oldest request in its window leaves it (a slot frees)."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        # The fields of draft-ietf-httpapi-ratelimit-headers-11 (§3, §4): a quota policy of `q`
        # requests in a window of `w` seconds, and `r` of them available for the next `t` seconds.
        return {
            "RateLimit-Policy": f'"{POLICY_NAME}";q={self.limit};w={WINDOW_SECONDS}',
            "RateLimit": f'"{POLICY_NAME}";r={self.remaining};t={self.reset_seconds}',
        }

    def refusal(self) -> RateLimited:
        # Retry-After is not earlier than the end of the effective window (the draft's §6).
        return RateLimited(self.limit, max(1, self.reset_seconds))


class _PerMinute(RateLimitItemPerMinute):
    """A limit whose windows are keyed by who is counted alone (`limits` adds the amount to the key):
    a limit the policy changes applies to the requests already counted, not to a fresh window."""

    def key_for(self, *identifiers: bytes | str | int | float) -> str:
        # As JSON: no id, whatever it holds ("/" included), makes one key look like another's.
        return f"{self.namespace}/{orjson.dumps(identifiers).decode()}"


class _Windows(Protocol):
    async def hit(self, key: tuple[str, ...], per_minute: int) -> tuple[bool, int, float]:
        """Counts one request against `key` if it is within `per_minute`: whether it was, how
        many more the key may make now, and when (epoch seconds) the oldest in its window leaves it."""
        ...


class _ProcessWindows:
    """Each key's request times within the last minute, oldest first, in this process."""

    def __init__(self) -> None:
        self._times: dict[tuple[str, ...], deque[float]] = {}
        self._swept = time.time()

    async def hit(self, key: tuple[str, ...], per_minute: int) -> tuple[bool, int, float]:
        now = time.time()
        horizon = now - WINDOW_SECONDS
        times = self._times.get(key)
        if times is None:
            times = self._times[key] = deque()
        while times and times[0] < horizon:
            times.popleft()
        allowed = len(times) < per_minute
        if allowed:
            times.append(now)
        if now - self._swept >= WINDOW_SECONDS:
            self._sweep(horizon)
        return allowed, per_minute - len(times), times[0] + WINDOW_SECONDS if times else now

    def _sweep(self, horizon: float) -> None:
        """Forgets the keys that made no request within the window (once a window: each costs a look)."""
        self._swept = horizon + WINDOW_SECONDS
        for key in [key for key, times in self._times.items() if not times or times[-1] < horizon]:
            del self._times[key]


class _SharedWindows:
    """`limits`' moving windows over a storage several processes may share."""

    def __init__(self, storage: Storage, namespace: str) -> None:
        self._windows = MovingWindowRateLimiter(storage)
        self._namespace = namespace
        # What the storage raises when it cannot be reached: its client's errors, which `limits`
        # wraps in StorageError for some calls only.
        base = storage.base_exceptions
        self._unreachable: tuple[type[Exception], ...] = (StorageError, *(base if isinstance(base, tuple) else (base,)))

    async def hit(self, key: tuple[str, ...], per_minute: int) -> tuple[bool, int, float]:
        item = _PerMinute(per_minute, namespace=self._namespace)
        try:
            allowed = await self._windows.hit(item, *key)
            stats = await self._windows.get_window_stats(item, *key)
        except self._unreachable as exc:
            raise StoreUnavailable("the rate limits cannot be counted just now; try again shortly") from exc
        return allowed, stats.remaining, stats.reset_time


class RateLimiter:
    """Moving windows of one minute, in this process or in a shared `limits` storage."""

    def __init__(self, storage: Storage | None = None, namespace: str = "gateway") -> None:
        self._windows: _Windows = _ProcessWindows() if storage is None else _SharedWindows(storage, namespace)
        self.refused = 0  # requests refused since start (for /metrics)

    @classmethod
    def open(cls, uri: str) -> RateLimiter:
        """In this process for `async+memory://`; else over the asyncio storage `uri` names
        (`async+redis://host:6379`, …)."""
        if uri == "async+memory://":
            return cls()
        storage = storage_from_string(uri, wrap_exceptions=True)
        assert isinstance(storage, Storage), f"{uri} is not an asyncio storage"
        return cls(storage)

    async def hit(self, key: tuple[str, ...], per_minute: int) -> Verdict:
        """Counts one request against `key` if it is within `per_minute`. StoreUnavailable when
        a shared storage cannot be reached: nothing is let through uncounted."""
        allowed, remaining, reset_at = await self._windows.hit(key, per_minute)
        if not allowed:
            self.refused += 1
        reset_seconds = max(0, math.ceil(reset_at - time.time()))
        return Verdict(allowed, per_minute, max(0, remaining), reset_seconds)


# One IPv6 client is handed a /64 or more: counted by its address, it would have 2^64 windows.
IPV6_CLIENT_PREFIX = 64


def rate_limit_key(principal: Principal, client_address: str) -> tuple[str, ...]:
    """Who a request counts against: an app per (app, user) it acts for, any other principal by
    kind and id, and a signed-out client by its address (an IPv6 one by its /64)."""
    if principal.kind is PrincipalKind.ANONYMOUS or principal.id is None:
        return ("address", _client_network(client_address))
    if principal.kind is PrincipalKind.APP:
        return ("app", principal.app_id or "", principal.id)
    return (principal.kind.value, principal.id)


def _client_network(address: str) -> str:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an IP address (a Unix socket's peer): counted as it is named
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)  # ::ffff:a.b.c.d is the IPv4 client a.b.c.d
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_CLIENT_PREFIX}", strict=False))
    return str(parsed)


def requests_per_minute(obligations: Mapping[str, Any]) -> int:
    """The policy's `rate_limit.requests_per_minute`; PolicyUnavailable when it sets none, or no
    whole number (fail closed: a request is never let through on a limit the policy did not set)."""
    rate_limit = obligations.get("rate_limit")
    limit = rate_limit.get("requests_per_minute") if isinstance(rate_limit, Mapping) else None
    if isinstance(limit, float) and limit.is_integer():
        limit = int(limit)
    if type(limit) is not int or limit < 0:
        raise PolicyUnavailable("the policy's rate_limit obligation sets no whole number of requests_per_minute")
    return limit
