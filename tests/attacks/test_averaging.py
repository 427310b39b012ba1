"""Averaging: apps ask one noisy count again and again, in other words, through other apps and on
other days, to average the noise away.

Apps get noise only on what the public cannot read exactly: breakdown cells (share channels, the
audience) and completed views. Each noised quantity gets one draw per (subject, metric, cell,
release that last changed it), keyed by the server's secret, not by the app or the question: the
thousandth answer, another field's, another app's and tomorrow's are all the first one, so their
mean is no nearer the truth. Asking again costs no budget; new quantities do, until the day's ε is
spent. (Against the earlier design, noise was drawn per question and per app: `stats.shares`, a
MONTH bucket covering the whole life and a one-video creator's `totals.shares` were independent
draws of one count, and 60 of them averaged to within ±0.6 of the truth.)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from tests.attacks.world import World, app_for, ask, days_ago

from gateway.auth import Principal
from harness import Gateway

NOW = days_ago(1, 12, 30)
CHANNELS = "query($v: ID!) { video(id: $v) { shareChannels { buckets { key count suppressed } } } }"
# The same cell through other shapes: an alias and a fragment, and the creator's ranking of videos.
CHANNELS_BY_FRAGMENT = """query Other($v: ID!) { clip: video(id: $v) { id ...Cells } }
    fragment Cells on Video { byChannel: shareChannels { buckets { n: count key } } }"""
CHANNELS_BY_RANKING = """query($c: ID!) { creator(id: $c) { videos(orderBy: SHARES, first: 1) {
    edges { node { shareChannels { buckets { key count } } } } } } }"""


def shared_video(name: str) -> World:
    """A video shared by 60 people on WhatsApp, 55 by copied link and 52 by email: every channel but
    WhatsApp is suppressed for an app (k = 50; email, the smallest, and copy_link, the first by key,
    are the complements of the empty ones), WhatsApp is noised."""
    world = World(name)
    world.publish(days_ago(6, 8))
    world.crowd("wa", 60, days_ago(5, 10), shares=True, spacing=timedelta(seconds=10))
    world.crowd("cl", 55, days_ago(5, 14), shares=True, channel="copy_link", spacing=timedelta(seconds=10))
    world.crowd("em", 52, days_ago(5, 16), shares=True, channel="email", spacing=timedelta(seconds=10))
    return world


def whatsapp(body: dict[str, Any]) -> int:
    """The WhatsApp cell of a share-channel breakdown, whichever shape asked for it."""
    data = body["data"]
    if "creator" in data:
        buckets = data["creator"]["videos"]["edges"][0]["node"]["shareChannels"]["buckets"]
    elif "clip" in data:
        buckets = [{"key": cell["key"], "count": cell["n"]} for cell in data["clip"]["byChannel"]["buckets"]]
    else:
        buckets = data["video"]["shareChannels"]["buckets"]
    (count,) = [cell["count"] for cell in buckets if cell["key"] == "whatsapp"]
    assert isinstance(count, int)
    return count


async def ask_cell(gateway: Gateway, world: World, query: str, app: Principal) -> tuple[int, dict[str, Any]]:
    """The WhatsApp cell as `app` gets it through `query`, and the answer's privacy report."""
    body = await ask(gateway, query, {"c": world.creator} if "$c" in query else {"v": world.video()}, app)
    return whatsapp(body), body["extensions"]["privacy"]


async def test_a_thousand_answers_average_to_the_first(gateway: Gateway) -> None:
    world = shared_video("averaged")
    with gateway.clock.at(NOW):
        await gateway.play(world.take())
        app = app_for(world.creator, "app-averaging")
        first, privacy = await ask_cell(gateway, world, CHANNELS, app)
        assert privacy["noised"] is True and privacy["k"] == 50 and privacy["epsilonSpent"] == 0.25
        assert privacy["budgetLeft"] == 9.75
        answers = [first]
        for _ in range(999):
            answer, privacy = await ask_cell(gateway, world, CHANNELS, app)
            answers.append(answer)
            assert privacy["epsilonSpent"] == 0 and privacy["budgetLeft"] == 9.75
        # Totals are not noised: the public reads them exactly, noise would protect nothing.
        totals = await ask(gateway, "query($v: ID!) { video(id: $v) { stats { shares } } }", {"v": world.video()}, app)
    assert set(answers) == {first}
    assert totals["data"]["video"]["stats"]["shares"] == 167 and totals["extensions"]["privacy"]["noised"] is False


async def test_noise_is_one_draw_per_quantity_whatever_the_shape_app_or_day(gateway: Gateway) -> None:
    """Mechanism 8 of issue 10: the WhatsApp cell asked through three query shapes, by 24 apps, on
    three days without a new release, is one value; within a day an app pays ε for it once."""
    world = shared_video("pooled")
    with gateway.clock.at(NOW):
        await gateway.play(world.take())
    answers = []
    for day in range(3):
        with gateway.clock.at(NOW + timedelta(days=day)):
            for number in range(24):
                app = app_for(world.creator, f"app-pool-{number}")
                spent = []
                for query in (CHANNELS, CHANNELS_BY_FRAGMENT, CHANNELS_BY_RANKING, CHANNELS):
                    answer, privacy = await ask_cell(gateway, world, query, app)
                    answers.append(answer)
                    spent.append(privacy["epsilonSpent"])
                assert spent == [0.25, 0, 0, 0], (day, number)
    assert len(answers) == 3 * 24 * 4 and set(answers) == {answers[0]}


