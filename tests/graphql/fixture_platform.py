"""The hand-built platform the GraphQL tests ingest: two creators, three videos and eight named people, March 2025.

Every expected number in test_fields.py is counted by hand from EVENTS below. Actor ids are
distinctive ("viewer-7f3a"), so a substring search of a response body for one is meaningful.
Times are UTC; 2025-03-03 is a Monday, so it starts an ISO week.
"""

from __future__ import annotations

import itertools
from typing import Any

__all__ = [
    "ACTORS",
    "ADA",
    "ADA_FIRST",
    "ADA_SECOND",
    "BO",
    "BO_ONLY",
    "COMMENTER",
    "EVENTS",
    "FOLLOWER",
    "LIKER",
    "SHARER",
    "SHARER_NO_REGION",
    "UNFOLLOWER",
    "VIDEO_OWNER",
    "VIEWER",
    "VIEWER_FR",
    "at",
]

ADA = "creator-ada"
BO = "creator-bo"
ADA_FIRST = "video-ada-first"
ADA_SECOND = "video-ada-second"
BO_ONLY = "video-bo-only"
VIDEO_OWNER = {ADA_FIRST: ADA, ADA_SECOND: ADA, BO_ONLY: BO}

VIEWER = "viewer-7f3a"  # watches everything, unlikes ADA_FIRST, follows both creators
VIEWER_FR = "viewer-9c1e"  # views from FR without an age band; likes, comments and shares ADA_FIRST
LIKER = "liker-4b2d"  # likes ADA_FIRST; likes BO_ONLY and takes it back
COMMENTER = "commenter-e81c"
SHARER = "sharer-5d7b"  # shares on five channels of the three videos
SHARER_NO_REGION = "sharer-a02f"  # the one view without a region
FOLLOWER = "follower-3e9d"
UNFOLLOWER = "follower-b6c4"  # follows ADA, then unfollows
ACTORS = (VIEWER, VIEWER_FR, LIKER, COMMENTER, SHARER, SHARER_NO_REGION, FOLLOWER, UNFOLLOWER)

_event_numbers = itertools.count(1)


def at(day: int, hour: int, minute: int = 0) -> str:
    return f"2025-03-{day:02d}T{hour:02d}:{minute:02d}:00Z"


def _event(type_: str, when: str, actor: str, creator: str, video: str | None, **fields: Any) -> dict[str, Any]:
    event = {"event_id": f"evt-{next(_event_numbers):03d}", "type": type_, "occurred_at": when,
             "creator_id": creator, "actor_id": actor, **fields}
    if video is not None:
        event["video_id"] = video
    return {key: value for key, value in event.items() if value is not None}


def published(video: str, when: str) -> dict[str, Any]:
    return _event("video_published", when, VIDEO_OWNER[video], VIDEO_OWNER[video], video)


def view(video: str, actor: str, when: str, watch_ms: int, *, completed: bool = False,
         region: str | None = None, age_band: str | None = None) -> dict[str, Any]:
    return _event("view", when, actor, VIDEO_OWNER[video], video, watch_ms=watch_ms, completed=completed,
                  region=region, age_band=age_band)


def on_video(type_: str, video: str, actor: str, when: str, **fields: Any) -> dict[str, Any]:
    return _event(type_, when, actor, VIDEO_OWNER[video], video, **fields)


def on_creator(type_: str, creator: str, actor: str, when: str) -> dict[str, Any]:
    return _event(type_, when, actor, creator, None)


