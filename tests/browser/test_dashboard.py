"""The creator dashboard at `/` in a real browser, against a real `gateway serve` over demo data:
every number it shows is the API's answer to the same token, hidden cells read as hidden, refused
fields as refused, and nothing is fetched from anywhere but the server.

The insights of issue 15 (reach, retention, comment sentiment, share surges, audience activity) are
each asked on their own, and each slot shows its own answer or its own refusal."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx


from .conftest import DESKTOP, PHONE, DemoServer, Watched

HIDDEN = "hidden to protect people's privacy"
OWNER_ONLY = "Only the creator can see this"
TOKEN_KEY = "privacy-gateway.token"

BREAKDOWN = "buckets { key count suppressed }"
TIMELINE = "granularity from to buckets { start count suppressed }"
VIDEO = f"""query ($id: ID!) {{
  video(id: $id) {{
    id creatorId publishedAt
    stats {{ views likes comments shares likeRatio engagementRate completionRate averageWatchSeconds }}
    shareChannels {{ {BREAKDOWN} }}
    region: audience(dimension: REGION) {{ {BREAKDOWN} }}
    ageBand: audience(dimension: AGE_BAND) {{ {BREAKDOWN} }}
  }}
}}"""
TIMELINES = f"""query ($id: ID!, $creator: ID!, $granularity: Granularity!) {{
  video(id: $id) {{ id shareTimeline(granularity: $granularity) {{ {TIMELINE} }} }}
  creator(id: $creator) {{ id followerGrowth(granularity: $granularity) {{ {TIMELINE} }} }}
}}"""
CREATOR = """query ($id: ID!) {
  creator(id: $id) {
    totals { videos views likes comments shares followers }
    videos(first: 100, orderBy: SHARES) { edges { node { id stats { views shares } } } pageInfo { hasNextPage } }
  }
}"""

# The documents the page sends for the insights (gateway/static/dashboard/js/queries.js), by slot.
INSIGHTS = {
    "reach": "query ($id: ID!) { video(id: $id) { id stats { reach } } }",
    "retention": "query ($id: ID!) { video(id: $id) { id retention { points { percent share suppressed } } } }",
    "sentiment": f"query ($id: ID!) {{ video(id: $id) {{ id commentSentiment {{ {BREAKDOWN} }} }} }}",
    "surges": "query ($id: ID!) { video(id: $id) { id shareSurges { releasedAt factor sharesPerHour } } }",
}
ACTIVITY = """query ($id: ID!, $timeZone: String!) {
  creator(id: $id) { id audienceActivity(timeZone: $timeZone) { timeZone cells { dayOfWeek hour viewers suppressed } } }
}"""
SLOT_FIELD = {"reach": ("stats", "reach"), "retention": ("retention",), "sentiment": ("commentSentiment",), "surges": ("shareSurges",)}
SLOT_TESTID = {"retention": "retention-point", "sentiment": "sentiment-bucket", "surges": "surge"}

COUNT_CARDS = ("views", "likes", "comments", "shares")
RATIO_CARDS = {"likeRatio": "like-ratio", "engagementRate": "engagement-rate", "completionRate": "completion-rate"}
PRIVATE_CARDS = ("like-ratio", "engagement-rate", "completion-rate", "average-watch-seconds", "reach")
# Every element that shows a number carries one of these test ids (checked by `assert_every_number_checked`).
PUBLIC_NUMBERS = {f"metric-{name}" for name in COUNT_CARDS} | {"video-shares", "video-views"} | {
    f"total-{name}" for name in ("videos", "views", "likes", "comments", "shares", "followers")
} | {"privacy-k", "privacy-steps", "privacy-floor", "privacy-suppressed", "privacy-noise"}


# -- the API, asked directly ---------------------------------------------------------------------


async def api(served: DemoServer, token: str, query: str, **variables: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=served.url, timeout=60) as http:
        response = await http.post(
            "/graphql", json={"query": query, "variables": variables}, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def demo_creators(served: DemoServer) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=served.url, timeout=60) as http:
        response = await http.get("/demo/creators")
    assert response.status_code == 200, response.text
    creators: list[dict[str, Any]] = response.json()["creators"]
    assert len(creators) >= 2, creators
    return creators


def errors_by_path(answer: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {".".join(map(str, error["path"])): error for error in answer.get("errors") or [] if error.get("path")}


# -- the page -----------------------------------------------------------------------------------


async def sign_in_as_demo(watched: Watched, creator_id: str, fragment: str = "") -> str:
    """Signs in by picking the demo creator; the token the page keeps."""
    page = watched.page
    await page.goto(f"{watched.origin}/{fragment}")
    await page.locator(f'[data-testid="demo-creator"][data-creator-id="{creator_id}"]').click()
    await page.wait_for_selector('[data-testid="video-list"][data-state="ready"]')
    assert await page.locator('[data-testid="signed-in-as"]').text_content() == creator_id
    token: str | None = await page.evaluate(f"sessionStorage.getItem({json.dumps(TOKEN_KEY)})")
    assert token, "the token is kept in sessionStorage"
    return token


async def video_ready(watched: Watched, video_id: str, granularity: str = "DAY") -> None:
    page = watched.page
    await page.wait_for_selector(f'[data-testid="video-view"][data-state="ready"][data-video-id="{video_id}"]')
    await page.wait_for_selector(f'[data-testid="timelines"][data-state="ready"][data-granularity="{granularity}"]')
    await page.wait_for_selector('[data-testid="video-view"] [data-testid="insights"][data-state="ready"]')


async def elements(watched: Watched, testid: str) -> list[dict[str, Any]]:
    """Every element with `testid`: its data attributes, its text, title and value text."""
    found: list[dict[str, Any]] = await watched.page.eval_on_selector_all(
        f'[data-testid="{testid}"]',
        """els => els.map(e => ({
            data: {...e.dataset},
            text: e.textContent.trim(),
            title: e.getAttribute('title'),
            value: e.querySelector('.bar-value, td')?.textContent.trim() ?? null,
        }))""",
    )
    return found


async def one(watched: Watched, testid: str) -> dict[str, Any]:
    found = await elements(watched, testid)
    assert len(found) == 1, f"{testid}: {found}"
    return found[0]


async def assert_every_number_checked(watched: Watched, checked: set[str]) -> None:
    """No element carrying a number is outside what the test compared with the API."""
    shown = set(await watched.page.eval_on_selector_all("[data-value], [data-count]", "els => els.map(e => e.dataset.testid)"))
    assert shown <= checked, f"numbers shown but not checked: {shown - checked}"


async def assert_no_horizontal_scroll(watched: Watched) -> None:
    width, inner = await watched.page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"the page scrolls sideways: {width} > {inner}"


# -- what the page shows, against the API ---------------------------------------------------------


def integer(value: int) -> str:
    return f"{value:,}"


def signed(value: int) -> str:
    return f"+{value:,}" if value > 0 else f"\u2212{-value:,}" if value < 0 else "0"


async def assert_cards(watched: Watched, stats: dict[str, Any], *, owner: bool) -> None:
    for name in COUNT_CARDS:
        card = await one(watched, f"metric-{name}")
        assert card["data"]["state"] == "ok"
        assert card["data"]["value"] == str(stats[name]) and card["text"] == integer(stats[name]), (name, card, stats)
    for field, testid in {**RATIO_CARDS, "averageWatchSeconds": "average-watch-seconds"}.items():
        card = await one(watched, f"metric-{testid}")
        value = stats[field]
        if not owner:
            assert value is None
            assert card["data"]["state"] == "forbidden" and card["text"] == OWNER_ONLY, card
        elif value is None:
            assert card["data"]["state"] == "null" and card["text"] == "\u2014", card  # "—", with why beside it
        else:
            assert card["data"]["state"] == "ok" and float(card["data"]["value"]) == value, (field, card, value)
            if field == "averageWatchSeconds":
                assert card["text"].endswith(" s") and abs(float(card["text"][:-2]) - value) <= 0.05 + 1e-9, (card, value)
            else:
                assert card["text"].endswith("%") and abs(float(card["text"][:-1]) - value * 100) <= 0.05 + 1e-9, (card, value)


async def assert_breakdown(watched: Watched, testid: str, breakdown: dict[str, Any]) -> int:
    """The rows equal the API's cells, hidden ones as hidden; the number of hidden cells."""
    rows = {row["data"]["key"]: row for row in await elements(watched, testid)}
    buckets = breakdown["buckets"]
    assert sorted(rows) == sorted(bucket["key"] for bucket in buckets), (testid, rows.keys(), buckets)
    hidden = 0
    for bucket in buckets:
        row = rows[bucket["key"]]
        if bucket["suppressed"]:
            hidden += 1
            assert bucket["count"] is None
            assert row["data"]["suppressed"] == "true" and row["data"]["count"] == "", row
            assert row["value"] == "hidden" and HIDDEN in (row["title"] or ""), row  # never drawn as zero
            assert not any(ch.isdigit() for ch in row["value"]), row
        else:
            assert row["data"]["suppressed"] == "false", row
            assert row["data"]["count"] == str(bucket["count"]) and row["value"] == integer(bucket["count"]), (row, bucket)
    if hidden:
        legend = watched.page.locator(f'[data-testid="{testid}-chart"] [data-testid="hidden-legend"]')
        assert HIDDEN in (await legend.text_content() or "")
    return hidden


