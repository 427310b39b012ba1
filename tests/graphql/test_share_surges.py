"""`Video.shareSurges` on a small world counted by hand, under the field-test terms (no k, no delay:
every arrival of shares is a release, and every closed hour is seen).

The world's video is shared, one arrival an hour (each at the end of its hour):

    hour   shares   cumulative   rate (per hour since the point before)   running median   surge (3×)?
    H0     2        2            (first point: no rate)
    H1     2        4            2
    H2     2        6            2
    H3     1 + 1    8            2 (two arrivals in the hour: the last counts)
    H4     8        16           8                                        2 (of 2, 2, 2)   8 > 6: ×4
    H7     3        19           1 (3 over three hours)                   2 (of 2, 2, 2, 8) no
    H8     10       29           10                                       2 (of 1, 2, 2, 2, 8)  10 > 6: ×5
    H9     (after the cutoff at H9: not seen)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.auth import ANONYMOUS, Principal, PrincipalKind

from answers import answer, refusals
from harness import Gateway, field_test_privacy

H0 = datetime(2031, 6, 2, 8, tzinfo=UTC)
CREATOR = "creator-surges"
VIDEO = "video-surges"
OWNER = Principal(PrincipalKind.USER, CREATOR)
SURGES = "query($id: ID!) { video(id: $id) { shareSurges { releasedAt factor sharesPerHour } } }"
# Shares (by new sharers) per hour after H0, as the table above; H3's come in two arrivals.
SHARES_BY_HOUR = {0: 2, 1: 2, 2: 2, 4: 8, 7: 3, 8: 10, 9: 40}
NOW = H0 + timedelta(hours=9, minutes=30)
# When the world has been played (every arrival at the end of its hour).
PLAYED = H0 + timedelta(hours=10, minutes=5)
QUIET_VIDEO = "video-surges-quiet"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def served(moment: datetime) -> str:
    """A DateTime as the API writes it."""
    return moment.isoformat()


def share(number: int, when: datetime) -> dict[str, Any]:
    return {
        "event_id": f"surge-share-{number}",
        "type": "share",
        "occurred_at": iso(when),
        "video_id": VIDEO,
        "creator_id": CREATOR,
        "actor_id": f"surge-sharer-{number}",
        "channel": "whatsapp",
    }


def published(video: str) -> dict[str, Any]:
    return {"event_id": f"published-{video}", "type": "video_published", "occurred_at": iso(H0 - timedelta(hours=1)),
            "video_id": video, "creator_id": CREATOR, "actor_id": CREATOR}


@pytest.fixture(scope="module", autouse=True)
async def world(gateway: Gateway) -> None:
    shares = iter(range(1, 1000))
    by_hour = {hour: [share(next(shares), H0 + timedelta(hours=hour, minutes=minute)) for minute in range(count)] for hour, count in SHARES_BY_HOUR.items()}
    # Arrivals in the order they happen (a release follows arrival): each hour's at its end, H3's two
    # ten minutes apart.
    with gateway.clock.at(PLAYED):
        await gateway.play([published(VIDEO), published(QUIET_VIDEO), *by_hour[0], *by_hour[1], *by_hour[2]])
        for minute in (10, 40):
            with gateway.clock.at(H0 + timedelta(hours=3, minutes=minute)):
                await gateway.ingest([share(next(shares), H0 + timedelta(hours=3, minutes=minute - 5))])
        await gateway.play([event for hour in (4, 7, 8, 9) for event in by_hour[hour]])


async def test_share_surges_are_the_hours_over_three_times_the_running_median(gateway: Gateway) -> None:
    with gateway.clock.at(NOW):
        response = await gateway.graphql(SURGES, {"id": VIDEO}, principal=OWNER)

    assert answer(response) == {
        "video": {
            "shareSurges": [
                {"releasedAt": served(H0 + timedelta(hours=4)), "factor": 4.0, "sharesPerHour": 8.0},
                {"releasedAt": served(H0 + timedelta(hours=8)), "factor": 5.0, "sharesPerHour": 10.0},
            ]
        }
    }
    assert response.json()["extensions"]["privacy"] == field_test_privacy("HOUR")


async def test_share_surges_agree_with_the_share_timeline(gateway: Gateway) -> None:
    query = """query($id: ID!, $from: DateTime!) { video(id: $id) {
        shareTimeline(granularity: HOUR, from: $from) { buckets { start count } } } }"""
    with gateway.clock.at(NOW):
        data = answer(await gateway.graphql(query, {"id": VIDEO, "from": iso(H0)}, principal=OWNER))

    counts = {bucket["start"]: bucket["count"] for bucket in data["video"]["shareTimeline"]["buckets"] if bucket["count"]}
    assert counts == {served(H0 + timedelta(hours=hour)): count for hour, count in {0: 2, 1: 2, 2: 2, 3: 2, 4: 8, 7: 3, 8: 10}.items()}


async def test_share_surges_grow_with_the_releases_seen(gateway: Gateway) -> None:
    # At H9 (cutoff H9) the H8 burst is not seen yet; at H10 H9's 40 shares are (rate 40 over a median
    # of 2 of 1, 2, 2, 2, 8, 10).
    with gateway.clock.at(H0 + timedelta(hours=8, minutes=59)):
        earlier = answer(await gateway.graphql(SURGES, {"id": VIDEO}, principal=OWNER))
    with gateway.clock.at(H0 + timedelta(hours=10, minutes=1)):
        later = answer(await gateway.graphql(SURGES, {"id": VIDEO}, principal=OWNER))

    assert [surge["releasedAt"] for surge in earlier["video"]["shareSurges"]] == [served(H0 + timedelta(hours=4))]
    assert later["video"]["shareSurges"][-1] == {"releasedAt": served(H0 + timedelta(hours=9)), "factor": 20.0, "sharesPerHour": 40.0}


async def test_share_surges_of_an_app_are_at_its_floor(gateway: Gateway) -> None:
    # An app's floor is a day: every share of the video falls in one day's bucket, a single point.
    app = Principal(PrincipalKind.APP, CREATOR, frozenset({"insights"}), app_id="app-surges")
    with gateway.clock.at(NOW + timedelta(days=1)):
        assert answer(await gateway.graphql(SURGES, {"id": VIDEO}, principal=app)) == {"video": {"shareSurges": []}}


async def test_share_surges_of_a_video_without_shares_are_empty(gateway: Gateway) -> None:
    with gateway.clock.at(NOW):
        assert answer(await gateway.graphql(SURGES, {"id": QUIET_VIDEO}, principal=OWNER)) == {"video": {"shareSurges": []}}


async def test_share_surges_are_refused_at_run_time_to_another_user(gateway: Gateway) -> None:
    with gateway.clock.at(NOW):
        response = await gateway.graphql(SURGES, {"id": VIDEO}, principal=Principal(PrincipalKind.USER, "creator-other"))

    assert refusals(response) == [("FORBIDDEN", "Video.shareSurges", ["video", "shareSurges"])]
    assert response.json()["data"] == {"video": {"shareSurges": None}}


async def test_share_surges_are_refused_to_anonymous_before_any_resolver_runs(gateway: Gateway) -> None:
    response = await gateway.graphql(SURGES, {"id": VIDEO}, principal=ANONYMOUS)

    assert response.json()["data"] is None
    assert ("FORBIDDEN", "Video.shareSurges", ["video", "shareSurges"]) in refusals(response)
