"""OAuth 2.0 for third-party apps: authorization code with PKCE (RFC 6749, RFC 7636), rotating
refresh tokens, revocation (RFC 7009), and the metadata and keys anyone needs to verify what
the gateway issues (RFC 8414, RFC 7517).

    GET  /oauth/authorize        the consent page (the app's name, each scope in plain words)
    POST /oauth/authorize        the signed-in user's decision → {"redirect_to": …}
    POST /oauth/token            code → access token + refresh token; refresh → the next pair
    POST /oauth/revoke           a refresh or access token → its whole family revoked
    GET  /.well-known/oauth-authorization-server, /.well-known/jwks.json

The user approving is the one whose platform bearer token comes with the decision (a user token:
the dashboard's sign-in). No cookie is involved, so no other site can approve on their behalf."""

from __future__ import annotations

import functools
import html
import re
import string
from datetime import timedelta
from pathlib import Path
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from authlib.oauth2.rfc6749.errors import (
    AccessDeniedError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnsupportedGrantTypeError,
)
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc7636.challenge import CODE_VERIFIER_PATTERN, compare_s256_code_challenge
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from gateway.auth import ANONYMOUS, IssuedTokens, PrincipalKind, authenticate, create_access_token
from gateway.errors import BadUserInput, Forbidden, GatewayError, PayloadTooLarge, RequestTimeout, Unauthenticated, UnsupportedMediaType
from gateway.oauth.authorization import AuthorizationRequest, UntrustedRequest, check_request, redirect_with
from gateway.oauth.clients import client_credentials, is_client_id, verify_client
from gateway.oauth.keys import ALGORITHM
from gateway.oauth.scopes import NEVER, describe, policy_scopes, scopes_of
from gateway.routes.bodies import read_body
from gateway.routes.clients import count_request
from gateway.routes.pages import PAGE_HEADERS, STATIC, PageFiles
from gateway.store import oauth as store
from gateway.store.oauth import RefreshOutcome

__all__ = ["ACCESS_TOKEN_SECONDS", "CODE_SECONDS", "REFRESH_TOKEN_SECONDS", "oauth_routes"]

CODE_SECONDS = 60
ACCESS_TOKEN_SECONDS = 3600
REFRESH_TOKEN_SECONDS = 30 * 24 * 3600
# Largest form the OAuth endpoints read: a few ids, a code, a verifier, a state.
MAX_FORM_BYTES = 16 * 1024

Endpoint = Callable[[Request], Awaitable[Response]]

CONSENT = STATIC / "consent"
TOKEN_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _page(path: Path) -> string.Template:
    return string.Template(path.read_text(encoding="utf-8"))


CONSENT_PAGE = _page(CONSENT / "index.html")
REFUSAL_PAGE = _page(CONSENT / "refused.html")


