"""`gateway policy preview`: the decisions real requests logged, decided again under proposed policies."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner, Result

from gateway.auth import ANONYMOUS, Principal, PrincipalKind
from gateway.cli import app

from conftest import SECRET
from harness import SHIPPED_POLICIES, Gateway, running_gateway

ADA = Principal(PrincipalKind.USER, "u-preview-ada")
BO = Principal(PrincipalKind.USER, "u-preview-bo")
STATS_APP = Principal(PrincipalKind.APP, "u-preview-cy", frozenset({"stats"}), app_id="app-preview")

INSIGHTS = 'query Insights { video(id: "v-preview") { stats { views likeRatio } } }'
APP_STATS = 'query AppStats { video(id: "v-preview") { stats { views } } }'
PUBLIC = 'query Public { video(id: "v-preview") { stats { views shares } } }'

# What the module's log holds: (query, principal, times asked).
ASKED = [(INSIGHTS, ADA, 3), (INSIGHTS, BO, 1), (APP_STATS, STATS_APP, 2), (PUBLIC, ANONYMOUS, 1)]
INSIGHTS_DECISIONS = 4
LOGGED_DECISIONS = 7
# Older than the default window: Insights asked again 10 days ago, and Public 12 days ago with a
# result no policy here gives (a k of 7), as a revision long gone might have recorded it.
OLD_INSIGHTS_DECISIONS = 5


@pytest.fixture(scope="module")
async def logged(database_url: str) -> str:
    """The module's database once real requests have been decided (and logged) under the shipped
    policy, and older decisions added as the writer would have stored them."""
    # Under the shipped policy, the one the preview compares with (not the tests' roomy limits).
    async with running_gateway(database_url, policy_dir=SHIPPED_POLICIES) as gateway:
        for query, principal, times in ASKED:
            for _ in range(times):
                await asked(gateway, query, principal)
        await gateway.state["decision_log"].flush()
    conn = await asyncpg.connect(database_url)
    try:
        await log_again(conn, ADA, times=OLD_INSIGHTS_DECISIONS, days_ago=10)
        await log_as_an_old_revision(conn, ANONYMOUS, k_threshold=7, days_ago=12)
    finally:
        await conn.close()
    return database_url


async def log_again(conn: asyncpg.Connection, principal: Principal, times: int, days_ago: int) -> None:
    """One of `principal`'s logged decisions, logged `times` more, `days_ago` days ago."""
    await conn.execute(
        """INSERT INTO decision_log
           SELECT gen_random_uuid(), now() - make_interval(days => $3), revision, path, principal, question, result, cache_hit, denied, duration_ms
           FROM (SELECT * FROM decision_log WHERE principal->>'id' = $2 LIMIT 1) AS asked, generate_series(1, $1)""",
        times,
        principal.id,
        days_ago,
    )


async def log_as_an_old_revision(conn: asyncpg.Connection, principal: Principal, k_threshold: int, days_ago: int) -> None:
    """One of `principal`'s logged questions, logged again `days_ago` days ago by another revision,
    which answered it with another k."""
    logged = await conn.fetchrow(
        """SELECT l.path, l.principal, l.question, recorded.body::text AS result
           FROM decision_log l JOIN decision_bodies recorded ON recorded.digest = l.result
           WHERE l.principal->>'kind' = $1 LIMIT 1""",
        principal.kind.value,
    )
    result = json.loads(logged["result"])
    result["obligations"]["k_threshold"] = k_threshold
    body = json.dumps(result)
    digest = hashlib.sha256(body.encode()).digest()
    await conn.execute("INSERT INTO decision_bodies VALUES ($1, $2::json)", digest, body)
    await conn.execute(
        "INSERT INTO decision_log VALUES (gen_random_uuid(), now() - make_interval(days => $5), 'an-old-revision', $1, $2, $3, $4, false, false, 1.0)",
        logged["path"],
        logged["principal"],
        logged["question"],
        digest,
        days_ago,
    )


async def old_revisions_decision(database_url: str) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        decision_id: str = await conn.fetchval("SELECT decision_id::text FROM decision_log WHERE revision = 'an-old-revision'")
    finally:
        await conn.close()
    return decision_id


async def asked(gateway: Gateway, query: str, principal: Principal) -> None:
    response = await gateway.graphql(query, principal=principal)
    assert response.status_code == 200, response.text


