"""Which address a request came from: the peer's, or behind a trusted proxy the one it forwarded for."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from starlette.requests import Request

from gateway.auth import Principal, PrincipalKind
from gateway.ratelimit import RateLimiter, Verdict, rate_limit_key, requests_per_minute

__all__ = ["client_address", "count_request"]


async def count_request(request: Request, principal: Principal, window: tuple[str, ...] = ()) -> Verdict:
    """The request counted against its principal's key (a signed-out one's by its address), at the
    limit the policy sets the principal; `window` names a count of its own (the OAuth endpoints')."""
    limit = requests_per_minute(await request.state.decider.obligations(principal))
    address = client_address(request, request.state.settings.trusted_proxies) if principal.kind is PrincipalKind.ANONYMOUS else ""
    limiter: RateLimiter = request.state.limiter
    return await limiter.hit((*window, *rate_limit_key(principal, address)), limit)


def client_address(request: Request, trusted_proxies: Sequence[IPv4Network | IPv6Network]) -> str:
    """The peer's address, unless the peer is one of `trusted_proxies` (GATEWAY_TRUSTED_PROXIES):
    then `X-Forwarded-For` is read from the right, each trusted proxy appending the address it
    received from, and the first address that is not a trusted proxy's is the client's. Anything
    in the header that is not an address makes it unreadable: the peer's address is used.

    Nothing to the left of that address is believed: the client wrote it itself."""
    peer = request.client.host if request.client is not None else ""
    if not trusted_proxies or not _trusted(_address(peer), trusted_proxies):
        return peer
    hops = [hop.strip() for header in request.headers.getlist("x-forwarded-for") for hop in header.split(",")]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return peer
        if not _trusted(address, trusted_proxies):
            return str(address)
    # Every hop a trusted proxy's: the request started at the leftmost (none: at the peer itself).
    return str(_address(hops[0])) if hops else peer


def _address(text: str) -> IPv4Address | IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack socket names an IPv4 peer ::ffff:a.b.c.d; trusted networks name it a.b.c.d.
    return address.ipv4_mapped or address if isinstance(address, IPv6Address) else address


def _trusted(address: IPv4Address | IPv6Address | None, trusted_proxies: Sequence[IPv4Network | IPv6Network]) -> bool:
    return address is not None and any(address in network for network in trusted_proxies)
