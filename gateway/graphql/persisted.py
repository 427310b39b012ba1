"""Persisted documents: Apollo's automatic persisted queries, and the documents registered for each app.

A request may name its document by hash, as Apollo's clients do:
`extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}`.

- With `query` as well, the hash must be the SHA-256 of `query` as sent. The
  document runs and, if it parses and validates, is remembered: per process, in
  an LRU bounded in bytes, so junk cannot crowd out what clients use.
- Alone, it names a document remembered here, or one registered for the
  principal's app (`gateway apps documents add`); a hash known nowhere is
  PERSISTED_QUERY_NOT_FOUND, and Apollo's clients send the request again with
  the document. That is also how a client warms a replica that has not seen it.

When the policy obliges an app to run only its registered documents
(`obligations.registered_documents_only`), any other document is refused with
FORBIDDEN naming that rule, whether it came as text or as a hash. A registered
document is looked up by (app, hash) and what the store said is trusted for a
few seconds per process, so one registered now works on every replica shortly.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from cachetools import LRUCache, TTLCache
from graphql import GraphQLError, GraphQLSchema, OperationDefinitionNode

from gateway.auth import Principal
from gateway.errors import BadUserInput, Forbidden, PersistedQueryNotFound, PolicyUnavailable
from gateway.graphql.documents import parse_document, validate_query
from gateway.store.documents import document_hash

__all__ = ["RULE", "PersistedDocuments", "check_registrable", "persisted_hash", "registered_documents_only", "require_registered"]

# The obligation, and how a refusal names it.
OBLIGATION = "registered_documents_only"
RULE = f"obligations.{OBLIGATION}"
VERSION = 1
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Roughly the bytes an entry holds beside its document's text: the key, the cache's bookkeeping.
ENTRY_OVERHEAD = 256
# What the store said about (app, hash) pairs lately, documents included.
REGISTERED_CACHE_BYTES = 8 * 1024 * 1024

_UNSEEN: Any = object()


def _weigh(document: str | None) -> int:
    return ENTRY_OVERHEAD + len(document or "")


def persisted_hash(extensions: dict[str, Any] | None) -> str | None:
    """The hash `extensions.persistedQuery` names, or None when the request names none;
    BadUserInput when it is not Apollo's shape or version."""
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is None:
        return None
    if not isinstance(persisted, dict):
        raise BadUserInput("extensions.persistedQuery must be an object: {\"version\": 1, \"sha256Hash\": \"<hex>\"}")
    version = persisted.get("version")
    if type(version) is not int or version != VERSION:
        raise BadUserInput(f"Unsupported persisted query version: extensions.persistedQuery.version must be {VERSION}")
    sha256 = persisted.get("sha256Hash")
    if not isinstance(sha256, str) or not _SHA256_HEX.fullmatch(sha256):
        raise BadUserInput("extensions.persistedQuery.sha256Hash must be a SHA-256 in lowercase hex (64 characters)")
    return sha256