@pytest.fixture
def env(logged: str, tmp_path: Path) -> dict[str, str]:
    return {
        "GATEWAY_DATABASE_URL": logged,
        "GATEWAY_SECRET": SECRET,
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_POLICY_DIR": str(SHIPPED_POLICIES),
        "COLUMNS": "250",  # one table row a line
    }


def proposal(target: Path, change: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """A copy of the shipped policy; with `change`, its data.json edited and its Rego tests left
    out (they pin the shipped figures)."""
    if change is None:
        shutil.copytree(SHIPPED_POLICIES, target)
        return target
    shutil.copytree(SHIPPED_POLICIES, target, ignore=shutil.ignore_patterns("*_test.rego"))
    data = json.loads((target / "data.json").read_text())
    change(data)
    (target / "data.json").write_text(json.dumps(data, indent=2))
    return target


def without_like_ratio(data: dict[str, Any]) -> None:
    del data["access"]["fields"]["VideoStats.likeRatio"]


def app_k_of_100(data: dict[str, Any]) -> None:
    data["obligations"]["principals"]["app"]["k_threshold"] = 100


async def preview(*args: str, env: dict[str, str]) -> Result:
    # The command calls asyncio.run(): it runs in a thread of its own, outside the test's event loop.
    def invoke() -> Result:
        return CliRunner().invoke(app, ["policy", "preview", *args], env=env)

    return await asyncio.to_thread(invoke)


def impact(result: Result, status: int) -> dict[str, Any]:
    assert result.exit_code == status, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


async def test_preview_of_an_identical_policy_flips_nothing(env: dict[str, str], tmp_path: Path) -> None:
    same = proposal(tmp_path / "same")

    result = await preview("--policy-dir", str(same), "--json", env=env)

    document = impact(result, 0)
    assert document["log"] == {"decisions": LOGGED_DECISIONS, "inputs": 3, "revisions": 1}
    assert document["access_changes"] == document["obligation_changes"] == document["failures"] == []
    assert document["drift"]["decisions"] == 0
    assert document["flips"] is False
    assert document["proposed"]["revision"] == document["current"]["revision"]


async def test_preview_prints_nothing_flips_for_an_identical_policy(env: dict[str, str], tmp_path: Path) -> None:
    result = await preview("--policy-dir", str(proposal(tmp_path / "same")), env=env)

    assert result.exit_code == 0, result.output
    assert f"{LOGGED_DECISIONS} decisions, 3 distinct inputs, 1 policy revision(s)" in result.stdout
    assert "Access that changes: none" in result.stdout
    assert "Obligations that change: none" in result.stdout
    assert "Nothing flips." in result.stdout


async def test_preview_of_a_field_removed_exits_1_and_counts_the_decisions_that_flip(env: dict[str, str], tmp_path: Path) -> None:
    result = await preview("--policy-dir", str(proposal(tmp_path / "narrower", without_like_ratio)), "--json", env=env)

    document = impact(result, 1)
    [change] = document["access_changes"]
    assert {key: change[key] for key in ("principal_kind", "coordinate", "before", "after", "decisions", "inputs")} == {
        "principal_kind": "user",
        "coordinate": "VideoStats.likeRatio",
        "before": "own data only",
        "after": "denied",
        "decisions": INSIGHTS_DECISIONS,
        "inputs": 1,
    }
    assert change["example"]["operation"]["name"] == "Insights"
    assert change["example"]["path"] == "video.stats.likeRatio"
    assert document["obligation_changes"] == []
    assert document["flipped"]["decisions"] == INSIGHTS_DECISIONS
    assert document["flips"] is True


async def test_preview_example_is_a_logged_decision_and_names_no_user(env: dict[str, str], tmp_path: Path, logged: str) -> None:
    result = await preview("--policy-dir", str(proposal(tmp_path / "narrower", without_like_ratio)), env=env)

    assert result.exit_code == 1, result.output
    [row] = [line for line in result.stdout.splitlines() if "VideoStats.likeRatio" in line]
    assert "user" in row and "own data only → denied" in row and "[1]" in row
    [example] = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("[1] decision ")]
    assert example.endswith(", operation Insights, path video.stats.likeRatio")
    conn = await asyncpg.connect(logged)
    try:
        insights = await conn.fetch("SELECT decision_id::text FROM decision_log WHERE principal->>'kind' = 'user' AND timestamp > now() - interval '1 day'")
    finally:
        await conn.close()
    assert any(example == f"[1] decision {decision['decision_id']}, operation Insights, path video.stats.likeRatio" for decision in insights)
    assert ADA.id not in result.stdout and BO.id not in result.stdout
    assert "4 logged decision(s) would be answered otherwise." in result.stdout


