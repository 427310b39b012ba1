"""The two owner-facing figures that are not counts of people: the completion rate and the average
watch time, played as twin worlds with the same people, one of whom watched differently.

A red team of 6,552 twin requests over HTTP found both leaking. `completionRate` divided the
completed views of a release by its views with no threshold, so among five viewers it was 0.0 or
0.2 as one person finished the video or not. `averageWatchSeconds` averaged an unbounded sum, so
one viewer who left the video playing for ten hours moved it by hours. Now a rate is served only
when k or more viewers watched a view to the end and k or more left one unfinished (the two cells
suppressed together, as a breakdown's with its complement), and each viewer's watch time counts
up to three minutes in a sum served in steps of k viewers at that cap (gateway.privacy.watch_time).
An erased viewer leaves both figures as a viewer who never was would (gateway.store.erasure).

Times are fixed in 2031, as in test_release_history.py: the clock is the test's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.attacks.world import World, app_for, ask, battery, differences, same_answers

from gateway.auth import ANONYMOUS, Principal, PrincipalKind
from harness import Gateway

DAY0 = datetime(2031, 4, 8, tzinfo=UTC)
NOW = DAY0 + timedelta(hours=12, minutes=30)
TEN_HOURS = 10 * 3600 * 1000
# What an app may ask without noise (its breakdown cells carry draws of each world's own).
APP_QUESTIONS = """query($video: ID!) { video(id: $video) {
    stats { views likes comments shares likeRatio engagementRate averageWatchSeconds completionRate }
    viewTimeline(granularity: DAY, from: "2031-04-01T00:00:00Z") { buckets { start count suppressed } } } }"""
# The public's counts, and the owner's figures asked for by someone who may not have them.
PUBLIC_QUESTIONS = "query($video: ID!) { video(id: $video) { stats { views likes comments shares } } }"
REFUSED_QUESTIONS = "query($video: ID!) { video(id: $video) { stats { views averageWatchSeconds completionRate } } }"
# Viewers the owner (k = 5) sees in one release, and the app (k = 50) too.
AUDIENCES = [pytest.param(5, id="five-viewers"), pytest.param(52, id="fifty-two-viewers")]


def audience(name: str, viewers: int, *, victim_watch_ms: int = 30_000, victim_completed: bool = False, others_watch_ms: int = 30_000) -> World:
    """`viewers` people who each watched the video once, for `others_watch_ms`, without finishing it,
    two days ago; the victim, one of them, watched `victim_watch_ms` and finished it or not."""
    world = World(name)
    world.publish(DAY0 - timedelta(days=3))
    start = DAY0 - timedelta(days=2) + timedelta(hours=10)
    world.view(world.actor("victim"), start, region="DE", age_band="25-34", watch_ms=victim_watch_ms, completed=victim_completed)
    for i in range(viewers - 1):
        world.view(world.actor(f"viewer{i}"), start + timedelta(seconds=10 * (i + 1)), region="DE", age_band="25-34", watch_ms=others_watch_ms)
    return world


async def answers_of(gateway: Gateway, world: World) -> dict[str, dict[str, Any]]:
    """What the owner (everything), the owner's app (everything it is served without noise) and
    anonymous (public counts; the owner's figures, refused) are told about the world's video."""
    variables = {"video": world.video(), "creator": world.creator}
    owner = await ask(gateway, battery(DAY0 - timedelta(days=4), DAY0), variables, world.owner)
    app = await ask(gateway, APP_QUESTIONS, {"video": world.video()}, app_for(world.creator, "app-watch-metrics"))
    public = await ask(gateway, PUBLIC_QUESTIONS, {"video": world.video()}, ANONYMOUS)
    refused = await gateway.graphql(REFUSED_QUESTIONS, {"video": world.video()}, principal=ANONYMOUS)
    return {"owner": owner, "app": app, "public": public, "refused": {"status": refused.status_code, **refused.json()}}


async def assert_twins_answer_alike(gateway: Gateway, worlds: list[World]) -> dict[str, dict[str, Any]]:
    with gateway.clock.at(NOW):
        for world in worlds:
            await gateway.play(world.take())
        told = [await answers_of(gateway, world) for world in worlds]
    for asker in told[0]:
        pair = [(world, answers[asker]) for world, answers in zip(worlds, told, strict=True)]
        assert same_answers(pair), (asker, differences(*pair))
    return told[0]


@pytest.mark.parametrize("viewers", AUDIENCES)
async def test_completion_rate_does_not_tell_whether_one_viewer_finished_the_video(gateway: Gateway, viewers: int) -> None:
    """Red team: five viewers, one of whom finished the video or not, gave a completion rate of 0.2
    or 0.0. Now the rate is withheld unless k or more viewers finished a view and k or more did
    not: owner, app and anonymous are told the same in both worlds, and the owner's answer counts
    the withheld rate among its suppressed cells."""
    worlds = [audience(f"completion-{viewers}-{finished}", viewers, victim_completed=finished) for finished in (True, False)]

    told = await assert_twins_answer_alike(gateway, worlds)

    assert told["owner"]["data"]["video"]["stats"]["views"] == viewers
    assert told["owner"]["data"]["video"]["stats"]["completionRate"] is None
    assert told["app"]["data"]["video"]["stats"]["completionRate"] is None
    assert told["refused"]["data"] is None


@pytest.mark.parametrize("viewers", AUDIENCES)
async def test_average_watch_time_does_not_tell_that_one_viewer_watched_for_ten_hours(gateway: Gateway, viewers: int) -> None:
    """Red team: one viewer leaving the video playing for ten hours moved the owner's average watch
    time by hours. Now their ten hours count three minutes, and the sum is served in steps of five
    viewers at three minutes (15 minutes, over the views): owner, app and anonymous are told the
    same whether the victim watched 30 seconds or ten hours."""
    worlds = [audience(f"watch-{viewers}-{watched}", viewers, victim_watch_ms=watched) for watched in (30_000, TEN_HOURS)]

    told = await assert_twins_answer_alike(gateway, worlds)

    # Five viewers: 150 s or 270 s capped, both nearer 0 than 900 s. Fifty-two: 1,560 s or 1,710 s,
    # both nearest 1,800 s: 34.6 s a view, where the true average is 30 s (or 721 s).
    expected = {5: 0.0, 52: 1800 / 52}[viewers]
    assert told["owner"]["data"]["video"]["stats"]["averageWatchSeconds"] == pytest.approx(expected)
    assert told["app"]["data"]["video"]["stats"]["averageWatchSeconds"] is None
    assert told["refused"]["data"] is None


async def test_both_figures_are_served_once_k_people_stand_behind_each(gateway: Gateway) -> None:
    """Hand-counted: 30 viewers finished the video after 60 s and 30 left after 20 s. The owner
    (k = 5) is served the completion rate, 0.5, and the average watch time as the capped sum
    (2,400 s) to the nearest 900 s (2,700 s) over 60 views: 45 s. The app (k = 50) is served
    neither: fewer than 50 people on each side, and no watch time where counts carry noise."""
    world = World("both-served")
    world.publish(DAY0 - timedelta(days=3))
    start = DAY0 - timedelta(days=2) + timedelta(hours=10)
    for i in range(30):
        world.view(world.actor(f"finisher{i}"), start + timedelta(seconds=10 * i), watch_ms=60_000, completed=True)
        world.view(world.actor(f"leaver{i}"), start + timedelta(seconds=10 * i + 5), watch_ms=20_000)
    query = "query($video: ID!) { video(id: $video) { stats { views averageWatchSeconds completionRate } } }"
    with gateway.clock.at(NOW):
        await gateway.play(world.take())
        owner = await ask(gateway, query, {"video": world.video()}, world.owner)
        app = await ask(gateway, query, {"video": world.video()}, app_for(world.creator, "app-both-served"))

    assert owner["data"]["video"]["stats"] == {"views": 60, "averageWatchSeconds": 45.0, "completionRate": 0.5}
    assert owner["extensions"]["privacy"]["suppressedCells"] == 0
    assert app["data"]["video"]["stats"] == {"views": 60, "averageWatchSeconds": None, "completionRate": None}
    assert app["extensions"]["privacy"]["suppressedCells"] == 1
    assert app["extensions"]["privacy"]["epsilonSpent"] == 0  # nothing drawn for a withheld rate


async def test_one_person_moves_the_average_watch_time_by_one_step_at_most(gateway: Gateway) -> None:
    """What no rounding can avoid, bounded: twenty viewers watched 65 s each, so the capped sum
    (1,300 s) lies within one cap of a half-step (1,350 s), where one more person's watch time
    tips it. Whether the victim watched 10 s or ten hours, the owner is told the nearest multiple
    of 900 s over the 21 views: 900 s or 1,800 s, one step apart, as a release of 17 shares is one
    share from 18; never the ten hours."""
    worlds = [audience(f"one-step-{watched}", 21, victim_watch_ms=watched, others_watch_ms=65_000) for watched in (10_000, TEN_HOURS)]
    query = "query($video: ID!) { video(id: $video) { stats { views averageWatchSeconds } } }"
    with gateway.clock.at(NOW):
        served = []
        for world in worlds:
            await gateway.play(world.take())
            served.append((await ask(gateway, query, {"video": world.video()}, world.owner))["data"]["video"]["stats"])

    # 1,310 s is nearest 900 s; 1,480 s (ten hours capped at 180 s) is nearest 1,800 s.
    assert served == [{"views": 21, "averageWatchSeconds": pytest.approx(900 / 21)}, {"views": 21, "averageWatchSeconds": pytest.approx(1800 / 21)}]


ERASE = "mutation($user: ID!) { eraseUser(userId: $user) { repeated eventsErased } }"
COMPLIANCE = Principal(PrincipalKind.COMPLIANCE, "dpo")


def before_the_erasure(world: World, counted: str, *, unreleased: bool) -> None:
    """Video 0: `counted` is one of 21 viewers released together (they left it playing for ten hours
    and finished it), then views it again without finishing. Video 1: three viewers, no release;
    `unreleased`: the victim views it too, for ten hours to the end, and again without finishing."""
    for index in (0, 1):
        world.publish(DAY0 - timedelta(days=3), index)
    first = DAY0 - timedelta(days=2) + timedelta(hours=10)
    world.view(world.actor(counted), first, watch_ms=TEN_HOURS, completed=True)
    for i in range(10):
        world.view(world.actor(f"finisher{i}"), first + timedelta(seconds=10 * (i + 1)), watch_ms=60_000, completed=True)
        world.view(world.actor(f"leaver{i}"), first + timedelta(seconds=10 * (i + 1) + 5), watch_ms=20_000)
    second = first + timedelta(hours=1)
    world.view(world.actor(counted), second, watch_ms=30_000)
    if unreleased:
        world.view(world.actor("victim"), second, 1, watch_ms=TEN_HOURS, completed=True)
        world.view(world.actor("victim"), second + timedelta(seconds=5), 1, watch_ms=20_000)
    for i in range(3):
        world.view(world.actor(f"early{i}"), second + timedelta(seconds=10 * (i + 1)), 1, watch_ms=70_000)


def after_the_erasure(world: World) -> None:
    """The victim's id views both videos again, to the end, with others: each video makes a release."""
    third = DAY0 - timedelta(days=2) + timedelta(hours=12)
    world.view(world.actor("victim"), third, watch_ms=120_000, completed=True)
    world.view(world.actor("victim"), third, 1, watch_ms=150_000, completed=True)
    for i in range(5):
        world.view(world.actor(f"late{i}"), third + timedelta(seconds=10 * (i + 1)), watch_ms=60_000, completed=i < 3)
    for i in range(4):
        world.view(world.actor(f"late-finisher{i}"), third + timedelta(seconds=10 * (i + 1)), 1, watch_ms=170_000, completed=True)
    for i in range(3):
        world.view(world.actor(f"late-leaver{i}"), third + timedelta(seconds=10 * (i + 1) + 5), 1, watch_ms=70_000)


async def test_an_erased_viewer_and_one_who_never_was_are_served_the_same_watch_time_and_completion_rate(gateway: Gateway) -> None:
    """Twin worlds. In `erased`, the victim is counted in video 0's release (ten hours, finished) and
    views it again; views video 1, which has no release, for ten hours to the end and again; is
    erased (compliance's eraseUser); and views both again. In `never`, a stand-in does what was
    released of the victim (it stays counted, anonymously), nobody does what was not, and the
    victim's id, never seen before, does what the victim does after the erasure. The owner is told
    the same of both videos in both worlds. The sums sit within one cap of a half-step (900 s):
    keeping the erased viewer's three minutes on video 1, or dropping the released ones on video
    0, would each move an average watch time by a step."""
    erased, never = World("erased-viewer"), World("never-viewer")
    before_the_erasure(erased, "victim", unreleased=True)
    before_the_erasure(never, "stand-in", unreleased=False)
    with gateway.clock.at(NOW):
        for world in (erased, never):
            await gateway.play(world.take())
        erasure = await ask(gateway, ERASE, {"user": erased.actor("victim")}, COMPLIANCE)
        for world in (erased, never):
            after_the_erasure(world)
            await gateway.play(world.take())
        told = [
            [await ask(gateway, battery(DAY0 - timedelta(days=4), DAY0), {"video": world.video(index), "creator": world.creator}, world.owner)
             for index in (0, 1)]
            for world in (erased, never)
        ]

    assert erasure["data"]["eraseUser"] == {"repeated": False, "eventsErased": 4}
    for index in (0, 1):
        pair = [(world, answers[index]) for world, answers in zip((erased, never), told, strict=True)]
        assert same_answers(pair), (index, differences(*pair))
    # Video 0: 980 s capped in the release, 1,400 s now: two steps, over 28 views; 15 of them finished.
    # Video 1: 1,250 s capped: one step, over 11 views; 5 of them finished, by 5 viewers, 6 did not.
    served = [answers["data"]["video"]["stats"] for answers in told[1]]
    assert [(stats["views"], stats["averageWatchSeconds"], stats["completionRate"]) for stats in served] == [
        (28, pytest.approx(1800 / 28), pytest.approx(15 / 28)),
        (11, pytest.approx(900 / 11), pytest.approx(5 / 11)),
    ]