async def assert_timeline(watched: Watched, testid: str, timeline: dict[str, Any], unit: str, show: Any) -> None:
    buckets = timeline["buckets"]
    bars = await elements(watched, testid)
    rows = await elements(watched, f"{testid}-row")
    assert [bar["data"]["start"] for bar in bars] == [bucket["start"] for bucket in buckets], testid
    assert [row["data"]["start"] for row in rows] == [bucket["start"] for bucket in buckets], testid
    for bar, row, bucket in zip(bars, rows, buckets, strict=True):
        assert bucket["suppressed"] is False  # a timeline bucket is a sum of whole releases
        assert bar["data"]["count"] == row["data"]["count"] == str(bucket["count"]), (bar, row, bucket)
        assert bar["data"]["suppressed"] == row["data"]["suppressed"] == "false"
        assert bar["text"].endswith(f": {show(bucket['count'])} {unit}"), (bar, bucket)
        assert row["value"] == show(bucket["count"]), (row, bucket)
    if buckets:
        counts = [bucket["count"] for bucket in buckets]
        total = await one(watched, f"{testid}-total")
        assert total["data"]["value"] == str(sum(counts)) and total["text"] == show(sum(counts))
        top = await one(watched, f"{testid}-max")
        assert top["data"]["value"] == str(max(0, *counts)) and top["text"] == show(max(0, *counts))
        if min(counts) < 0:
            bottom = await one(watched, f"{testid}-min")
            assert bottom["data"]["value"] == str(min(counts)) and bottom["text"] == show(min(counts))


