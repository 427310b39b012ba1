"""The GraphiQL IDE (`/graphiql`, GATEWAY_IDE on) in Debian's chromium: it loads from the gateway
alone, introspects, runs a query and shows its result; its token field decides who asks, and the
policy decides what they get, exactly as for any client."""

from __future__ import annotations

import json
from typing import Any

from .conftest import DemoServer, Watched
from .test_dashboard import api, demo_creators

QUERY_EDITOR = ".graphiql-query-editor .CodeMirror"
RESULT = ".result-window .CodeMirror"


async def run(watched: Watched, query: str) -> dict[str, Any]:
    """Puts `query` in GraphiQL's editor, presses run, and returns what the result pane shows once
    it shows the answer to that request (the pane keeps the previous answer until then)."""
    page = watched.page
    await page.evaluate(f"(q) => document.querySelector('{QUERY_EDITOR}').CodeMirror.setValue(q)", query)
    async with page.expect_response(lambda response: response.url.endswith("/graphql") and response.request.method == "POST") as answered:
        await page.click(".graphiql-execute-button")
    response = await answered.value
    assert json.loads(response.request.post_data or "{}")["query"] == query
    body = await response.json()
    shown: Any = None
    for _ in range(300):  # the pane renders after the response arrives: look again, for at most ~30 s
        text = await page.evaluate(f"() => document.querySelector('{RESULT}').CodeMirror.getValue()")
        shown = json.loads(text) if text.strip() else None
        if shown == body:
            break
        await page.wait_for_timeout(100)
    assert shown == body, f"the result pane shows {shown}, not the answer {body}"
    result: dict[str, Any] = shown
    return result


async def test_the_ide_runs_a_query_under_the_token_it_is_given(open_page: Any, served: DemoServer, artifacts: Any) -> None:
    creator = (await demo_creators(served))[0]
    answer = await api(served, creator["token"], 'query($id: ID!) { creator(id: $id) { videos(first: 1, orderBy: SHARES) { edges { node { id } } } } }', id=creator["id"])
    video = answer["data"]["creator"]["videos"]["edges"][0]["node"]["id"]
    private = f'{{ video(id: "{video}") {{ id stats {{ views likeRatio }} }} }}'
    watched = await open_page()
    page = watched.page

    async with page.expect_response(lambda response: response.url.endswith("/graphql")) as introspected:
        await page.goto(served.url + "/graphiql")
    assert "__schema" in ((await introspected.value).request.post_data or "")
    await page.wait_for_selector(QUERY_EDITOR)

    # Without a token GraphiQL asks as anonymous: the policy refuses the creator's own field.
    anonymous = await run(watched, private)
    assert anonymous["data"] is None
    assert [error["extensions"]["code"] for error in anonymous["errors"]] == ["FORBIDDEN"]

    # With the creator's token (sent as Authorization) the same query is answered, as the API answers it.
    await page.fill("#token-input", creator["token"])
    async with page.expect_response(lambda response: response.url.endswith("/graphql")) as refetched:
        await page.click("#token-save")
    assert (await refetched.value).request.headers["authorization"] == f"Bearer {creator['token']}"
    signed_in = await run(watched, private)
    assert signed_in == await api(served, creator["token"], private)
    assert signed_in["data"]["video"]["stats"]["likeRatio"] is not None

    await page.screenshot(path=str(artifacts / "graphiql.png"))
    watched.assert_clean()
