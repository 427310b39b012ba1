"""The authorization request (RFC 6749 §4.1.1 with PKCE, RFC 7636), checked the same way when the
consent page is shown and when the user's decision comes back.

Two kinds of bad request: one whose client or redirect URI cannot be trusted is told to the user
on the page and never redirected (§4.1.2.1: else the gateway would be an open redirector); any
other is sent back to the app's redirect URI with an error code and the state."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.errors import InvalidRequestError, InvalidScopeError, OAuth2Error, UnsupportedResponseTypeError
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc7636.challenge import CODE_CHALLENGE_PATTERN

from gateway.store.oauth import Client

__all__ = ["AuthorizationRequest", "UntrustedRequest", "check_redirect", "check_request", "redirect_with"]

MAX_STATE = 1024


class UntrustedRequest(Exception):
    """The client or the redirect URI is wrong: said to the user, never redirected."""


@dataclass(frozen=True)
class AuthorizationRequest:
    client: Client
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    code_challenge: str


def check_redirect(client: Client | None, client_id: str | None, redirect_uri: str | None) -> str:
    if not client_id:
        raise UntrustedRequest("the link names no app (client_id is missing)")
    if client is None:
        raise UntrustedRequest(f"no app is registered as {client_id!r}")
    if not client.redirect_uris:
        raise UntrustedRequest(f"{client.name} has no redirect URI registered for signing users in")
    if not redirect_uri:
        raise UntrustedRequest("the link names no redirect_uri")
    # Exact match, as registered: no prefix, no added query, no other port.
    if redirect_uri not in client.redirect_uris:
        raise UntrustedRequest(f"{redirect_uri!r} is not a redirect URI registered for {client.name}")
    return redirect_uri


def check_request(params: Mapping[str, str], client: Client | None, offered: frozenset[str]) -> AuthorizationRequest:
    """Raises UntrustedRequest, or an OAuth2Error to send to the redirect URI (`.redirect_uri`
    and `.state` set on it)."""
    redirect_uri = check_redirect(client, params.get("client_id"), params.get("redirect_uri"))
    assert client is not None
    state = params.get("state")
    try:
        if state is not None and len(state) > MAX_STATE:
            raise InvalidRequestError(f"state is longer than {MAX_STATE} characters")
        # No description echoes what was sent: it goes back to the app's page, which may show it.
        if params.get("response_type") != "code":
            raise UnsupportedResponseTypeError("response_type must be code")
        scopes = tuple(sorted(set(scope_to_list(params.get("scope") or "") or ())))
        if not scopes:
            raise InvalidScopeError("ask for at least one scope")
        unknown = [scope for scope in scopes if scope not in offered]
        if unknown:
            raise InvalidScopeError(f"a scope the platform does not offer was asked for; it offers: {', '.join(sorted(offered))}")
        if params.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE is required: code_challenge_method must be S256")
        challenge = params.get("code_challenge") or ""
        if not re.fullmatch(CODE_CHALLENGE_PATTERN, challenge):
            raise InvalidRequestError("code_challenge must be 43-128 characters of [A-Za-z0-9-._~]")
    except OAuth2Error as error:
        error.redirect_uri = redirect_uri
        error.state = state if state is not None and len(state) <= MAX_STATE else None
        raise
    return AuthorizationRequest(client, redirect_uri, scopes, state, challenge)


def redirect_with(redirect_uri: str, params: list[tuple[str, str]], state: str | None, issuer: str) -> str:
    """The redirect URI with the response's parameters, the state, and the issuer (RFC 9207, so
    an app talking to several servers knows which one answered)."""
    extra = [("state", state)] if state is not None else []
    uri: str = add_params_to_uri(redirect_uri, [*params, *extra, ("iss", issuer)])
    return uri
