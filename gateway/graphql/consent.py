"""Sharers' consent: a user's settings under `me`, the mutations that change them, and the one field
that reads a consent (Video.consentedSharers).

The settings are the user's own rows (the private pool, bound to the user in SQL); a change is
appended to the audit (gateway.store.consent), never made in place. Only the user changes their
consent: not an app acting for them, nor any other principal, whatever the policy allows; and only
the creator, a user, is told who consented to be shown to them. What each setting does to what is
served is the store's (migration 0018).
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.auth import PrincipalKind
from gateway.errors import BadUserInput, Forbidden, Unauthenticated
from gateway.graphql.context import Context
from gateway.ingest.events import is_platform_id
from gateway.store import consent
from gateway.store.consent import MAX_SHARERS, Setting

__all__ = ["ConsentMutations", "ConsentSettings", "consented_sharers"]

MAX_VISIBILITIES = 500


@strawberry.type(description="A creator you chose to be shown to as a sharer of their videos.")
class CreatorVisibility:
    creator_id: strawberry.ID
    since: datetime = strawberry.field(description="When you chose it.")


@strawberry.type(description="Your consent settings as they stand now.")
class ConsentSettings:
    user_id: strawberry.Private[str]

    @strawberry.field(
        description="Whether the shares you make keep their channel untold: they count in their video's total and, "
        "in its channel breakdown, in the cell `undisclosed` instead of their channel (shown, as any channel is, only "
        "when k or more people are in it). Shares made before you turned it on or after you turned it off are not affected."
    )
    async def anonymous_shares(self, info: Context) -> bool:
        async with info.context.store.private.acquire() as conn:
            return await consent.anonymous_shares(conn, self.user_id)

    @strawberry.field(description="The creators you may be shown to as a sharer of their videos, most recent first.")
    async def visible_to(self, info: Context, first: int = 100) -> list[CreatorVisibility]:
        if not 1 <= first <= MAX_VISIBILITIES:
            raise BadUserInput(f"`first` must be between 1 and {MAX_VISIBILITIES}")
        async with info.context.store.private.acquire() as conn:
            rows = await consent.visible_to(conn, self.user_id, first)
        return [CreatorVisibility(creator_id=strawberry.ID(row.creator_id), since=row.since) for row in rows]


def consenting_user(info: Context, coordinate: str) -> str:
    """The user who changes their own consent: a signed-in user, never an app acting for one."""
    principal = info.context.principal
    if principal.kind is PrincipalKind.ANONYMOUS:
        raise Unauthenticated("sign in to change your consent")
    if principal.kind is not PrincipalKind.USER or principal.id is None:
        raise Forbidden("consent is changed by the user themselves", field=coordinate)
    return principal.id


async def _change(info: Context, user_id: str, setting: Setting, creator_id: str | None, value: bool) -> ConsentSettings:
    async with info.context.store.private.acquire() as conn:
        await consent.record_change(conn, user_id, setting, creator_id, value, info.context.clock, info.context.principal.kind.value)
    return ConsentSettings(user_id=user_id)


@strawberry.type
class ConsentMutations:
    """The root mutations a user changes their consent with (part of the schema's Mutation)."""

    @strawberry.mutation(
        description="Turn anonymous sharing on or off: while it is on, the shares you make count in their video's "
        "total and, in its channel breakdown, as `undisclosed` rather than in their channel. A change applies to "
        "shares made from then on and moves no earlier one. Setting what is already set records nothing."
    )
    async def set_share_settings(self, info: Context, anonymous: bool) -> ConsentSettings:
        user_id = consenting_user(info, "Mutation.setShareSettings")
        return await _change(info, user_id, Setting.ANONYMOUS_SHARES, None, anonymous)

    @strawberry.mutation(
        description="Choose whether one creator may see you among the sharers of their videos (where the policy "
        "serves that list). Withdrawn, you are left out from the creator's next request. "
        "Setting what is already set records nothing."
    )
    async def set_visible_to(self, info: Context, creator_id: strawberry.ID, visible: bool) -> ConsentSettings:
        user_id = consenting_user(info, "Mutation.setVisibleTo")
        if not is_platform_id(creator_id):
            raise BadUserInput(f"no user could have the id {creator_id!r}")
        if creator_id == user_id:
            raise BadUserInput("you cannot choose to be shown to yourself")
        return await _change(info, user_id, Setting.VISIBLE_TO, str(creator_id), visible)


def creator_asking(info: Context) -> str:
    """Who is told Video.consentedSharers: a signed-in user (the store lists to a video's creator
    only), never an app acting for one, whatever the policy allows. Sharers consent to be shown to
    the creator; an app is not the creator, and one granted the field by a policy would read, for
    every user who authorised it, who shares their videos."""
    principal = info.context.principal
    if principal.kind is not PrincipalKind.USER or principal.id is None:
        raise Forbidden("consented sharers are shown to the creator themselves", field="Video.consentedSharers")
    return principal.id


async def consented_sharers(info: Context, video_id: str, first: int, after: str | None) -> list[strawberry.ID]:
    """Video.consentedSharers: the sharers of the video who chose to be shown to its creator, by id,
    read as the creator asks (the store's function lists them to the video's creator only)."""
    creator_id = creator_asking(info)
    if not 1 <= first <= MAX_SHARERS:
        raise BadUserInput(f"`first` must be between 1 and {MAX_SHARERS}")
    if after is not None and not is_platform_id(after):
        raise BadUserInput("`after` must be a user id this list returned")
    async with info.context.store.reader.acquire() as conn:
        sharers = await consent.consented_sharers(conn, video_id, creator_id, after, first)
    return [strawberry.ID(sharer) for sharer in sharers]