async def assert_privacy_panel(watched: Watched, *reports: dict[str, Any]) -> None:
    k = reports[-1]["k"]
    floor = reports[-1]["granularityFloor"]
    hidden = sum(report["suppressedCells"] for report in reports)
    noised = any(report["noised"] for report in reports)
    note = await one(watched, "privacy-k")
    assert note["data"]["value"] == str(k) and f"fewer than {k} people" in note["text"], note
    note = await one(watched, "privacy-steps")
    assert note["data"]["value"] == str(k) and f"at least {k} new people" in note["text"], note
    note = await one(watched, "privacy-floor")
    assert note["data"]["value"] == floor and f"no finer than {floor}" in note["text"], note
    note = await one(watched, "privacy-suppressed")
    assert note["data"]["value"] == str(hidden), (note, reports)
    assert (f"{hidden} cell" in note["text"]) if hidden else ("No cell" in note["text"]), note
    note = await one(watched, "privacy-noise")
    assert note["data"]["value"] == ("true" if noised else "false"), note


async def assert_video_matches_api(watched: Watched, served: DemoServer, token: str, video_id: str, granularity: str = "DAY") -> dict[str, Any]:
    """Every number of the open video (the creator's own) equals the API's answer to the same token."""
    answer = await api(served, token, VIDEO, id=video_id)
    assert not answer.get("errors"), answer
    video = answer["data"]["video"]
    timelines = await api(served, token, TIMELINES, id=video_id, creator=video["creatorId"], granularity=granularity)
    assert not timelines.get("errors"), timelines
    await assert_cards(watched, video["stats"], owner=True)
    hidden = 0
    hidden += await assert_breakdown(watched, "channel-bucket", video["shareChannels"])
    hidden += await assert_breakdown(watched, "region-bucket", video["region"])
    hidden += await assert_breakdown(watched, "age-bucket", video["ageBand"])
    assert hidden == answer["extensions"]["privacy"]["suppressedCells"]
    await assert_timeline(watched, "share-bucket", timelines["data"]["video"]["shareTimeline"], "shares", integer)
    await assert_timeline(watched, "follower-bucket", timelines["data"]["creator"]["followerGrowth"], "followers", signed)
    insights = await insight_answers(served, token, video_id)
    await assert_insights(watched, insights, owner=True)
    await assert_privacy_panel(watched, answer["extensions"]["privacy"], timelines["extensions"]["privacy"], *reports_of(insights))
    timeline_numbers = {f"{name}{suffix}" for name in ("share-bucket", "follower-bucket") for suffix in ("", "-row", "-total", "-max", "-min")}
    cards = {f"metric-{name}" for name in PRIVATE_CARDS}
    await assert_every_number_checked(watched, PUBLIC_NUMBERS | cards | timeline_numbers | {"channel-bucket", "region-bucket", "age-bucket", "sentiment-bucket"})
    return {"video": video, "timelines": timelines, "hidden": hidden, "insights": insights}


async def insight_answers(served: DemoServer, token: str, video_id: str) -> dict[str, dict[str, Any]]:
    """The API's answers to the page's insight documents."""
    return {slot: await api(served, token, query, id=video_id) for slot, query in INSIGHTS.items()}