async def _form(request: Request) -> dict[str, str]:
    """The body as form fields (each once: a repeated parameter is refused, RFC 6749 §3.1)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType(f"{request.url.path} takes Content-Type: application/x-www-form-urlencoded")
    body = await read_body(request, MAX_FORM_BYTES, "send fewer or shorter parameters")
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise BadUserInput("the form is not UTF-8") from exc
    fields = parse_qsl(text, keep_blank_values=True)
    form: dict[str, str] = {}
    for name, value in fields:
        if name in form:
            raise BadUserInput(f"{name} is given more than once")
        form[name] = value
    return form


def _offered_scopes(request: Request) -> frozenset[str]:
    """The scopes the policy in force defines: from the files the engine serves (what is on disk
    may be an edit it refused), or from the policy directory when a server holds the policy."""
    engine = request.state.engine
    files = engine.files
    if files is None:
        return _scopes_on_disk(request.state.settings.policy_dir, engine.revision)
    return scopes_of(files)


@functools.lru_cache(maxsize=4)
def _scopes_on_disk(policy_dir: Path, revision: str) -> frozenset[str]:
    return policy_scopes(policy_dir)


def _oauth_error(error: OAuth2Error) -> Response:
    return JSONResponse(dict(error.get_body()), status_code=error.status_code, headers=dict(error.get_headers()))


# What OAuth allows in an error_description (RFC 6749 §5.2): printable ASCII but '"' and '\\'.
_NOT_DESCRIBABLE = re.compile(r'[^\x20-\x21\x23-\x5b\x5d-\x7e]')


def _refused_form(exc: GatewayError) -> Response:
    """A body the token or revocation endpoint cannot read, answered as OAuth clients expect: a
    string `error` (invalid_request), with the status that says why (400, 408, 413, 415)."""
    body = {"error": "invalid_request", "error_description": _NOT_DESCRIBABLE.sub("?", exc.message)}
    return JSONResponse(body, status_code=exc.status_code, headers={**TOKEN_HEADERS, **exc.headers()})


async def _oauth_form(request: Request) -> dict[str, str] | Response:
    try:
        return await _form(request)
    except (BadUserInput, UnsupportedMediaType, PayloadTooLarge, RequestTimeout) as exc:
        return _refused_form(exc)


def _issued(request: Request) -> IssuedTokens:
    issued: IssuedTokens = request.state.issued
    return issued


async def _client(request: Request, client_id: str | None) -> store.Client | None:
    if client_id is None or not is_client_id(client_id):
        return None  # not an app's id: the store is not asked
    return await store.find_client(request.state.store.oauth, client_id)


async def _authenticated_client(request: Request, form: dict[str, str]) -> store.Client:
    """The client the token or revocation request comes from, once it proved who it is (OAuth2Error otherwise)."""
    client_id, secret = client_credentials(request.headers, form)
    return verify_client(await _client(request, client_id), client_id, secret)


# --- the consent page and the user's decision ------------------------------------------------


def _refusal(message: str) -> Response:
    body = REFUSAL_PAGE.substitute(message=html.escape(message))
    return HTMLResponse(body, status_code=400, headers=PAGE_HEADERS)


def _redirect_error(error: OAuth2Error, issuer: str) -> str:
    params = [("error", error.error)] + ([("error_description", error.description)] if error.description else [])
    return redirect_with(error.redirect_uri, params, error.state, issuer)


async def authorize_page(request: Request) -> Response:
    params = dict(request.query_params)
    if len(params) != len(request.query_params.multi_items()):
        # Which redirect_uri or client would be meant? Nothing of such a link is trusted.
        return _refusal("This sign-in link is not valid: a parameter is given more than once.")
    client = await _client(request, params.get("client_id"))
    try:
        asked = check_request(params, client, _offered_scopes(request))
    except UntrustedRequest as exc:
        return _refusal(f"This sign-in link is not valid: {exc}.")
    except OAuth2Error as error:
        return Response(status_code=303, headers={"Location": _redirect_error(error, _issued(request).issuer), **PAGE_HEADERS})
    return HTMLResponse(_consent(asked), headers=PAGE_HEADERS)


def _consent(asked: AuthorizationRequest) -> str:
    name = html.escape(asked.client.name)
    scopes = "\n".join(
        f'<li data-scope="{html.escape(scope)}"><strong>{html.escape(scope)}</strong>: {html.escape(describe(scope))}</li>' for scope in asked.scopes
    )
    fields = {
        "client_id": asked.client.app_id,
        "redirect_uri": asked.redirect_uri,
        "scope": " ".join(asked.scopes),
        "state": asked.state,
        "code_challenge": asked.code_challenge,
        "code_challenge_method": "S256",
        "response_type": "code",
    }
    hidden = "\n".join(
        f'<input type="hidden" name="{name_}" value="{html.escape(value)}">' for name_, value in fields.items() if value is not None
    )
    return CONSENT_PAGE.substitute(
        app_name=name, scopes=scopes, never=html.escape(NEVER), hidden=hidden, redirect_host=html.escape(_host(asked.redirect_uri))
    )


def _host(uri: str) -> str:
    return urlsplit(uri).netloc


async def authorize_decision(request: Request) -> Response:
    """The user's approve or deny, sent by the consent page with their bearer token."""
    principal = authenticate(request.headers.get("authorization"), request.state.secret, _issued(request))
    if principal.kind is PrincipalKind.ANONYMOUS:
        raise Unauthenticated("sign in (Authorization: Bearer <your user token>) to approve or deny an app")
    if principal.kind is not PrincipalKind.USER or principal.id is None:
        raise Forbidden("only a user may authorize an app on their own behalf")
    form = await _form(request)
    decision = form.get("decision")
    if decision not in ("approve", "deny"):
        raise BadUserInput("decision must be approve or deny")
    client = await _client(request, form.get("client_id"))
    issuer = _issued(request).issuer
    try:
        asked = check_request(form, client, _offered_scopes(request))
    except UntrustedRequest as exc:
        raise BadUserInput(f"this authorization request is not valid: {exc}") from exc
    except OAuth2Error as error:
        return JSONResponse({"redirect_to": _redirect_error(error, issuer)}, headers=TOKEN_HEADERS)
    if decision == "deny":
        denied = AccessDeniedError(description="the user denied the request", redirect_uri=asked.redirect_uri, state=asked.state)
        return JSONResponse({"redirect_to": _redirect_error(denied, issuer)}, headers=TOKEN_HEADERS)
    code = await store.approve(
        request.state.store.oauth,
        asked.client,
        principal.id,
        list(asked.scopes),
        asked.redirect_uri,
        asked.code_challenge,
        request.state.clock(),
        timedelta(seconds=CODE_SECONDS),
    )
    return JSONResponse({"redirect_to": redirect_with(asked.redirect_uri, [("code", code)], asked.state, issuer)}, headers=TOKEN_HEADERS)


