"""Red team of the kept derivations (a breakdown's suppressed cells and a video's share surges kept
by the release reader per release and k, or per cutoff) and of the kept whole answers of issue 15's
insights: whatever one principal asked before, every principal's answer is the one a gateway that
kept nothing would give.

The oracle is the same gateway with what it keeps let go (`forget_kept_answers`): an answer made
from another principal's kept cells (another k, noised or exact), from a revision whose k has been
reloaded away, from a history a backfill has since moved, or kept across a cutoff, would differ
from it. Times are fixed in 2033: the clock is the test's.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.attacks.world import World, app_for, iso

from gateway.auth import ANONYMOUS, Principal, PrincipalKind
from harness import Gateway, TestClock, policies_with, running_gateway

DAY0 = datetime(2033, 3, 7, tzinfo=UTC)
NOW = DAY0 + timedelta(hours=12, minutes=30)
DURATION_MS = 60_000
REGIONS = ("DE", "FR", "ES", "IT")
CHANNELS = ("whatsapp", "x", "email")


def questions(start: datetime, end: datetime) -> list[str]:
    """Each field on its own, so that each principal is answered what it may ask (and refused the rest)."""
    cells = "{ buckets { key count suppressed } }"
    window = f'from: "{iso(start)}", to: "{iso(end)}"'
    video = [
        "stats { views comments shares }",
        "stats { reach completionRate averageWatchSeconds }",
        f"shareChannels {cells}",
        f"audience(dimension: REGION) {cells}",
        f"audience(dimension: AGE_BAND) {cells}",
        "retention { points { percent share suppressed } }",
        f"commentSentiment {cells}",
        "shareSurges { releasedAt factor sharesPerHour }",
        *(f"shareTimeline(granularity: {g}, {window}) {{ buckets {{ start count }} }}" for g in ("HOUR", "DAY", "WEEK", "MONTH")),
        *(f"viewTimeline(granularity: {g}, {window}) {{ buckets {{ start count }} }}" for g in ("HOUR", "DAY")),
    ]
    creator = [
        "totals { views shares followers }",
        "totals { reach }",
        "audienceActivity { cells { dayOfWeek hour viewers suppressed } }",
        'audienceActivity(timeZone: "Asia/Tokyo") { cells { dayOfWeek hour viewers suppressed } }',
        *(f"followerGrowth(granularity: {g}, {window}) {{ buckets {{ start count }} }}" for g in ("HOUR", "DAY")),
    ]
    return [
        *(f"query($video: ID!) {{ video(id: $video) {{ {field} }} }}" for field in video),
        *(f"query($creator: ID!) {{ creator(id: $creator) {{ {field} }} }}" for field in creator),
    ]


def audience(world: World, people: int, start: datetime, *, prefix: str = "p") -> None:
    """`people` viewers spread over regions, hours and depths, a share (some anonymous) and a
    comment from most, a follow from each third."""
    for n in range(people):
        person = world.actor(f"{prefix}{n}")
        at = start + timedelta(hours=n % 7, minutes=n)
        world.view(person, at, region=REGIONS[n % len(REGIONS)], age_band="25-34" if n % 3 else "35-44",
                   watch_ms=(n % 10 + 1) * 6_000, completed=n % 4 == 0)
        if n % 5:
            world.share(person, at + timedelta(seconds=30), channel=CHANNELS[n % len(CHANNELS)], anonymous=n % 7 == 0)
        if n % 6:
            world.comment(person, at + timedelta(seconds=40), "Love it, great work!" if n % 2 else "This is awful.")
        if n % 3 == 0:
            world.follow(person, at + timedelta(seconds=50))


def principals(world: World, other: World) -> dict[str, Principal]:
    return {
        "owner": world.owner,
        "public": ANONYMOUS,
        "other creator": other.owner,
        "app stats": app_for(world.creator, "app-kept-stats", frozenset({"stats"})),
        "app insights": app_for(world.creator, "app-kept-insights", frozenset({"stats", "insights"})),
        "other user": Principal(PrincipalKind.USER, "kept-derivations-bystander"),
    }


def served(body: dict[str, Any]) -> str:
    """What an answer tells, without the budget it leaves (spent by each answer an app is given)."""
    privacy = (body.get("extensions") or {}).get("privacy") or {}
    told = {"data": body.get("data"), "errors": sorted(error.get("message") for error in body.get("errors") or []),
            "privacy": {key: value for key, value in privacy.items() if key not in ("budgetLeft", "epsilonSpent")}}
    return json.dumps(told, sort_keys=True)


async def everyone(gateway: Gateway, world: World, other: World, *, anew: bool = False) -> dict[str, str]:
    """Every principal's answer to every question, by "<principal> <question> <turn>". Kept: each
    asks twice, in turns, so the second answers are made of what every first one left kept. Anew
    (`anew`): once, with nothing kept before any request, so no answer is made of another's."""
    variables = {"video": world.video(), "creator": world.creator}
    answers = {}
    for turn in range(1 if anew else 2):
        for number, query in enumerate(questions(DAY0 - timedelta(days=5), gateway.clock())):
            for name, principal in principals(world, other).items():
                if anew:
                    gateway.forget_kept_answers()
                asked = {name: value for name, value in variables.items() if f"${name}" in query}
                response = await gateway.graphql(query, asked, principal=principal)
                assert response.status_code == 200, response.text
                answers[f"{name} {number} {turn}"] = served(response.json())
    return answers


