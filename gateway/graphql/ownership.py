"""Owner-only fields, enforced where every field is executed, from the policy's verdict.

The policy marks a field `owner_only` when the principal may read it on their
own data only (a creator's insights). The policy guard gathers those
coordinates from the decision; the executor (gateway.graphql.execution) asks
`refusal` before resolving any of them. The object the field is read from says
whose data it is (`owner_id`), and the principal must be that owner: the user,
or an app acting for them. An object that does not say is refused, so a field
added later is never served by forgetting a check.
"""

from __future__ import annotations

from typing import Any

from gateway.auth import Principal, PrincipalKind
from gateway.errors import Forbidden

__all__ = ["is_owner", "refusal"]


def is_owner(principal: Principal, owner_id: object) -> bool:
    """The principal is `owner_id`, or an app acting for them."""
    return principal.kind in (PrincipalKind.USER, PrincipalKind.APP) and isinstance(owner_id, str) and principal.id == owner_id


def refusal(principal: Principal, coordinate: str, source: Any) -> Forbidden | None:
    """Why `coordinate`, read from `source`, may not be served to `principal` (None: it may)."""
    if is_owner(principal, getattr(source, "owner_id", None)):
        return None
    return Forbidden(f"{coordinate} is visible to the creator only", field=coordinate)