async def test_preview_of_an_app_k_change_lists_it_and_exits_0_unless_strict(env: dict[str, str], tmp_path: Path) -> None:
    proposed = proposal(tmp_path / "app-k", app_k_of_100)

    result = await preview("--policy-dir", str(proposed), "--json", env=env)
    strict = await preview("--policy-dir", str(proposed), "--json", "--strict", env=env)

    document = impact(result, 0)
    [change] = document["obligation_changes"]
    assert {key: change[key] for key in ("principal_kind", "term", "before", "after", "decisions", "inputs")} == {
        "principal_kind": "app",
        "term": "k_threshold",
        "before": {"value": 50},
        "after": {"value": 100},
        "decisions": 2,
        "inputs": 1,
    }
    assert change["example"]["operation"]["name"] == "AppStats"
    assert change["example"]["scopes"] == ["stats"]
    assert document["access_changes"] == []
    assert impact(strict, 1)["obligation_changes"] == document["obligation_changes"]


async def test_preview_prints_an_obligation_change_as_old_and_new_value(env: dict[str, str], tmp_path: Path) -> None:
    proposed = proposal(tmp_path / "app-k", app_k_of_100)

    result = await preview("--policy-dir", str(proposed), env=env)
    strict = await preview("--policy-dir", str(proposed), "--strict", env=env)

    assert result.exit_code == 0, result.output
    [row] = [line for line in result.stdout.splitlines() if "k_threshold" in line]
    assert "app" in row and "50 → 100" in row and "[1]" in row
    assert any(line.strip().startswith("[1] decision ") and line.endswith(", operation AppStats, scopes stats") for line in result.stdout.splitlines())
    assert "Nothing flips." in result.stdout
    assert strict.exit_code == 1, strict.output
    assert "Nothing flips, but obligations change (--strict)." in strict.stdout


async def test_preview_against_another_policy_compares_with_that_one(env: dict[str, str], tmp_path: Path) -> None:
    current = proposal(tmp_path / "app-k", app_k_of_100)

    document = impact(await preview("--policy-dir", str(SHIPPED_POLICIES), "--against", str(current), "--json", env=env), 0)

    assert [(change["term"], change["before"], change["after"]) for change in document["obligation_changes"]] == [
        ("k_threshold", {"value": 100}, {"value": 50})
    ]
    assert document["current"]["policy_dir"] == str(current)


def broken_syntax(policy: Path) -> None:
    authz = policy / "gateway" / "authz.rego"
    authz.write_text(authz.read_text() + "\nbroken := {\n")


def failing_test(policy: Path) -> None:
    data = json.loads((policy / "data.json").read_text())
    data["access"]["principals"]["anonymous"]["groups"].append("creator_insights")
    (policy / "data.json").write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("breakage", "why"),
    [
        pytest.param(broken_syntax, "it does not parse: gateway/authz.rego", id="parse-error"),
        pytest.param(failing_test, "policy tests fail: gateway.authz_test.test_fields_insights_denied_to_everyone_else", id="failing-test"),
        pytest.param(lambda policy: shutil.rmtree(policy), "it cannot be read", id="missing"),
    ],
)
async def test_preview_of_a_policy_a_reload_would_reject_exits_2_and_says_why(
    env: dict[str, str], tmp_path: Path, breakage: Callable[[Path], None], why: str
) -> None:
    broken = proposal(tmp_path / "broken")
    breakage(broken)

    result = await preview("--policy-dir", str(broken), env=env)

    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    said = " ".join(result.stderr.split())
    assert f"the proposed policy in {broken} would be rejected on reload:" in said
    assert why in said
    assert result.stdout == ""


async def test_preview_since_bounds_the_log_window(env: dict[str, str], tmp_path: Path) -> None:
    narrower = proposal(tmp_path / "narrower", without_like_ratio)

    week = impact(await preview("--policy-dir", str(narrower), "--json", env=env), 1)
    month = impact(await preview("--policy-dir", str(narrower), "--since", "30d", "--json", env=env), 1)
    hour = impact(await preview("--policy-dir", str(narrower), "--since", "1h", "--json", env=env), 1)

    assert week["log"]["decisions"] == hour["log"]["decisions"] == LOGGED_DECISIONS
    assert month["log"] == {"decisions": LOGGED_DECISIONS + OLD_INSIGHTS_DECISIONS + 1, "inputs": 3, "revisions": 2}
    assert [change["decisions"] for change in week["access_changes"]] == [INSIGHTS_DECISIONS]
    assert [change["decisions"] for change in month["access_changes"]] == [INSIGHTS_DECISIONS + OLD_INSIGHTS_DECISIONS]


