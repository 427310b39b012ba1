"""`Mutation.eraseUser`: compliance erases a person at their request (gateway.store.erasure)."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Annotated

import strawberry

from gateway.auth import PrincipalKind
from gateway.errors import BadUserInput, Forbidden
from gateway.graphql.context import Context
from gateway.ingest.events import is_platform_id
from gateway.store.erasure import erase_person, subject_key

__all__ = ["ErasureReceipt", "erase_user"]

MAX_REASON = 500


@strawberry.type(description="That a person was erased: when, by whom, and what this request removed. The record keeps no more than when and by whom.")
class ErasureReceipt:
    erasure_id: strawberry.ID
    erased_at: datetime
    erased_by: str = strawberry.field(description="The compliance principal (or operator) who asked.")
    repeated: bool = strawberry.field(
        description="True when nothing of the person was left to erase: the receipt is the earlier erasure's, and nothing was recorded anew."
    )
    events_erased: int = strawberry.field(description="The person's raw events removed by this request.")
    app_grants_revoked: int = strawberry.field(description="Apps the person had authorized whose grants this request revoked.")


def check_reason(reason: str | None, user_id: str) -> str | None:
    """A reason is for the record, which must not say whose erasure it was."""
    if reason is None or not reason.strip():
        return None
    if len(reason) > MAX_REASON:
        raise BadUserInput(f"`reason` must be at most {MAX_REASON} characters")
    if any(unicodedata.category(char) in ("Cc", "Cf") for char in reason):
        raise BadUserInput("`reason` must be text of one line, with no control or invisible formatting characters")
    # The id as a word of its own, in any case and any compatible form: "u1" names nobody in
    # "request u12"; "U1" and the full-width "ｕ１" name u1.
    folded = unicodedata.normalize("NFKC", reason).casefold()
    if re.search(rf"(?<![^\W_]){re.escape(user_id.casefold())}(?![^\W_])", folded):
        raise BadUserInput("`reason` must not name the person: the record keeps that an erasure happened, not whose")
    return reason.strip()


async def erase_user(
    info: Context,
    user_id: Annotated[strawberry.ID, strawberry.argument(description="The person to erase.")],
    reason: Annotated[str | None, strawberry.argument(description="Why, for the record; it must not name the person.")] = None,
) -> ErasureReceipt | None:
    # The policy decides this field; the check here keeps erasure closed even if a policy edit opened it.
    principal = info.context.principal
    if principal.kind is not PrincipalKind.COMPLIANCE or principal.id is None:
        raise Forbidden("erasure is for compliance", field="Mutation.eraseUser")
    if not is_platform_id(user_id):
        raise BadUserInput(f"{user_id[:40]!r}{'…' if len(user_id) > 40 else ''} is not a user id")
    person = str(user_id)
    why = check_reason(reason, person)
    if not info.context.erasure_key:
        raise RuntimeError("no erasure key: the app derives one from GATEWAY_SECRET")
    async with info.context.store.eraser.acquire() as conn:
        receipt = await erase_person(
            conn, person, key=subject_key(info.context.erasure_key, person), erased_by=f"compliance:{principal.id}", reason=why
        )
    info.context.revoked()
    return ErasureReceipt(
        erasure_id=strawberry.ID(receipt.erasure_id),
        erased_at=receipt.erased_at,
        erased_by=receipt.erased_by,
        repeated=receipt.repeated,
        events_erased=receipt.events,
        app_grants_revoked=receipt.app_grants,
    )