# --- the token endpoint ----------------------------------------------------------------------


async def token(request: Request) -> Response:
    form = await _oauth_form(request)
    if isinstance(form, Response):
        return form
    try:
        client = await _authenticated_client(request, form)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            family, scopes = await _redeem(request, client, form)
        elif grant_type == "refresh_token":
            family, scopes = await _refresh(request, client, form)
        else:
            raise UnsupportedGrantTypeError("grant_type must be authorization_code or refresh_token")
    except OAuth2Error as error:
        return _oauth_error(error)
    now = request.state.clock()
    access = create_access_token(
        _issued(request), client.app_id, family.user_id, scopes, ACCESS_TOKEN_SECONDS, family.generation, family.family_id
    )
    refresh = await store.issue_refresh_token(request.state.store.oauth, family, scopes, now, timedelta(seconds=REFRESH_TOKEN_SECONDS))
    body = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_SECONDS,
        "refresh_token": refresh,
        "scope": " ".join(scopes),
    }
    return JSONResponse(body, headers=TOKEN_HEADERS)


async def _redeem(request: Request, client: store.Client, form: dict[str, str]) -> tuple[store.Family, list[str]]:
    code, verifier = form.get("code"), form.get("code_verifier")
    if not code:
        raise InvalidRequestError("code is missing")
    if not verifier or not CODE_VERIFIER_PATTERN.match(verifier):
        raise InvalidRequestError("code_verifier must be 43-128 characters of [A-Za-z0-9-._~]")
    redeemed = await store.redeem_code(request.state.store.oauth, code, request.state.clock())
    if redeemed is None:
        raise InvalidGrantError("the code is unknown or was already used (a reused code revokes the tokens issued for it)")
    if redeemed.family.app_id != client.app_id:
        raise InvalidGrantError("the code was issued to another client")
    if redeemed.expired:
        raise InvalidGrantError(f"the code expired (codes last {CODE_SECONDS} s)")
    if redeemed.withdrawn:
        raise InvalidGrantError("the user withdrew the authorization after approving it")
    if form.get("redirect_uri") != redeemed.redirect_uri:
        raise InvalidGrantError("redirect_uri differs from the one the code was issued for")
    if not compare_s256_code_challenge(verifier, redeemed.code_challenge):
        raise InvalidGrantError("code_verifier does not match the code_challenge")
    return redeemed.family, list(redeemed.family.scopes)


REFRESH_REFUSALS = {
    RefreshOutcome.UNKNOWN: "the refresh token is unknown",
    RefreshOutcome.REUSED: "the refresh token was already used: every token of its family is revoked now",
    RefreshOutcome.EXPIRED: "the refresh token expired",
    RefreshOutcome.REVOKED: "the authorization was revoked: the user must authorize the app again",
}


