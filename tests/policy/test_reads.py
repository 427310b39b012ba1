"""What a policy reads, from its Rego: who the principal is, and which arguments' values it is given."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.policy.fields import WITHHELD
from gateway.policy.reads import arguments_read, policy_reads, principal_keys_read, withhold_arguments
from gateway.policy.worker import PolicyFiles

POLICIES = Path(__file__).parents[2] / "policies"

BOTH = {"id", "app"}


@pytest.mark.parametrize(
    ("source", "reads"),
    [
        pytest.param('allow if input.principal.kind == "user"', set(), id="kind"),
        pytest.param('allow if "stats" in input.principal.scopes', set(), id="scopes"),
        pytest.param('allow if object.get(input.principal, "kind", "") == "app"', set(), id="get-kind"),
        pytest.param('allow if input.principal.id == "u1"', BOTH, id="id"),
        pytest.param('allow if input.principal.app == "app_x"', {"app"}, id="app"),
        pytest.param('allow if object.get(input.principal, "app", "") == "app_x"', {"app"}, id="get-app"),
        pytest.param('allow if input.principal.app == "app_x"\ndeny if input.principal.id == "u1"', BOTH, id="app-and-id"),
        pytest.param('allow if input.principal["app"] == "app_x"', BOTH, id="indexed-app"),
        pytest.param('allow if input.principal["id"] == "u1"', BOTH, id="indexed"),
        pytest.param('allow if input.principal.application == "x"', BOTH, id="another-key"),
        pytest.param("p := input.principal", BOTH, id="whole-principal"),
        pytest.param("i := input", BOTH, id="whole-input"),
        pytest.param('# input.principal.id in a comment\nallow if input.principal.kind == "user"', set(), id="comment"),
    ],
)
def test_what_counts_as_reading_who_the_principal_is(source: str, reads: set[str]) -> None:
    assert principal_keys_read([source]) == reads


def test_the_shipped_policy_reads_the_app_but_never_the_users_id() -> None:
    """obligations.registered_documents_only is set per app: decisions are cached per app, and one
    decision still serves every user of it (and every user and anonymous client alike)."""
    assert principal_keys_read(PolicyFiles.read(POLICIES).modules.values()) == {"app"}


@pytest.mark.parametrize(
    ("source", "named"),
    [
        pytest.param('deny if requested.arguments.granularity == "MINUTE"', {"granularity"}, id="dotted"),
        pytest.param('deny if requested.arguments["from"] < "2020"', {"from"}, id="indexed-by-a-literal"),
        pytest.param('deny if object.get(requested.arguments, "to", null) == null', {"to"}, id="object-get"),
        pytest.param("deny if input.fields[_].arguments.first > 100", {"first"}, id="through-input"),
        pytest.param("a := r.arguments.granularity\nb := r.arguments . first", {"granularity", "first"}, id="several"),
        pytest.param('allow if input.principal.kind == "user"', set(), id="none"),
        pytest.param('# requested.arguments[k] in a comment\nx := r.arguments.id', {"id"}, id="comment"),
        pytest.param('x := "# not a comment"; y := r.arguments[k]', None, id="hash-in-a-string"),
        pytest.param("deny if requested.arguments[k] == 1", None, id="computed-key"),
        pytest.param("args := requested.arguments", None, id="passed-on"),
        pytest.param("some name, value in requested.arguments", None, id="iterated"),
        pytest.param('deny if object.get(requested, "arguments", {}).id == "v1"', None, id="the-word-in-a-string"),
        pytest.param('x := f(requested.arguments, "id")', None, id="a-function-given-the-object"),
        pytest.param("deny if walk(input, [p, v])", None, id="whole-input"),
        pytest.param('deny if requested["arguments"]["id"] == "v1"', None, id="indexed-arguments"),
    ],
)
def test_which_arguments_a_policy_names(source: str, named: set[str] | None) -> None:
    assert arguments_read([source]) == (None if named is None else frozenset(named))


def test_the_shipped_policy_is_given_the_granularity_only() -> None:
    """No rule of the shipped policy reads which video, creator or window is asked for: its
    decisions are made per class of principal and question, not per creator and video."""
    reads = policy_reads(PolicyFiles.read(POLICIES).modules.values())

    assert reads.arguments == {"granularity"}
    assert reads.principal == {"app"}


def test_withholding_keeps_every_argument_but_only_named_values() -> None:
    fields = [
        {"path": "video", "arguments": {"id": "v1"}},
        {"path": "video.shareTimeline", "arguments": {"granularity": "DAY", "from": "2026-12-01T00:00:00+00:00", "to": None}},
    ]

    seen = withhold_arguments(fields, frozenset({"granularity"}))

    assert [field["arguments"] for field in seen] == [{"id": WITHHELD}, {"granularity": "DAY", "from": WITHHELD, "to": WITHHELD}]
    assert fields[0]["arguments"] == {"id": "v1"}, "the question asked is left as it was"
    assert withhold_arguments(fields, None) == fields
    assert withhold_arguments(fields, frozenset({"id", "granularity", "from", "to"})) == fields