def reports_of(insights: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [answer["extensions"]["privacy"] for answer in insights.values() if answer.get("data") is not None]


def insight_of(answer: dict[str, Any], slot: str) -> Any:
    value: Any = (answer.get("data") or {}).get("video")
    for key in SLOT_FIELD[slot]:
        value = None if value is None else value.get(key)
    return value


async def assert_insights(watched: Watched, insights: dict[str, dict[str, Any]], *, owner: bool) -> None:
    """Each insight slot shows the API's answer: its numbers, or its refusal (for retention, a video
    whose length is not known: NOT_FOUND, said as such)."""
    for slot in INSIGHTS:
        state = await watched.page.get_attribute(f'[data-testid="insight-{slot}"]', "data-state") if slot != "reach" else None
        answer = insights[slot]
        value = insight_of(answer, slot)
        refused = errors_by_path(answer).get("video." + ".".join(SLOT_FIELD[slot]))
        if not owner:
            assert value is None and refused is not None and refused["extensions"]["code"] == "FORBIDDEN", (slot, answer)
        if slot == "reach":
            card = await one(watched, "metric-reach")
            if refused is not None:
                assert card["data"]["state"] in ("forbidden", "error") and card["data"]["value"] == "", card
                assert owner or (card["data"]["state"] == "forbidden" and card["text"] == OWNER_ONLY), card
            else:
                assert card["data"]["state"] == "ok" and card["data"]["value"] == str(value) and card["text"] == integer(value), (card, value)
            continue
        testid = SLOT_TESTID[slot]
        if slot == "retention" and refused is not None and refused["extensions"]["code"] == "NOT_FOUND":
            assert owner and state == "null", (owner, state)
            await one(watched, "retention-none")
            continue
        if refused is not None:
            assert state == "refused", (slot, state)
            refusal = await one(watched, f"{testid}-refused")
            assert refusal["data"]["code"] == refused["extensions"]["code"], (refusal, refused)
            assert owner or refusal["text"].startswith(OWNER_ONLY), refusal
            continue
        if slot == "retention":
            assert state == "ready", state
            await assert_retention(watched, value)
        elif slot == "sentiment":
            assert state == "ready", state
            await assert_breakdown(watched, "sentiment-bucket", value)
        else:
            assert state == "ready", state
            await assert_surges(watched, value)


async def assert_retention(watched: Watched, retention: dict[str, Any]) -> None:
    shown = await elements(watched, "retention-point")
    assert [point["data"]["percent"] for point in shown] == [str(point["percent"]) for point in retention["points"]]
    for bar, point in zip(shown, retention["points"], strict=True):
        if point["suppressed"]:
            assert point["share"] is None and bar["data"]["suppressed"] == "true" and bar["data"]["share"] == "", (bar, point)
            assert HIDDEN in bar["text"], bar
        else:
            assert bar["data"]["suppressed"] == "false" and float(bar["data"]["share"]) == point["share"], (bar, point)
            shown = bar["text"].removeprefix(f"At {point['percent']}%: ").removesuffix("% still watching")
            assert abs(float(shown) - point["share"] * 100) <= 0.05 + 1e-9, (bar, point)  # one decimal, however a tie rounds


async def assert_surges(watched: Watched, surges: list[dict[str, Any]]) -> None:
    shown = await elements(watched, "surge")
    assert [item["data"]["releasedAt"] for item in shown] == [surge["releasedAt"] for surge in surges]
    for item, surge in zip(shown, surges, strict=True):
        assert float(item["data"]["factor"]) == surge["factor"] and float(item["data"]["sharesPerHour"]) == surge["sharesPerHour"], (item, surge)
        assert f"{surge['factor']:.1f}× the usual pace" in item["text"] and f"{surge['sharesPerHour']:.1f} shares an hour" in item["text"], item
    if not surges:
        await one(watched, "surges-none")


# -- tests --------------------------------------------------------------------------------------


async def test_sign_in_from_the_demo_list_shows_the_videos_ranked_by_shares(open_page: Any, served: DemoServer) -> None:
    creators = await demo_creators(served)
    watched = await open_page()
    page = watched.page
    # A cookie the server could read: the page must never send it (credentials: 'omit').
    await watched.context.add_cookies([{"name": "probe", "value": "must-not-be-sent", "url": served.url}])
    sent: list[Any] = []
    page.on("request", lambda request: sent.append(request) if request.url.endswith("/graphql") else None)

    await page.goto(served.url + "/")
    listed = await page.eval_on_selector_all('[data-testid="demo-creator"]', "els => els.map(e => e.dataset.creatorId)")
    assert listed == [creator["id"] for creator in creators]
    busiest = creators[0]["id"]
    token = await sign_in_as_demo(watched, busiest)

    expected = await api(served, token, CREATOR, id=busiest)
    assert not expected.get("errors"), expected
    ranked = [edge["node"] for edge in expected["data"]["creator"]["videos"]["edges"]]
    assert len(ranked) > 20, "the busiest demo creator has more than a page of videos"

    items = await elements(watched, "video-item")
    assert [item["data"]["videoId"] for item in items] == [video["id"] for video in ranked[:20]]
    more = page.locator('[data-testid="more-videos"]')
    await more.click()
    await page.locator('[data-testid="video-item"]').nth(len(ranked) - 1).wait_for()
    await page.wait_for_selector('[data-testid="more-videos"]', state="hidden")
    items = await elements(watched, "video-item")
    assert [item["data"]["videoId"] for item in items] == [video["id"] for video in ranked]
    shares = [int(item["data"]["shares"]) for item in items]
    assert shares == sorted(shares, reverse=True), "most shared first"
    for item, video in zip(items, ranked, strict=True):
        assert item["data"]["shares"] == str(video["stats"]["shares"]) and item["data"]["views"] == str(video["stats"]["views"])
        assert f"{integer(video['stats']['shares'])} shares" in item["text"] and f"{integer(video['stats']['views'])} views" in item["text"]
    for name, value in expected["data"]["creator"]["totals"].items():
        total = await one(watched, f"total-{name}")
        assert total["data"]["value"] == str(value) and total["text"] == integer(value), (name, total)

    # The most shared video opens by itself, and the address names it.
    await video_ready(watched, ranked[0]["id"])
    assert page.url.endswith(f"#video={ranked[0]['id']}")
    current = await page.eval_on_selector('[aria-current="true"]', "e => e.dataset.videoId")
    assert current == ranked[0]["id"]

    graphql_requests = [request for request in sent if request.method == "POST"]
    assert graphql_requests
    for request in graphql_requests:
        headers = await request.all_headers()
        assert headers.get("authorization") == f"Bearer {token}"
        assert "cookie" not in headers, "fetch sends no cookies"
    assert [cookie["name"] for cookie in await watched.context.cookies()] == ["probe"], "the page sets no cookie"
    watched.assert_clean()


async def test_every_number_of_a_video_equals_the_api(open_page: Any, served: DemoServer, artifacts: Any) -> None:
    creators = await demo_creators(served)
    watched = await open_page()
    token = await sign_in_as_demo(watched, creators[0]["id"])
    top = await watched.page.eval_on_selector('[data-testid="video-item"]', "e => e.dataset.videoId")
    await video_ready(watched, top)
    checked = await assert_video_matches_api(watched, served, token, top)
    assert checked["hidden"] >= 1, "the demo data gives the most shared video at least one hidden cell"
    hidden_row = watched.page.locator('[data-testid$="-bucket"][data-suppressed="true"]').first
    assert await hidden_row.get_attribute("data-count") == ""
    assert await hidden_row.locator(".bar-value").text_content() == "hidden"

    # Another of the creator's videos, picked from the list: re-queried and redrawn.
    items = await elements(watched, "video-item")
    other = items[1]["data"]["videoId"]
    await watched.page.locator(f'[data-testid="video-item"][data-video-id="{other}"]').click()
    await video_ready(watched, other)
    await assert_video_matches_api(watched, served, token, other)

    await watched.page.locator(f'[data-testid="video-item"][data-video-id="{top}"]').click()
    await video_ready(watched, top)
    await watched.page.screenshot(path=str(artifacts / "dashboard-desktop.png"), full_page=True)
    await assert_no_horizontal_scroll(watched)
    watched.assert_clean()


async def test_the_granularity_switch_requeries_and_redraws(open_page: Any, served: DemoServer) -> None:
    creators = await demo_creators(served)
    watched = await open_page()
    page = watched.page
    token = await sign_in_as_demo(watched, creators[0]["id"])
    top = await page.eval_on_selector('[data-testid="video-item"]', "e => e.dataset.videoId")
    await video_ready(watched, top)
    day_bars = len(await elements(watched, "share-bucket"))

    for granularity, label in (("WEEK", "Week"), ("HOUR", "Hour"), ("MONTH", "Month"), ("DAY", "Day")):

        def asks(response: Any, granularity: str = granularity) -> bool:
            if not response.url.endswith("/graphql") or response.request.method != "POST":
                return False
            return bool(json.loads(response.request.post_data or "{}").get("variables", {}).get("granularity") == granularity)

        async with page.expect_response(asks) as answered:
            await page.get_by_role("radio", name=label).check()
        assert (await answered.value).status == 200
        await video_ready(watched, top, granularity)
        assert await page.get_by_role("radio", name=label).is_checked()
        await page.wait_for_selector(f'[data-testid="share-bucket-chart"][data-granularity="{granularity}"]')
        await assert_video_matches_api(watched, served, token, top, granularity)
        if granularity == "HOUR":
            assert len(await elements(watched, "share-bucket")) != day_bars or day_bars == 0
    watched.assert_clean()


async def test_another_creators_video_shows_only_its_public_counts(open_page: Any, served: DemoServer, artifacts: Any) -> None:
    creators = await demo_creators(served)
    owner, viewer = creators[0]["id"], creators[1]["id"]
    owners_videos = await api(served, creators[0]["token"], CREATOR, id=owner)
    theirs = owners_videos["data"]["creator"]["videos"]["edges"][0]["node"]["id"]

    watched = await open_page()
    page = watched.page
    # Following a link to their video before signing in: it opens once signed in.
    token = await sign_in_as_demo(watched, viewer, fragment=f"#video={theirs}")
    await video_ready(watched, theirs)

    answer = await api(served, token, VIDEO, id=theirs)
    timelines = await api(served, token, TIMELINES, id=theirs, creator=owner, granularity="DAY")
    refused = errors_by_path(answer) | errors_by_path(timelines)
    private = ["video.stats.likeRatio", "video.stats.engagementRate", "video.stats.completionRate", "video.stats.averageWatchSeconds",
               "video.shareChannels", "video.region", "video.ageBand", "video.shareTimeline", "creator.followerGrowth"]
    for path in private:
        assert refused[path]["extensions"]["code"] == "FORBIDDEN", (path, refused)

    assert await page.locator('[data-testid="video-creator"]').text_content() == owner
    assert owner in (await page.locator('[data-testid="not-yours"]').text_content() or "")
    await assert_cards(watched, answer["data"]["video"]["stats"], owner=False)
    for testid in ("channel-bucket", "region-bucket", "age-bucket", "share-bucket", "follower-bucket"):
        assert await page.locator(f'[data-testid="{testid}"]').count() == 0, f"{testid} shown to another creator"
        refusal = await one(watched, f"{testid}-refused")
        assert refusal["data"]["code"] == "FORBIDDEN" and refusal["text"].startswith(OWNER_ONLY), refusal
    insights = await insight_answers(served, token, theirs)
    await assert_insights(watched, insights, owner=False)
    await assert_privacy_panel(watched, answer["extensions"]["privacy"], timelines["extensions"]["privacy"], *reports_of(insights))
    await assert_every_number_checked(watched, PUBLIC_NUMBERS | {f"metric-{name}" for name in PRIVATE_CARDS})
    await page.screenshot(path=str(artifacts / "dashboard-other-creator.png"), full_page=True)

    # The same through "Open a video by id", after one of their own.
    own = await page.eval_on_selector('[data-testid="video-item"]', "e => e.dataset.videoId")
    await page.locator(f'[data-testid="video-item"][data-video-id="{own}"]').click()
    await video_ready(watched, own)
    assert await page.locator('[data-testid="not-yours"]').count() == 0
    await page.get_by_label("Open a video by id").fill(theirs)
    await page.get_by_role("button", name="Open", exact=True).click()
    await video_ready(watched, theirs)
    assert (await one(watched, "metric-like-ratio"))["text"] == OWNER_ONLY
    assert await page.locator('[data-testid="channel-bucket"]').count() == 0

    # A video that does not exist says so.
    await page.get_by_label("Open a video by id").fill("no-such-video")
    await page.get_by_role("button", name="Open", exact=True).click()
    await page.wait_for_selector('[data-testid="video-view"][data-state="error"][data-video-id="no-such-video"]')
    error = await one(watched, "video-error")
    assert error["data"]["code"] == "NOT_FOUND" and "no-such-video" in error["text"]
    watched.assert_clean()


async def test_the_phone_layout_has_no_horizontal_scroll(open_page: Any, served: DemoServer, artifacts: Any) -> None:
    creators = await demo_creators(served)
    watched = await open_page(PHONE)
    page = watched.page
    await page.goto(served.url + "/")
    await page.wait_for_selector('[data-testid="demo-creator"]')
    await assert_no_horizontal_scroll(watched)
    token = await sign_in_as_demo(watched, creators[0]["id"])
    top = await page.eval_on_selector('[data-testid="video-item"]', "e => e.dataset.videoId")
    await video_ready(watched, top)
    await assert_no_horizontal_scroll(watched)
    inner = await page.evaluate("window.innerWidth")
    right = await page.eval_on_selector_all("svg, .card, .bar-row, .chart", "els => Math.max(...els.map(e => e.getBoundingClientRect().right))")
    assert right <= inner, f"something reaches past the screen: {right} > {inner}"
    columns = await page.eval_on_selector_all('[data-testid^="card-"]', "els => new Set(els.map(e => Math.round(e.getBoundingClientRect().left))).size")
    assert columns >= 2, "the cards wrap into a grid"
    await assert_video_matches_api(watched, served, token, top)
    await page.screenshot(path=str(artifacts / "dashboard-phone.png"), full_page=True)
    watched.assert_clean()


async def test_a_pasted_app_token_sees_its_floor_and_noise(open_page: Any, served: DemoServer, artifacts: Any) -> None:
    creators = await demo_creators(served)
    creator = creators[0]["id"]
    app = (await served.cli("apps", "create", "--name", "Browser test app")).strip()
    token = (await served.cli("apps", "authorize", "--app", app, "--user", creator, "--scopes", "stats,insights")).strip()

    watched = await open_page()
    page = watched.page
    await page.goto(served.url + "/")
    await page.get_by_label("Bearer token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_selector('[data-testid="video-list"][data-state="ready"]')
    assert await page.evaluate(f"sessionStorage.getItem({json.dumps(TOKEN_KEY)})") == token
    assert await page.get_by_label("Bearer token").input_value() == "", "the field does not keep the token"
    top = await page.eval_on_selector('[data-testid="video-item"]', "e => e.dataset.videoId")
    await video_ready(watched, top)

    checked = await assert_video_matches_api(watched, served, token, top)
    assert checked["video"]["stats"]["averageWatchSeconds"] is None  # not served where counts carry noise
    card = page.locator('[data-testid="card-average-watch-seconds"]')
    assert "noise" in (await card.text_content() or "")
    assert (await one(watched, "privacy-k"))["data"]["value"] == "50"
    assert (await one(watched, "privacy-floor"))["data"]["value"] == "DAY"
    assert (await one(watched, "privacy-noise"))["data"]["value"] == "true"

    # Finer than the app's floor: the policy refuses, and the page says why in plain words.
    await page.get_by_role("radio", name="Hour").check()
    await video_ready(watched, top, "HOUR")
    refused = await api(served, token, TIMELINES, id=top, creator=creator, granularity="HOUR")
    assert refused["data"] is None and {error["extensions"]["code"] for error in refused["errors"]} == {"FORBIDDEN"}
    for testid in ("share-bucket", "follower-bucket"):
        refusal = await one(watched, f"{testid}-refused")
        assert refusal["data"]["code"] == "FORBIDDEN" and "finer than the DAY floor" in refusal["text"], refusal
        assert await page.locator(f'[data-testid="{testid}"]').count() == 0
    await page.screenshot(path=str(artifacts / "dashboard-app-refused-granularity.png"), full_page=True)

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_selector('[data-testid="signin-view"]')
    assert await page.evaluate(f"sessionStorage.getItem({json.dumps(TOKEN_KEY)})") is None
    assert await page.locator('[data-testid="dashboard-view"]').is_hidden()
    assert "#" not in page.url
    watched.assert_clean()


async def test_a_refused_token_goes_back_to_sign_in(open_page: Any, served: DemoServer) -> None:
    watched = await open_page()
    page = watched.page
    await page.goto(served.url + "/")
    await page.get_by_label("Bearer token").fill("not a token")
    await page.get_by_role("button", name="Sign in").click()
    error = page.locator('[data-testid="signin-error"]')
    await error.wait_for()
    assert "names no user" in (await error.text_content() or "")

    # Well formed, but signed with another key: the server refuses it (401) and the page says so.
    forged = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1MSIsImtpbmQiOiJ1c2VyIn0.c2lnbmF0dXJl"
    async with page.expect_response(lambda response: response.url.endswith("/graphql")) as answered:
        await page.get_by_label("Bearer token").fill(forged)
        await page.get_by_role("button", name="Sign in").click()
    assert (await answered.value).status == 401
    await page.wait_for_selector('[data-testid="signin-view"]:not([hidden]) [data-testid="signin-error"]:not([hidden])')
    assert "refused" in (await error.text_content() or "")
    assert await page.evaluate(f"sessionStorage.getItem({json.dumps(TOKEN_KEY)})") is None
    # The browser logs a failed (401) fetch as a console error of its own; nothing else may appear.
    watched.console_errors = [text for text in watched.console_errors if "401" not in text]
    watched.assert_clean()


SURGING_CREATOR = "creator-surging"
SURGING_VIDEO = "video-surging"


def surging_events(start: datetime) -> list[dict[str, Any]]:
    """A video shared by five new people every four hours from `start`, then by ten in one hour
    (hour 13): 1.25 shares an hour three times, then 10, eight times the running median."""
    def event(number: int, kind: str, when: datetime, actor: str, **fields: Any) -> dict[str, Any]:
        return {"event_id": f"surging-{number}", "type": kind, "occurred_at": when.isoformat().replace("+00:00", "Z"),
                "video_id": SURGING_VIDEO, "creator_id": SURGING_CREATOR, "actor_id": actor, **fields}

    events = [event(0, "video_published", start - timedelta(days=1), SURGING_CREATOR)]
    bursts = [(hour, 5) for hour in (0, 4, 8, 12)] + [(13, 10)]
    for hour, sharers in bursts:
        for i in range(sharers):
            events.append(event(len(events), "share", start + timedelta(hours=hour, minutes=3 * i), f"surging-sharer-{hour}-{i}", channel="whatsapp"))
    return events


async def test_share_surges_are_listed_with_their_hour_and_pace(open_page: Any, served: DemoServer, artifacts: Any) -> None:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=3)
    events = served.directory / "surging.ndjson"
    events.write_text("".join(json.dumps(event) + "\n" for event in surging_events(start)))
    await served.cli("ingest", "--backfill", str(events))
    token = (await served.cli("token", "create", "--kind", "user", "--subject", SURGING_CREATOR)).strip()

    watched = await open_page()
    page = watched.page
    await page.goto(served.url + "/")
    await page.get_by_label("Bearer token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await video_ready(watched, SURGING_VIDEO)

    expected = [{"releasedAt": (start + timedelta(hours=13)).isoformat(), "factor": 8.0, "sharesPerHour": 10.0}]
    answer = await api(served, token, INSIGHTS["surges"], id=SURGING_VIDEO)
    assert answer["data"]["video"]["shareSurges"] == expected
    await assert_surges(watched, expected)
    [item] = await elements(watched, "surge")
    assert "8.0× the usual pace" in item["text"] and "10.0 shares an hour" in item["text"], item
    await page.locator('[data-testid="surge-chart"]').screenshot(path=str(artifacts / "dashboard-share-surges.png"))
    watched.assert_clean()


async def assert_heat_map(watched: Watched, activity: dict[str, Any]) -> None:
    cells = {(cell["data"]["day"], cell["data"]["hour"]): cell for cell in await elements(watched, "activity-cell")}
    assert len(cells) == len(activity["cells"]) == 7 * 24
    for expected in activity["cells"]:
        cell = cells[(str(expected["dayOfWeek"]), str(expected["hour"]))]
        if expected["suppressed"]:
            assert expected["viewers"] is None and cell["data"]["suppressed"] == "true" and cell["data"]["viewers"] == "", (cell, expected)
            assert HIDDEN in (cell["title"] or ""), cell
        else:
            assert cell["data"]["suppressed"] == "false" and cell["data"]["viewers"] == str(expected["viewers"]), (cell, expected)
            assert (cell["title"] or "").endswith(f": {integer(expected['viewers'])} viewers"), cell
    hatched = await watched.page.eval_on_selector_all('[data-testid="activity-cell"].hatched', "els => els.length")
    assert hatched == sum(1 for cell in activity["cells"] if cell["suppressed"]), "suppressed cells are drawn hatched, and only they"


async def test_audience_activity_is_a_heat_map_in_the_browsers_time_zone(open_page: Any, served: DemoServer, artifacts: Any) -> None:
    creators = await demo_creators(served)
    creator = creators[0]["id"]
    zone = "America/New_York"
    watched = await open_page(DESKTOP, timezone_id=zone)
    page = watched.page
    token = await sign_in_as_demo(watched, creator)

    await page.wait_for_selector(f'[data-testid="activity-panel"][data-state="ready"][data-time-zone="{zone}"]')
    assert await page.locator('[data-testid="time-zone"]').input_value() == zone, "the browser's zone is chosen to begin with"
    answer = await api(served, token, ACTIVITY, id=creator, timeZone=zone)
    assert answer["data"]["creator"]["audienceActivity"]["timeZone"] == zone
    await assert_heat_map(watched, answer["data"]["creator"]["audienceActivity"])
    await page.locator('[data-testid="activity-panel"]').screenshot(path=str(artifacts / "dashboard-audience-activity.png"))

    await page.locator('[data-testid="time-zone"]').select_option("UTC")
    await page.wait_for_selector('[data-testid="activity-panel"][data-state="ready"][data-time-zone="UTC"]')
    answer = await api(served, token, ACTIVITY, id=creator, timeZone="UTC")
    await assert_heat_map(watched, answer["data"]["creator"]["audienceActivity"])
    await assert_no_horizontal_scroll(watched)
    watched.assert_clean()