async def _refresh(request: Request, client: store.Client, form: dict[str, str]) -> tuple[store.Family, list[str]]:
    refresh_token = form.get("refresh_token")
    if not refresh_token:
        raise InvalidRequestError("refresh_token is missing")
    narrowed = scope_to_list(form["scope"]) if "scope" in form else None
    if narrowed is not None and not narrowed:
        raise InvalidScopeError("scope, when given, must name at least one scope")
    outcome = await store.rotate_refresh_token(request.state.store.oauth, refresh_token, client.app_id, request.state.clock(), narrowed)
    if outcome is RefreshOutcome.WIDER:
        raise InvalidScopeError("a refresh may keep or narrow the scopes granted, never widen them")
    if isinstance(outcome, RefreshOutcome):
        raise InvalidGrantError(REFRESH_REFUSALS[outcome])
    return outcome


# --- revocation ------------------------------------------------------------------------------


async def revoke(request: Request) -> Response:
    """RFC 7009: a refresh token or an access token of this client revokes its whole family. An
    unknown token is answered 200, as the RFC asks (the client's copy is worthless either way)."""
    form = await _oauth_form(request)
    if isinstance(form, Response):
        return form
    try:
        client = await _authenticated_client(request, form)
        presented = form.get("token")
        if not presented:
            raise InvalidRequestError("token is missing")
        family = await _family_of(request, presented)
        if family is not None:
            family_id, app_id = family
            if app_id != client.app_id:
                raise InvalidGrantError("the token was not issued to this client")
            await store.revoke_family(request.state.store.oauth, family_id, "revoked by the app", request.state.clock())
            request.state.grants.forget()  # this process at once; the others at the store's notice
    except OAuth2Error as error:
        return _oauth_error(error)
    return Response(status_code=200, headers=TOKEN_HEADERS)


async def _family_of(request: Request, presented: str) -> tuple[str, str] | None:
    """(family, app) of a refresh token, or of an access token this gateway signed (expired or not)."""
    if presented.count(".") != 2:
        return await store.find_refresh_family(request.state.store.oauth, presented)
    try:
        verified = jose_jwt.decode(presented, _issued(request).keys.key_set(), algorithms=[ALGORITHM])
    except (JoseError, ValueError):
        return None
    family, app_id = verified.claims.get("fam"), verified.claims.get("client_id")
    return (family, app_id) if isinstance(family, str) and isinstance(app_id, str) else None


# --- metadata --------------------------------------------------------------------------------


async def jwks(request: Request) -> Response:
    return JSONResponse(_issued(request).keys.public_keys(), headers={"Cache-Control": "public, max-age=300"})


async def metadata(request: Request) -> Response:
    issuer = _issued(request).issuer
    document: dict[str, Any] = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "scopes_supported": sorted(_offered_scopes(request)),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "authorization_response_iss_parameter_supported": True,
    }
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=300"})


def limited(endpoint: Endpoint, *, oauth_errors: bool = True) -> Endpoint:
    """Counts each request against its client's address, at the policy's limit for the signed-out,
    in a window of its own (apart from /graphql's): guessing codes, secrets or refresh tokens is
    not free. Over it: 429 with Retry-After, as OAuth clients read an error (`error`
    temporarily_unavailable) or, for the consent page's own call, RATE_LIMITED as on /graphql."""

    async def counted(request: Request) -> Response:
        verdict = await count_request(request, ANONYMOUS, window=("oauth",))
        if not verdict.allowed:
            refusal = verdict.refusal()
            if not oauth_errors:
                raise refusal
            body = {"error": "temporarily_unavailable", "error_description": _NOT_DESCRIBABLE.sub("?", refusal.message)}
            return JSONResponse(body, status_code=refusal.status_code, headers={**TOKEN_HEADERS, **refusal.headers(), **verdict.headers()})
        response = await endpoint(request)
        response.headers.update(verdict.headers())
        return response

    return counted


def oauth_routes() -> list[BaseRoute]:
    return [
        Route("/oauth/authorize", authorize_page, methods=["GET"]),
        Route("/oauth/authorize", limited(authorize_decision, oauth_errors=False), methods=["POST"]),
        Route("/oauth/token", limited(token), methods=["POST"]),
        Route("/oauth/revoke", limited(revoke), methods=["POST"]),
        Route("/.well-known/jwks.json", jwks, methods=["GET"]),
        Route("/.well-known/oauth-authorization-server", metadata, methods=["GET"]),
        Mount("/static/consent", app=PageFiles(directory=CONSENT), name="consent"),
    ]