class PersistedDocuments:
    """The documents a request may name by hash: those remembered in this process, and those
    registered for its app.

    Args:
        schema: what a document must validate against to be remembered.
        lookup: the text of the document (app id, hash) registered, or None
            (`gateway.store.documents.registered_document` over the reader pool).
        remember_bytes: roughly the bytes the remembered documents may hold; 0 remembers none.
        registered_ttl: seconds an answer of `lookup` is trusted.
    """

    def __init__(
        self,
        schema: GraphQLSchema,
        lookup: Callable[[str, str], Awaitable[str | None]],
        *,
        remember_bytes: int,
        registered_ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._schema = schema
        self._lookup = lookup
        self._remembered: LRUCache[str, str] | None = LRUCache(remember_bytes, getsizeof=_weigh) if remember_bytes > 0 else None
        self._registered: TTLCache[tuple[str, str], str | None] = TTLCache(REGISTERED_CACHE_BYTES, registered_ttl, timer=clock, getsizeof=_weigh)

    async def document(self, principal: Principal, query: str | None, extensions: dict[str, Any] | None) -> str:
        """The document the request runs: `query`, or the one its persisted hash names.

        Raises BadUserInput for a request with neither, a malformed `persistedQuery`, or a hash
        that is not `query`'s; PersistedQueryNotFound for a hash known nowhere; StoreUnavailable
        when the app's registered documents cannot be read."""
        sha256 = persisted_hash(extensions)
        if sha256 is None:
            if query is None:
                raise BadUserInput("`query` must be a non-empty string (or extensions.persistedQuery must name a document)")
            return query
        if query is not None:
            if document_hash(query) != sha256:
                raise BadUserInput("provided sha does not match query: extensions.persistedQuery.sha256Hash must be the SHA-256 of `query` as sent")
            self._remember(sha256, query)
            return query
        known = self._remembered.get(sha256) if self._remembered is not None else None
        if known is None and principal.app_id is not None:
            known = await self.registered(principal.app_id, sha256)
        if known is None:
            raise PersistedQueryNotFound()
        return known

    async def registered(self, app_id: str, sha256: str) -> str | None:
        """The text of the document `sha256` registered for `app_id`, or None."""
        key = (app_id, sha256)
        found: str | None = self._registered.get(key, _UNSEEN)
        if found is _UNSEEN:
            found = await self._lookup(app_id, sha256)
            if _weigh(found) <= self._registered.maxsize:
                self._registered[key] = found
        return found

    def _remember(self, sha256: str, query: str) -> None:
        """Keeps `query` under its hash if it is a document this gateway would run: one that does
        not parse or validate is refused as it would be without a hash, and not kept."""
        if self._remembered is None or sha256 in self._remembered or _weigh(query) > self._remembered.maxsize:
            return
        try:
            parse_document(query)
        except GraphQLError:
            return
        if validate_query(self._schema, query):
            return
        self._remembered[sha256] = query


def registered_documents_only(obligations: dict[str, Any]) -> bool:
    """Whether the decision's obligations confine the principal to its app's registered documents
    (absent: no); PolicyUnavailable when the policy says so in a shape the gateway cannot read."""
    confined = obligations.get(OBLIGATION, False)
    if not isinstance(confined, bool):
        raise PolicyUnavailable(f"the policy's obligations are malformed ({OBLIGATION}: must be true or false)")
    return confined


async def require_registered(documents: PersistedDocuments | None, principal: Principal, sha256: str) -> None:
    """Refuses (Forbidden, naming RULE) a document not registered for the principal's app; a
    principal that is not an app has none. StoreUnavailable when the store cannot say."""
    if principal.app_id is None:
        raise Forbidden(f"only an app's registered documents may run ({RULE}), and this principal is not an app", rule=RULE)
    if documents is None or await documents.registered(principal.app_id, sha256) is None:
        raise Forbidden(f"{principal.app_id} may run only the documents registered for it ({RULE}); document {sha256} is not one of them", rule=RULE)


# Validation errors a refusal to register lists; the rest are counted.
REPORTED_ERRORS = 5


def check_registrable(schema: GraphQLSchema, document: str) -> list[str]:
    """The names of the operations in `document` (none for a lone anonymous one), once it parses
    and every operation in it validates against `schema` as it would in a request; BadUserInput
    saying why not."""
    try:
        parsed = parse_document(document)
    except GraphQLError as error:
        raise BadUserInput(f"the document does not parse: {_described(error)}") from error
    errors = validate_query(schema, document)
    if errors:
        listed = "; ".join(_described(error) for error in errors[:REPORTED_ERRORS])
        more = f"; and {len(errors) - REPORTED_ERRORS} more" if len(errors) > REPORTED_ERRORS else ""
        raise BadUserInput(f"the document does not validate against the schema: {listed}{more}")
    return [definition.name.value for definition in parsed.definitions if isinstance(definition, OperationDefinitionNode) and definition.name]


def _described(error: GraphQLError) -> str:
    where = f"line {error.locations[0].line}, column {error.locations[0].column}: " if error.locations else ""
    return where + error.message