async def test_new_questions_spend_the_budget_until_it_is_exhausted(gateway: Gateway) -> None:
    """Each video's completion rate is a quantity of its own (ε 0.5): twenty fill the day's ε 10.
    (Each video has 50 viewers who left it unfinished and 50 who finished it: a release an app
    sees, with the app's k on each side of the rate. A video with no views released has no rate,
    nor one with fewer than k people on either side: neither draws anything.)"""
    world = World("spender")
    for index in range(25):
        world.publish(days_ago(6, 8), index)
        world.crowd(f"viewer{index}-", 50, days_ago(5, 10), index, spacing=timedelta(seconds=1))
        for n in range(50):
            world.view(world.actor(f"finisher{index}-{n}"), days_ago(5, 11) + timedelta(seconds=n), index, completed=True)
    query = "query($v: ID!) { video(id: $v) { stats { completionRate } } }"
    app = app_for(world.creator, "app-spender")
    spent = []
    refusal = None
    with gateway.clock.at(NOW):
        await gateway.play(world.take())
        for index in range(25):
            response = await gateway.graphql(query, {"v": world.video(index)}, principal=app)
            body = response.json()
            if response.status_code == 429:
                refusal = (response, body)
                break
            spent.append(body["extensions"]["privacy"]["epsilonSpent"])
        assert spent == [0.5] * 20  # ε 10 a day, ε 0.5 a quantity
        assert refusal is not None
        response, body = refusal
        tomorrow = NOW.replace(hour=0, minute=0) + timedelta(days=1)
        assert body["data"] is None
        assert body["errors"][0]["extensions"] == {"code": "BUDGET_EXHAUSTED", "resetsAt": tomorrow.isoformat(), "budgetLeft": 0.0}
        assert body["extensions"]["privacy"]["budgetLeft"] == 0
        # Nothing of the refused answer shows: not that it was noised, nor what it would have cost.
        assert body["extensions"]["privacy"]["noised"] is False and body["extensions"]["privacy"]["suppressedCells"] == 0
        assert body["errors"][0]["message"] == "what is left of today's ε budget (0) does not cover this answer"
        assert 0 < int(response.headers["retry-after"]) <= 86_400
        # A quantity already released today is still answered, free.
        again = await ask(gateway, query, {"v": world.video(0)}, app)
        assert again["extensions"]["privacy"]["epsilonSpent"] == 0
    # Operators see it in /metrics.
    samples = {sample.name: sample.value for family in text_string_to_metric_families(await gateway.scrape()) for sample in family.samples}
    assert samples["gateway_privacy_budget_refusals_total"] >= 1


async def test_a_cell_whose_count_stands_still_keeps_its_draw_across_releases(gateway: Gateway) -> None:
    """Found by red-teaming: a region cell counts distinct viewers, but its draw was keyed by the
    release that last touched it, and a viewer already counted watching again touches it. With a
    release every day, an app got a fresh draw of the same 60 viewers each day and averaged them.
    Now a draw is keyed by the cell's count: the same count, the same answer, whatever the release."""
    world = World("redraw")
    base = days_ago(12, 10)
    app = app_for(world.creator, "app-redraw")
    audience = "query($v: ID!) { video(id: $v) { audience(dimension: REGION) { buckets { key count } } } }"
    with gateway.clock.at(base):
        world.publish(base - timedelta(hours=1))
        france = world.crowd("fr", 60, base - timedelta(minutes=50), region="FR", spacing=timedelta(seconds=1))
        world.crowd("it", 55, base - timedelta(minutes=40), region="IT", spacing=timedelta(seconds=1))
        world.crowd("us0-", 50, base - timedelta(minutes=30), region="US", spacing=timedelta(seconds=1))
        # The pool's complements: Germany, the smallest, and Austria, the first by key (France stays listed).
        world.crowd("de", 52, base - timedelta(minutes=20), region="DE", spacing=timedelta(seconds=1))
        world.crowd("at", 70, base - timedelta(minutes=10), region="AT", spacing=timedelta(seconds=1))
        await gateway.ingest(world.take())
    answers = []
    for day in range(1, 7):
        moment = base + timedelta(days=day)
        with gateway.clock.at(moment):
            world.crowd(f"us{day}-", 50, moment - timedelta(minutes=30), region="US", spacing=timedelta(seconds=1))
            world.view(france[day], moment - timedelta(minutes=5), region="FR")  # a viewer already counted, again
            await gateway.ingest(world.take())
        with gateway.clock.at(moment + timedelta(days=1)):
            body = await ask(gateway, audience, {"v": world.video()}, app)
        answers.append({cell["key"]: cell["count"] for cell in body["data"]["video"]["audience"]["buckets"]})
    assert len({answer["FR"] for answer in answers}) == 1, answers
    assert len({answer["US"] for answer in answers}) == len(answers), "the growing cell draws anew at each count"
