"""What a policy reads, from its Rego: who the principal is, and which arguments' values it is given."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.policy.fields import WITHHELD
from gateway.policy.reads import PolicyReads, arguments_read, arguments_refusal, policy_reads, principal_keys_read, withhold_arguments
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


def rule(*body: str) -> str:
    """A rule deciding on the fields it takes up as `requested`, with `body`."""
    return "deny contains requested.path if {\n\tsome requested in input.fields\n" + "".join(f"\t{line}\n" for line in body) + "}\n"


HELD = 'held(field) if field.arguments.id == "v1"\n'


@pytest.mark.parametrize(
    ("source", "named"),
    [
        pytest.param(rule('requested.arguments.granularity == "MINUTE"'), {"granularity"}, id="dotted"),
        pytest.param(rule('requested.arguments["from"] < "2020"'), {"from"}, id="indexed-by-a-literal"),
        pytest.param(rule("object.get(requested.arguments, \"to\", null) == null"), {"to"}, id="object-get"),
        pytest.param(rule("requested.arguments.first > requested.arguments.after"), {"first", "after"}, id="several"),
        pytest.param(rule('requested.coordinate == "Video.id"', 'startswith(requested.field, "__")'), set(), id="keys-only"),
        pytest.param('allow if input.principal.kind == "user"', set(), id="no-fields"),
        pytest.param(rule("held(requested)") + HELD, {"id"}, id="through-a-function"),
        pytest.param(rule("held(requested.coordinate, requested)") + 'held(c, field) if field.arguments.id == c\n', {"id"}, id="second-parameter"),
        pytest.param("# requested.arguments[k] in a comment\n" + rule("requested.arguments.id"), {"id"}, id="comment"),
        pytest.param(rule('x := "# not a comment"', "requested.arguments[k] == 1"), None, id="hash-in-a-string"),
        pytest.param(rule("requested.arguments[k] == 1"), None, id="computed-key"),
        pytest.param(rule("args := requested.arguments"), None, id="arguments-passed-on"),
        pytest.param(rule("some name, value in requested.arguments"), None, id="arguments-iterated"),
        pytest.param(rule("some value in requested", "is_object(value)", 'value.id == "v1"'), None, id="field-iterated"),
        pytest.param(rule("value := requested[_]", 'value.id == "v1"'), None, id="field-indexed"),
        pytest.param(rule("r := requested", 'r.arguments.id == "v1"'), None, id="field-aliased"),
        pytest.param(rule("x := [requested]"), None, id="field-in-an-array"),
        pytest.param(rule('requested == {"path": "video"}'), None, id="field-compared"),
        pytest.param(rule('object.get(requested, "arguments", {}).id == "v1"'), None, id="builtin-given-the-field"),
        pytest.param(rule('contains(json.marshal(requested), "v1")'), None, id="marshalled"),
        pytest.param(rule("held(requested)") + 'held(field) if {\n\twalk(field, [_, value])\n\tvalue == "v1"\n}\n', None, id="walked-in-a-function"),
        pytest.param(rule("held(requested)") + 'held({"arguments": a}) if a.id == "v1"\n', None, id="taken-apart-by-a-parameter"),
        pytest.param(rule("undefined_here(requested)"), None, id="a-function-not-defined-here"),
        pytest.param('deny if input.fields[0].arguments.id == "v1"', None, id="fields-indexed"),
        pytest.param("deny if count(input.fields) > 3", set(), id="fields-counted"),
        pytest.param(rule('regex.match("^Video\\\\.[a-z]+$", requested.coordinate)'), set(), id="a-dollar-in-a-string"),
        # What a red team wrote to reach an argument unseen (the first reading of the Rego missed each).
        pytest.param(rule("refused(requested)") + "refused(\n\theld_field,\n) if held_field.arguments.id == \"v1\"\n", {"id"}, id="a-head-over-lines"),
        pytest.param(
            rule("held(requested)") + 'held({\n\t"path": _,\n\t"arguments": {"id": "v1"},\n}) := true\n', None, id="a-pattern-head-over-lines"
        ),
        pytest.param(rule('object.get(requested, ["arguments", "id"], "") == "v1"') + "get(f, name) := f.coordinate\n", None, id="a-builtin-named-like-a-function"),
        pytest.param(rule("walk(requested, [path, value])") + "debug if {\n\tsome requested in input.fields\n\twalk(requested) = [path, value]\n}\n", None, id="a-body-line-like-a-head"),
        pytest.param(rule("refused(requested) with refused as held") + "refused(f) if f.coordinate == \"x\"\nheld(f) if f.arguments.id == \"v1\"\n", None, id="a-function-replaced-with-with"),
        pytest.param(rule("checks.held(requested)") + 'checks.held(f) if f.arguments.id == "v1"\n', None, id="a-ref-head-function"),
        pytest.param(rule('outside([1, 2], "x", requested)') + 'outside([lo, hi], _, f) if f.arguments.id == "v1"\n', {"id"}, id="commas-inside-a-parameter"),
        pytest.param(rule("some value in input.fields[_].arguments", "held(value)") + "held(true)\n", None, id="input-fields-indexed-in-a-binding"),
        pytest.param(rule("ok := held", '(requested).arguments.id == "v1"') + "held(f) if f.coordinate == \"x\"\n", None, id="parenthesised-after-a-name"),
        pytest.param(rule("count(requested) > 1") + "count(x) := 0\n", None, id="count-redefined"),
        # What a third red team wrote, once those were closed.
        pytest.param(
            "import future.keywords.if\n\nheld(f) if f.arguments.id == \"v1\"\n\ndefault held(_) := false\n" + rule("held(requested)"),
            {"id"},
            id="a-head-after-an-import-ending-in-if",
        ),
        pytest.param("default held(_) := false\n\n  held(f) if f.arguments.id == \"v1\"\n" + rule("held(requested)"), None, id="an-indented-head"),
        pytest.param(
            "import data.lib.object\n" + rule('object.get(requested.arguments, "granularity", null) == "v1"'), None, id="object-imported"
        ),
        pytest.param(rule('data.lib.object.get(requested.arguments, "granularity", null) == "v1"'), None, id="object-get-as-a-suffix"),
        pytest.param("import data.lib.leak as count\ndeny if count(input.fields) > 0\n", None, id="count-imported"),
        pytest.param(rule('object.get(requested.arguments, "granularity", null) == "v1"') + "  object.get(a, k, d) := a.id\n", None, id="object-get-indented"),
        pytest.param("import data.lib.is_held as held\n" + rule("held(requested)") + "held(f) if f.coordinate == \"x\"\n", None, id="an-import-alias"),
        pytest.param("import data.lib\n" + rule("lib.held(requested)") + "lib.held(f) if f.coordinate == \"x\"\n", None, id="an-imported-package"),
        # And a fourth's.
        pytest.param(
            "notice := data.notices.default\n\nheld(f) if f.arguments.id == \"v1\"\n\ndefault held(_) := false\n" + rule("held(requested)"),
            {"id"},
            id="a-head-after-a-data-key-named-like-a-keyword",
        ),
        pytest.param(rule("held(requested)") + "held(f) if {\n\tf.coordinate == \"x\"\n} held(g) if g.arguments.id == \"v1\"\n", None, id="a-rule-after-a-closing-brace"),
        pytest.param(rule("held(requested)") + 'holds := {"v1"}; held(g) if g.arguments.id in holds\n', None, id="rules-split-by-a-semicolon"),
        pytest.param('import data.lib["object"]\n' + rule('object.get(requested.arguments, "granularity", null) == "v1"'), None, id="a-bracketed-import"),
        pytest.param(rule('data.lib. object.get(requested.arguments, "granularity", null) == "v1"'), None, id="a-space-after-a-dot"),
        pytest.param(rule("held(requested)") + 'lib["held"](g) if g.arguments.id == "v1"\nheld(f) if f.coordinate == "x"\n', None, id="a-bracketed-ref-head"),
        pytest.param("deny if walk(input, [p, v])", None, id="whole-input"),
    ],
)
def test_which_arguments_a_policy_names(source: str, named: set[str] | None) -> None:
    assert arguments_read([source]) == (None if named is None else frozenset(named))


@pytest.mark.parametrize(
    "helper",
    [
        pytest.param("package lib\n\nwalk(f, _) if f.coordinate == \"x\"\n", id="named-like-a-builtin"),
        pytest.param("package x.sub\n\nheld(f) if f.coordinate == \"x\"\n", id="named-like-the-callers"),
    ],
)
def test_a_call_is_followed_into_its_own_module_only(helper: str) -> None:
    """A function another module defines is not the one an unqualified call reaches (the builtin,
    or the caller's package's own): following it would follow the wrong parameter."""
    caller = "package x\n\n" + rule("walk(requested, [_, \"v1\"])", "held(requested)")

    assert arguments_read([caller, helper]) is None


def test_a_call_is_followed_into_every_module_of_its_package() -> None:
    """A fifth red team's: the default beside the caller, the rule that reads the id in a module
    of its own, of the same package (the engine merges them)."""
    caller = "package x\n\n" + rule("held(requested)") + "default held(_) := false\n"
    hold = 'package x\n\nheld(g) if g.arguments.id == "v1"\n'

    assert arguments_read([caller, hold]) == {"id"}
    assert arguments_read([caller, hold.replace("package x", "package y")]) == set()


def test_the_shipped_policy_is_given_the_granularity_only() -> None:
    """No rule of the shipped policy reads which video, creator or window is asked for: its
    decisions are made per class of principal and question, not per creator and video."""
    files = PolicyFiles.read(POLICIES)

    assert policy_reads(files) == PolicyReads(principal=frozenset({"app"}), arguments=frozenset({"granularity"}))
    assert arguments_read(files.modules.values()) == {"granularity"}
    assert arguments_refusal(files) is None


def policy(tmp_path: Path, listed: object, *rules: str) -> PolicyFiles:
    """A policy of `rules`, whose data lists `listed` as access.arguments (nothing when None)."""
    (tmp_path / "x.rego").write_text("package x\n\n" + "".join(rules))
    (tmp_path / "data.json").write_text(json.dumps({"access": {} if listed is None else {"arguments": listed}}))
    return PolicyFiles.read(tmp_path)


@pytest.mark.parametrize(
    ("listed", "rules", "given", "refused"),
    [
        pytest.param(None, [rule("requested.arguments[k] == 1")], None, None, id="nothing-listed-every-value"),
        pytest.param(["granularity"], [rule("requested.arguments.granularity == 1")], {"granularity"}, None, id="listed-and-read"),
        pytest.param(["granularity", "first"], [rule("requested.arguments.granularity == 1")], {"granularity", "first"}, None, id="listed-more"),
        pytest.param(["granularity"], [rule("requested.arguments.id == 1")], {"granularity"}, "reads the argument(s) id, which", id="reads-one-unlisted"),
        pytest.param(["granularity"], [rule("some v in requested")], {"granularity"}, "uses a field object in a way", id="cannot-be-followed"),
        pytest.param("granularity", [rule("requested.arguments.granularity == 1")], None, "must be a list of argument names", id="not-a-list"),
    ],
)
def test_the_arguments_a_policy_lists_are_those_it_is_given_and_must_be_all_it_reads(
    tmp_path: Path, listed: object, rules: list[str], given: set[str] | None, refused: str | None
) -> None:
    files = policy(tmp_path, listed, *rules)

    assert policy_reads(files).arguments == (None if given is None else frozenset(given))
    refusal = arguments_refusal(files)
    assert (refusal is None) if refused is None else (refusal is not None and refused in refusal)


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
