"""Apps as OAuth clients: which redirect URIs may be registered, and how a client proves who it
is at the token and revocation endpoints (RFC 6749 §2.3: HTTP Basic or the body for a
confidential client; a public client names itself and proves the code with PKCE alone)."""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError
from authlib.oauth2.rfc6749.util import extract_basic_authorization

from gateway.store.oauth import Client, secret_digest

__all__ = ["client_credentials", "is_client_id", "redirect_uri_problem", "verify_client"]

LOOPBACK_NAMES = {"localhost"}


def _loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redirect_uri_problem(uri: str) -> str | None:
    """Why `uri` may not be registered (None: it may). HTTPS, or HTTP to this machine for an app
    under development or a native app (RFC 8252 §7.3); absolute; no fragment (RFC 6749 §3.1.2)."""
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
    except ValueError as exc:
        return f"{uri!r} is not a URI: {exc}"
    if parts.scheme not in ("https", "http") or not host:
        return f"{uri!r} must be an absolute https:// URI"
    if parts.scheme == "http" and not _loopback(host):
        return f"{uri!r} must use https (plain http only to localhost or a loopback address)"
    if parts.fragment or uri.endswith("#"):
        return f"{uri!r} must not have a fragment"
    if parts.username or parts.password:
        return f"{uri!r} must not carry credentials"
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in uri) or urlunsplit(parts) != uri:
        return f"{uri!r} must be written as a URI is sent: no spaces or control characters, nothing a parser would change"
    return None


CLIENT_ID = re.compile(r"app_[0-9a-f]{16}")


def is_client_id(value: str) -> bool:
    """Whether `value` is shaped like an app's id (anything else names no app: the store is not asked)."""
    return CLIENT_ID.fullmatch(value) is not None


def client_credentials(headers: Mapping[str, str], form: Mapping[str, str]) -> tuple[str, str | None]:
    """(client id, secret or None) as the request presents them."""
    authorization = headers.get("authorization")
    if authorization:
        try:
            client_id, secret = extract_basic_authorization({"Authorization": authorization})
        except ValueError as exc:  # credentials that are not UTF-8 (UnicodeDecodeError)
            raise InvalidClientError(description="the Basic credentials are not UTF-8", status_code=401) from exc
        if not client_id:
            raise InvalidClientError(description="Authorization must be HTTP Basic with the client id and secret", status_code=401)
        if form.get("client_id") not in (None, client_id):
            raise InvalidRequestError("client_id in the body differs from the one authenticated")
        return client_id, secret
    client_id = form.get("client_id")
    if not client_id:
        raise InvalidClientError(description="the client must authenticate (HTTP Basic) or name itself (client_id)", status_code=401)
    return client_id, form.get("client_secret")


def verify_client(client: Client | None, client_id: str, secret: str | None) -> Client:
    """The client, if it proved who it is; else InvalidClientError (401, with a Basic challenge)."""

    def refused(description: str) -> InvalidClientError:
        return InvalidClientError(description=description, status_code=401)

    if client is None:
        raise refused("no app is registered under this client_id")
    if client.public:
        if secret:
            raise refused("a public client has no secret")
        return client
    if client.secret_sha256 is None:
        raise refused(f"{client.app_id} has no client secret: register it with `gateway apps create --redirect-uri`")
    if secret is None or not hmac.compare_digest(secret_digest(secret), client.secret_sha256):
        raise refused("the client secret is wrong")
    return client