async def assert_as_if_nothing_kept(gateway: Gateway, world: World, other: World, moment: str) -> None:
    warm = await everyone(gateway, world, other)
    fresh = await everyone(gateway, world, other, anew=True)
    for name, answer in warm.items():
        made_anew = fresh[name.rsplit(" ", 1)[0] + " 0"]
        assert answer == made_anew, (moment, name, answer, made_anew)


@pytest.fixture
async def reloading(database_url: str, tmp_path: Path) -> Any:
    policies = policies_with(tmp_path / "policies", {"epsilon_budget_per_day": None})
    async with running_gateway(database_url, policy_dir=policies, clock=TestClock(NOW)) as started:
        yield started, policies


def set_k(policies: Path, kind: str, k: int) -> None:
    data_file = policies / "data.json"
    data = json.loads(data_file.read_text())
    data["obligations"]["principals"][kind]["k_threshold"] = k
    data_file.write_text(json.dumps(data, indent=2))


async def test_no_principal_is_served_what_another_question_left_kept(reloading: tuple[Gateway, Path]) -> None:
    gateway, policies = reloading
    world, other = World("kept-derived"), World("kept-bystander")
    world.publish(DAY0 - timedelta(days=4))
    world.events[-1]["duration_ms"] = DURATION_MS
    other.publish(DAY0 - timedelta(days=4))
    audience(world, 70, DAY0 - timedelta(days=3))
    audience(world, 13, DAY0 - timedelta(days=2), prefix="q")
    audience(other, 9, DAY0 - timedelta(days=3))
    await gateway.play(world.take() + other.take())
    await assert_as_if_nothing_kept(gateway, world, other, "played")

    # A reload that moves k: every kept derivation is of the old k.
    for k in (3, 8):
        set_k(policies, "user", k)
        set_k(policies, "anonymous", k)
        set_k(policies, "app", k * 4)
        await gateway.policy_in_force()
        await assert_as_if_nothing_kept(gateway, world, other, f"k={k}")

    # Live arrivals within the lateness window make releases after the cutoff: nothing moves until
    # the cutoff passes them, and then as a gateway that kept nothing says.
    audience(world, 11, NOW - timedelta(minutes=20), prefix="late")
    await gateway.ingest(world.take())
    await assert_as_if_nothing_kept(gateway, world, other, "arrived")
    for hours in (1, 2, 3):
        with gateway.clock.at(NOW + timedelta(hours=hours)):
            await assert_as_if_nothing_kept(gateway, world, other, f"+{hours}h")

    # A backfill gives a new video of the creator a past: their audience's releases move on.
    with gateway.clock.at(NOW + timedelta(hours=3)):
        world.publish(DAY0 - timedelta(days=4), index=1)
        for n in range(12):
            world.view(world.actor(f"back{n}"), DAY0 - timedelta(days=3, hours=-n), index=1, region="DE")
        await gateway.backfill(world.take())
        await assert_as_if_nothing_kept(gateway, world, other, "backfilled")