async def test_preview_counts_recorded_decisions_the_current_policy_decides_otherwise(env: dict[str, str], tmp_path: Path) -> None:
    result = await preview("--policy-dir", str(proposal(tmp_path / "same")), "--since", "30d", "--json", env=env)

    document = impact(result, 0)
    assert document["drift"]["decisions"] == 1
    assert document["drift"]["example"]["operation"]["name"] == "Public"
    assert document["drift"]["example"]["decision_id"] == await old_revisions_decision(env["GATEWAY_DATABASE_URL"])
    assert document["obligation_changes"] == []


async def test_preview_tells_principals_apart_by_id_when_a_policy_reads_it(env: dict[str, str], tmp_path: Path) -> None:
    reads_id = proposal(tmp_path / "reads-id")
    authz = reads_id / "gateway" / "authz.rego"
    authz.write_text(authz.read_text() + '\nasked_by_a_probe if startswith(input.principal.id, "probe-")\n')

    document = impact(await preview("--policy-dir", str(reads_id), "--json", env=env), 0)

    # Insights by two users are two inputs now; the app and the anonymous one are one each.
    assert document["log"] == {"decisions": LOGGED_DECISIONS, "inputs": 4, "revisions": 1}


@pytest.mark.parametrize("since", ["7", "0d", "1y", "-3h"])
async def test_preview_refuses_a_since_that_is_not_a_duration(env: dict[str, str], since: str) -> None:
    result = await preview("--policy-dir", str(SHIPPED_POLICIES), "--since", since, env=env)

    assert result.exit_code == 2, result.output
    assert "is not a duration such as 30m, 12h, 7d or 2w" in " ".join(result.output.split())


async def test_preview_of_a_policy_that_gives_no_decision_for_a_logged_input_exits_1(env: dict[str, str], tmp_path: Path) -> None:
    # It answers the probes a reload asks, but leaves VideoStats.shares, which Public asked, undecided.
    silent = proposal(tmp_path / "silent", lambda data: None)
    authz = silent / "gateway" / "authz.rego"
    authz.write_text(
        authz.read_text().replace(
            "fields[requested.path] := field_verdict(requested) if {\n\tsome requested in input.fields\n",
            'fields[requested.path] := field_verdict(requested) if {\n\tsome requested in input.fields\n\trequested.coordinate != "VideoStats.shares"\n',
        )
    )

    document = impact(await preview("--policy-dir", str(silent), "--json", env=env), 1)

    [failure] = document["failures"]
    assert {key: failure[key] for key in ("policy", "principal_kind", "error", "decisions")} == {
        "policy": "proposed",
        "principal_kind": "anonymous",
        "error": "the policy gave no decision for video.stats.shares",
        "decisions": 1,
    }
    assert document["flipped"]["decisions"] == 1
    assert document["access_changes"] == []


async def test_preview_of_a_policy_that_reads_a_video_id_through_the_field_object_shows_what_it_refuses(
    env: dict[str, str], tmp_path: Path
) -> None:
    """A rule that reaches v-preview's id without naming `arguments.id` (through the field object),
    in a policy that lists no access.arguments: it is given every argument's value, the logged ids
    among them, as it is when serving."""
    held = proposal(tmp_path / "held", lambda data: data["access"].pop("arguments"))
    authz = held / "gateway" / "authz.rego"
    denials = "\treason := granularity_refusal(requested.coordinate, granularity)\n}"
    source = authz.read_text()
    assert denials in source
    authz.write_text(source.replace(denials, denials + ' | {"v-preview is held" |\n\tsome value in requested\n\tis_object(value)\n\tvalue.id == "v-preview"\n}'))

    document = impact(await preview("--policy-dir", str(held), "--json", env=env), 1)

    assert {(change["principal_kind"], change["coordinate"], change["after"]) for change in document["access_changes"]} == {
        ("user", "Query.video", "denied"),
        ("app", "Query.video", "denied"),
        ("anonymous", "Query.video", "denied"),
    }
    assert document["failures"] == []
