"""What of its input a policy can read, worked out from its Rego: the decision cache keys on no more.

Two parts of the input vary from request to request without saying anything the shipped policy
decides on: who the principal is (`input.principal.id`, `.app`) and the values of the requested
fields' arguments (which video, which window). A decision is cached per value of those the policy
reads, so a policy that reads neither is decided once per class of principal (kind, scopes) and
question, not once per creator and video.

- The principal's keys are read only through `input.principal`: what the text names is what the
  policy can read, and anything it cannot tell counts as reading both.
- Arguments are reached through field objects bound to any variable, so the text cannot show that
  a value is never read. Instead the policy is given only the values of the arguments its modules
  name (`.arguments.x`, `.arguments["x"]`, `object.get(….arguments, "x", …)`); every other
  argument is there with the value "(withheld)". A decision then depends on the named values
  alone, by construction. A module that reaches arguments any other way (a computed key, the
  arguments object passed on whole, `input` as a whole) is given them all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.policy.fields import WITHHELD

__all__ = ["PRINCIPAL_KEYS", "READS_EVERYTHING", "PolicyReads", "arguments_read", "policy_reads", "principal_keys_read", "withhold_arguments"]


# What in input.principal, beside its kind and scopes, says who the principal is: the user's id and
# the app's. A decision depends on the ones the policy reads, and is cached per value of those.
PRINCIPAL_KEYS = frozenset({"id", "app"})


@dataclass(frozen=True)
class PolicyReads:
    """Which of PRINCIPAL_KEYS a policy may read, and the argument names whose values it is given
    (None: every argument's)."""

    principal: frozenset[str]
    arguments: frozenset[str] | None


# What a policy that cannot be read (an OPA server's) is assumed to read.
READS_EVERYTHING = PolicyReads(PRINCIPAL_KEYS, None)

# A string literal (kept: its text is code to these scans) or a comment (dropped).
_STRING_OR_COMMENT = re.compile(r'("(?:\\.|[^"\\\n])*"|`[^`]*`)|#[^\n]*')
# input.principal, and the key read from it if any: `.key`, or object.get(input.principal, "key", …).
_PRINCIPAL = re.compile(r"input\s*\.\s*principal\b(?:\s*\.\s*(\w+)\b|\s*,\s*\"(\w+)\")?")
# What every decision may depend on: the cache keys on them whatever the policy reads.
_ALWAYS_KEYED = frozenset({"kind", "scopes"})
_WHOLE_INPUT = re.compile(r"\binput\b(?!\s*\.)")
_ARGUMENTS = re.compile(r"\barguments\b")
# After `arguments`: `.name` or `["name"]`.
_NAMED = re.compile(r'\s*(?:\.\s*(\w+)\b|\[\s*"(\w+)"\s*\])')
# `object.get(<ref>.arguments, "name", …)`: before `arguments`, then after it.
_GET_BEFORE = re.compile(r"object\s*\.\s*get\s*\(\s*[\w.]*$")
_GET_AFTER = re.compile(r'\s*,\s*"(\w+)"')


def policy_reads(sources: Iterable[str]) -> PolicyReads:
    sources = list(sources)
    return PolicyReads(principal_keys_read(sources), arguments_read(sources))


def principal_keys_read(sources: Iterable[str]) -> frozenset[str]:
    """Conservatively, which of `input.principal.id` and `.app` Rego `sources` can read. `.app`
    (or `object.get(input.principal, "app", …)`) reads the app only; any other use of
    input.principal beyond its `.kind` and `.scopes` (`.id`, `["app"]`, the whole object passed
    on) counts as reading both, and so does any use of `input` as a whole."""
    read: set[str] = set()
    for source in sources:
        code = _code(source)
        if _WHOLE_INPUT.search(code):
            return PRINCIPAL_KEYS
        for match in _PRINCIPAL.finditer(code):
            key = match.group(1) or match.group(2)
            if key == "app":
                read.add("app")
            elif key not in _ALWAYS_KEYED:
                return PRINCIPAL_KEYS
    return frozenset(read)


def arguments_read(sources: Iterable[str]) -> frozenset[str] | None:
    """The argument names Rego `sources` name, or None when they may reach arguments otherwise: a
    computed key (`arguments[k]`), the arguments object passed on or iterated, the word in a
    string (`object.get(field, "arguments", …)`), or `input` as a whole."""
    named: set[str] = set()
    for source in sources:
        code = _code(source)
        if _WHOLE_INPUT.search(code):
            return None
        for match in _ARGUMENTS.finditer(code):
            after = _NAMED.match(code, match.end())
            if after is not None:
                named.add(after.group(1) or after.group(2))
                continue
            got = _GET_AFTER.match(code, match.end())
            if got is not None and _GET_BEFORE.search(code[max(0, match.start() - 200) : match.start()]):
                named.add(got.group(1))
                continue
            return None
    return frozenset(named)


def withhold_arguments(fields: Sequence[dict[str, Any]], named: frozenset[str] | None) -> list[dict[str, Any]]:
    """Field inputs as a policy that names only `named` is given them: every other argument's value
    "(withheld)". The same list when nothing is withheld."""
    if named is None or all(name in named or value == WITHHELD for each in fields for name, value in each["arguments"].items()):
        return list(fields)
    return [
        {**each, "arguments": {name: value if name in named else WITHHELD for name, value in each["arguments"].items()}}
        for each in fields
    ]


def _code(source: str) -> str:
    """Rego `source` without its comments (a `#` inside a string starts none)."""
    return _STRING_OR_COMMENT.sub(lambda match: match.group(1) or "", source)
