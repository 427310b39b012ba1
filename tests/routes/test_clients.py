"""The client's address: the peer's, or what a trusted proxy says it forwarded for, and nothing a client
writes into X-Forwarded-For itself."""

from __future__ import annotations

import ipaddress

import pytest
from starlette.requests import Request

from gateway.routes.clients import client_address

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8:ff::/48"))


def request(peer: str, *forwarded_for: str) -> Request:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded_for]
    return Request({"type": "http", "method": "POST", "path": "/graphql", "headers": headers, "client": (peer, 50_000)})


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        pytest.param("203.0.113.5", (), "203.0.113.5", id="no-header"),
        pytest.param("203.0.113.5", ("198.51.100.1",), "203.0.113.5", id="untrusted-peer-ignored"),
        pytest.param("10.0.0.7", (), "10.0.0.7", id="proxy-itself"),
        pytest.param("10.0.0.7", ("198.51.100.1",), "198.51.100.1", id="one-proxy"),
        pytest.param("10.0.0.7", ("198.51.100.1, 10.1.2.3",), "198.51.100.1", id="two-proxies"),
        pytest.param("10.0.0.7", ("6.6.6.6, 198.51.100.1",), "198.51.100.1", id="client-written-part-ignored"),
        pytest.param("10.0.0.7", ("6.6.6.6", "198.51.100.1"), "198.51.100.1", id="two-headers-in-order"),
        pytest.param("10.0.0.7", ("garbage, 198.51.100.1",), "198.51.100.1", id="garbage-left-of-the-client"),
        pytest.param("10.0.0.7", ("198.51.100.1, garbage",), "10.0.0.7", id="garbage-from-a-proxy"),
        pytest.param("10.0.0.7", ("198.51.100.1:443",), "10.0.0.7", id="address-with-port"),
        pytest.param("10.0.0.7", ("",), "10.0.0.7", id="empty"),
        pytest.param("10.0.0.7", ("10.9.9.9, 10.1.2.3",), "10.9.9.9", id="every-hop-a-proxy"),
        pytest.param("::ffff:10.0.0.7", ("198.51.100.1",), "198.51.100.1", id="ipv4-mapped-peer"),
        pytest.param("2001:db8:ff::1", ("2001:db8:1::5",), "2001:db8:1::5", id="ipv6"),
    ],
)
def test_client_address(peer: str, forwarded_for: tuple[str, ...], client: str) -> None:
    assert client_address(request(peer, *forwarded_for), PROXIES) == client


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert client_address(request("10.0.0.7", "198.51.100.1"), ()) == "10.0.0.7"


def test_a_peer_with_no_address_is_named_empty() -> None:
    assert client_address(Request({"type": "http", "headers": [], "client": None}), PROXIES) == ""
