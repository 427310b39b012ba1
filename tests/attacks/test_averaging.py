"""Averaging: an app asks the same noisy count a thousand times to average the noise away.

Noise comes from a keyed PRF over the question and the data, so the same question about the
same data gets the same answer every time: the average of a thousand answers is the first
answer, no nearer the truth. Asking again costs no budget; asking new questions does, until
the day's ε is spent. At best the app learns one noisy answer per question per state of the data.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from statistics import mean
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from tests.attacks.world import World, days_ago

from gateway.auth import Principal, PrincipalKind
from harness import Gateway

VIEWS = "query($v: ID!) { video(id: $v) { stats { views } } }"
SAME_QUESTION_OTHER_SHAPE = "query Other($v: ID!) { clip: video(id: $v) { id stats { n: views } } }"


def app_for(world: World, app_id: str) -> Principal:
    return Principal(PrincipalKind.APP, world.creator, frozenset({"stats", "insights"}), app_id=app_id)


async def ask(gateway: Gateway, query: str, video: str, app: Principal) -> dict[str, Any]:
    response = await gateway.graphql(query, {"v": video}, principal=app)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body


async def test_a_thousand_answers_average_to_the_first(gateway: Gateway) -> None:
    world = World("averaged")
    world.publish(days_ago(6, 8))
    world.crowd("viewer", 120, days_ago(5, 10), spacing=timedelta(seconds=10))
    await gateway.play(world.take())
    app = app_for(world, "app-averaging")

    first = await ask(gateway, VIEWS, world.video(), app)
    privacy = first["extensions"]["privacy"]
    assert privacy["noised"] is True and privacy["k"] == 50 and privacy["epsilonSpent"] == 0.5
    assert privacy["budgetLeft"] == 9.5
    answers = [first["data"]["video"]["stats"]["views"]]
    for _ in range(999):
        body = await ask(gateway, VIEWS, world.video(), app)
        answers.append(body["data"]["video"]["stats"]["views"])
        assert body["extensions"]["privacy"]["epsilonSpent"] == 0 and body["extensions"]["privacy"]["budgetLeft"] == 9.5
    assert set(answers) == {answers[0]} and mean(answers) == answers[0]
    # Asked in other words, it is the same question.
    other = await ask(gateway, SAME_QUESTION_OTHER_SHAPE, world.video(), app)
    assert other["data"]["clip"]["stats"]["n"] == answers[0] and other["extensions"]["privacy"]["epsilonSpent"] == 0


async def test_each_app_draws_its_own_noise(gateway: Gateway) -> None:
    """The PRF keys on the app, as well as on the question and the data. (Apps that pool their
    answers do average across apps, each spending its own budget: the budget is per app and user.)"""
    world = World("per-app")
    world.publish(days_ago(6, 8))
    world.crowd("viewer", 200, days_ago(5, 10), spacing=timedelta(seconds=5))
    await gateway.play(world.take())
    answers = [
        (await ask(gateway, VIEWS, world.video(), app_for(world, f"app-{i}")))["data"]["video"]["stats"]["views"] for i in range(40)
    ]
    assert len(set(answers)) > 5
    assert answers.count(200) < 20


async def test_new_questions_spend_the_budget_until_it_is_exhausted(gateway: Gateway) -> None:
    world = World("spender")
    for index in range(25):
        world.publish(days_ago(6, 8), index)
    await gateway.play(world.take())
    app = app_for(world, "app-spender")
    spent = []
    refusal = None
    for index in range(25):
        response = await gateway.graphql(VIEWS, {"v": world.video(index)}, principal=app)
        body = response.json()
        if response.status_code == 429:
            refusal = (response, body)
            break
        spent.append(body["extensions"]["privacy"]["epsilonSpent"])
    assert spent == [0.5] * 20  # ε 10 a day, ε 0.5 a question
    assert refusal is not None
    response, body = refusal
    tomorrow = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    assert body["data"] is None
    assert body["errors"][0]["extensions"] == {"code": "BUDGET_EXHAUSTED", "resetsAt": tomorrow.isoformat(), "budgetLeft": 0.0}
    assert body["extensions"]["privacy"]["budgetLeft"] == 0
    assert 0 < int(response.headers["retry-after"]) <= 86_400
    # A question already answered today is still answered, free.
    again = await ask(gateway, VIEWS, world.video(0), app)
    assert again["extensions"]["privacy"]["epsilonSpent"] == 0
    # Operators see it in /metrics.
    samples = {sample.name: sample.value for family in text_string_to_metric_families(await gateway.scrape()) for sample in family.samples}
    assert samples["gateway_privacy_budget_refusals_total"] >= 1
    assert samples["gateway_privacy_epsilon_charged_total"] >= 10
    assert samples["gateway_privacy_noised_responses_total"] >= 20