EVENTS = [
    # ADA_FIRST: 7 views by 6 people, 126 s watched, 4 completed; 3 likes - 1 unlike; 3 comments;
    # 5 shares (whatsapp 3, copy_link 1, email 1).
    published(ADA_FIRST, at(3, 10)),
    view(ADA_FIRST, VIEWER, at(3, 10, 15), 30_000, completed=True, region="DE", age_band="18-24"),
    on_video("like", ADA_FIRST, VIEWER, at(3, 10, 20)),
    view(ADA_FIRST, VIEWER_FR, at(3, 10, 40), 20_000, completed=True, region="FR"),
    on_video("like", ADA_FIRST, VIEWER_FR, at(3, 10, 45)),
    on_video("comment", ADA_FIRST, VIEWER_FR, at(3, 10, 50), text="first!"),
    on_video("share", ADA_FIRST, VIEWER_FR, at(3, 10, 55), channel="whatsapp", region="FR"),
    view(ADA_FIRST, VIEWER, at(3, 11, 5), 10_000, region="DE", age_band="18-24"),
    view(ADA_FIRST, LIKER, at(4, 9), 5_000, region="DE", age_band="35-44"),
    on_video("like", ADA_FIRST, LIKER, at(4, 9, 10)),
    view(ADA_FIRST, SHARER, at(4, 9, 30), 15_000, completed=True, region="DE", age_band="25-34"),
    on_video("share", ADA_FIRST, SHARER, at(4, 9, 40), channel="whatsapp", region="DE"),
    on_video("share", ADA_FIRST, SHARER, at(4, 9, 45), channel="copy_link", region="DE"),
    view(ADA_FIRST, COMMENTER, at(4, 12), 40_000, completed=True, region="US", age_band="18-24"),
    on_video("comment", ADA_FIRST, COMMENTER, at(4, 12, 5), text="nice"),
    on_video("comment", ADA_FIRST, COMMENTER, at(4, 12, 30), text="again"),
    on_video("unlike", ADA_FIRST, VIEWER, at(5, 8)),
    # A share from a region nobody viewed from: it must not become an audience cell.
    on_video("share", ADA_FIRST, SHARER, at(6, 18, 20), channel="whatsapp", region="IT"),
    view(ADA_FIRST, SHARER_NO_REGION, at(10, 20), 6_000, age_band="45-54"),
    on_video("share", ADA_FIRST, SHARER_NO_REGION, at(10, 20, 5), channel="email"),
    # ADA_SECOND: 2 views, 10 s watched, none completed; 1 like; 4 shares (sms 3, direct_message 1).
    published(ADA_SECOND, at(12, 8)),
    view(ADA_SECOND, VIEWER, at(12, 9), 8_000, region="DE", age_band="18-24"),
    on_video("like", ADA_SECOND, VIEWER, at(12, 9, 5)),
    view(ADA_SECOND, VIEWER_FR, at(13, 10), 2_000, region="FR"),
    on_video("share", ADA_SECOND, SHARER, at(13, 11), channel="sms"),
    on_video("share", ADA_SECOND, SHARER, at(13, 11, 30), channel="sms"),
    on_video("share", ADA_SECOND, SHARER, at(14, 7), channel="direct_message"),
    on_video("share", ADA_SECOND, SHARER_NO_REGION, at(14, 8), channel="sms"),
    # BO_ONLY: 1 view (12 s, completed); a like taken back; 1 comment; 1 share (x).
    published(BO_ONLY, at(5, 15)),
    view(BO_ONLY, VIEWER, at(5, 16), 12_000, completed=True, region="DE", age_band="18-24"),
    on_video("like", BO_ONLY, LIKER, at(5, 16, 10)),
    on_video("comment", BO_ONLY, COMMENTER, at(5, 16, 30), text="hello"),
    on_video("share", BO_ONLY, SHARER, at(5, 16, 45), channel="x"),
    on_video("unlike", BO_ONLY, LIKER, at(5, 17)),
    # Follows: ADA +2 on the 4th, -1 on the 11th, +1 on the 12th (net 2); BO +1 on the 5th and the 6th.
    on_creator("follow", ADA, FOLLOWER, at(4, 10)),
    on_creator("follow", ADA, UNFOLLOWER, at(4, 11)),
    on_creator("follow", BO, VIEWER, at(5, 16, 20)),
    on_creator("follow", BO, SHARER, at(6, 10)),
    on_creator("unfollow", ADA, UNFOLLOWER, at(11, 9)),
    on_creator("follow", ADA, VIEWER, at(12, 10)),
]
