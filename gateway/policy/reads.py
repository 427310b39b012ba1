"""What of its input a policy can read, worked out from its Rego: the decision cache keys on no more.

Two parts of the input vary from request to request without saying anything the shipped policy
decides on: who the principal is (`input.principal.id`, `.app`) and the values of the requested
fields' arguments (which video, which window). A decision is cached per value of those the policy
reads, so a policy that reads neither is decided once per class of principal (kind, scopes) and
question, not once per creator and video.

- The principal's keys are read only through `input.principal`: what the text names is what the
  policy can read, and anything it cannot tell counts as reading both.
- The arguments whose values the policy is given are those its data lists (`access.arguments`);
  every other one is there as "(withheld)", so its decisions depend on the listed values alone,
  by construction. The list is the policy's word that it reads no other, which a reload holds it
  to (`arguments_refusal`): its modules must name no other, and must use field objects only in
  ways `arguments_read` can follow. A reload also decides its probe both ways and refuses a
  revision that decides otherwise (gateway.policy.embedded), in case this reading misses a way.
  A policy that lists nothing is given every value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.policy.fields import WITHHELD
from gateway.policy.worker import PolicyFiles

__all__ = [
    "PRINCIPAL_KEYS",
    "READS_EVERYTHING",
    "PolicyReads",
    "arguments_given",
    "arguments_read",
    "arguments_refusal",
    "policy_reads",
    "principal_keys_read",
    "withhold_arguments",
]


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
_STRING = re.compile(r'"(?:\\.|[^"\\\n])*"|`[^`]*`')
# A template string (`$"…{expr}…"`): code inside a string, which the scan masks.
_TEMPLATE = re.compile(r'\$["`]')
_WITH = re.compile(r"\bwith\b")
# Where a policy takes up field objects: `some f in input.fields`, `every i, f in input.fields`.
_BINDING = re.compile(r"\b(?:some|every)\s+(?:\w+\s*,\s*)?(\w+)\s+in\s+input\s*\.\s*fields\b(?!\s*[\[.])")
_FIELDS = re.compile(r"\binput\s*\.\s*fields\b")
_COUNTED_FIELDS = re.compile(r"(?<![\w.])count\s*\(\s*(input\s*\.\s*fields)\s*\)")
# A rule or function named like the builtins this reading relies on (object.get, count), which
# may make them mean something else.
_SHADOWING = re.compile(r"\s*(?:default\s+)?(?:count|object)\b")
# `import data.a.b` (the name `b` in the module) or `import data.a.b as c` (`c`).
_IMPORT = re.compile(r"^\s*import\s+data\.([\w.]+)(?:\s+as\s+(\w+))?", re.MULTILINE)
# A package or import line: it never goes on, whatever word it ends with (`import future.keywords.if`).
_DECLARATION = re.compile(r"\s*(?:package|import)\b")
# A line that starts a function's head (its name, to the opening parenthesis), and one after
# which the next line goes on with the same statement.
_HEAD_START = re.compile(r"(?:default\s+)?([\w.]+)\s*\(")
_GOES_ON = re.compile(r"(?:(?<!\.)\b(?:if|else|in|contains|not|some|every|with|as|default)|:=|[=!<>+\-*/%&|,(\[{:])\s*$")
# A head of another shape: `lib["held"](f)`.
_ODD_HEAD = re.compile(r"[\w.]*\[[^\n]*?\]\s*\(")
# What may follow a body's closing brace on its line: nothing, else, or more of the same expression.
_AFTER_CLOSING = re.compile(r"\s*(?:$|else\b|if\b|[|&+\-*/,=<>!)\]}])")
# Whitespace around a dot in a ref (`data.lib. object.get`), which the engine reads as one ref.
_SPACED_DOT = re.compile(r"\.\s|\s\.(?=\s*[A-Za-z_])")
# The imports this reading understands: rego.v1, future keywords, and plain `data.a.b [as c]`.
_PLAIN_IMPORT = re.compile(r"import\s+(?:rego\.v1|future\.keywords(?:\.\w+)?|data(?:\.\w+)+(?:\s+as\s+\w+)?)")
# After a field object's name: a key that holds no argument's value, or a named argument.
_PLAIN_KEY = re.compile(r"\s*\.\s*(?:path|coordinate|type|field|alias)\b")
_NAMED_ARGUMENT = re.compile(r'\s*\.\s*arguments\s*(?:\.\s*(\w+)\b|\[\s*"(\w+)"\s*\])')
# `object.get(f.arguments, "name", …)`: before the field object's name, then after it.
_GET_BEFORE = re.compile(r"(?<![\w.])object\s*\.\s*get\s*\(\s*$")
_GOT_ARGUMENT = re.compile(r'\s*\.\s*arguments\s*,\s*"(\w+)"()')


def policy_reads(files: PolicyFiles) -> PolicyReads:
    """What the policy in `files` reads: the principal's keys its modules name, and the arguments
    its data lists in `access.arguments` (every one when it lists none)."""
    return PolicyReads(principal_keys_read(files.modules.values()), arguments_given(files.data_document()))


def arguments_given(data: dict[str, Any]) -> frozenset[str] | None:
    """`access.arguments` of a policy's data: the arguments whose values it is given. None (every
    value) when it is absent or not a list of names (arguments_refusal refuses such a policy)."""
    access = data.get("access")
    listed = access.get("arguments") if isinstance(access, dict) else None
    if not isinstance(listed, list) or not all(isinstance(name, str) for name in listed):
        return None
    return frozenset(listed)


def arguments_refusal(files: PolicyFiles) -> str | None:
    """Why the policy in `files` may not go live as its `access.arguments` stands, or None. Listing
    arguments is the policy's word that it reads no other; its modules must bear that out, as far
    as arguments_read can follow them."""
    data = files.data_document()
    access = data.get("access")
    if not isinstance(access, dict) or "arguments" not in access:
        return None  # given every value
    listed = arguments_given(data)
    if listed is None:
        return "data.json access.arguments must be a list of argument names"
    read = arguments_read(files.modules.values())
    if read is None:
        return (
            "data.json access.arguments lists the only arguments whose values the policy is given, but a module uses a "
            "field object in a way the gateway cannot follow (other than by key, by a named argument, or whole as an "
            "argument of a function its package defines; policies/README.md, \"Arguments\"): rewrite it, or remove "
            "access.arguments to give the policy every argument's value"
        )
    unlisted = sorted(read - listed)
    if unlisted:
        return (
            f"a module reads the argument(s) {', '.join(unlisted)}, which data.json access.arguments does not list: "
            'the policy would be given "(withheld)" for them; list them'
        )
    return None


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
    """The argument names Rego `sources` (its modules) read, or None where it cannot follow them.
    A lint behind the list a policy's data gives (arguments_refusal), not a proof: it reads text,
    not the engine's parse, and leans to None wherever it is unsure.

    Field objects enter a policy only as `some f in input.fields` (or `every`), and flow on only as
    a whole argument of a function the calling package defines, in any of its modules (whose
    parameter is then a field object too). Every use of a field object must be one of: a key
    other than the arguments (`f.path`, `f.coordinate`, …), a named argument (`f.arguments.x`,
    `f.arguments["x"]`, `object.get(f.arguments, "x", …)`), or such a function argument. Anything
    else may reach any argument's value, and gives None: `input.fields` used otherwise (but for
    `count`), `input` as a whole, a field object iterated, compared, aliased, indexed or given to
    a builtin or to another package's function (any dotted name); a definition this reading
    cannot place (a head not at column 0 after a finished line, a ref head, two rules on a line)
    or whose parameter is a pattern; `with`; a template string; whitespace around a dot; an
    import other than a plain `data.a.b`, or a function named like one; or a rule named like a
    builtin this reading relies on."""
    modules = [_Module.read(source) for source in sources]
    read = [module for module in modules if module is not None]
    if len(read) < len(modules):
        return None
    bindings = {module: list(_BINDING.finditer(module.masked)) for module in read}
    # A package's functions, from every module of it: the engine merges them.
    heads: dict[str, dict[str, list[list[str]]]] = {}
    for module in read:
        for function, definitions in module.heads.items():
            heads.setdefault(module.package, {}).setdefault(function, []).extend(definitions)
    if any(module.imported & heads.get(module.package, {}).keys() for module in read):
        return None  # a function named like an import: which one a call means is not this reading's to say
    named: set[str] = set()
    field_objects = {binding.group(1) for found in bindings.values() for binding in found}
    pending = list(field_objects)
    while pending:
        name = pending.pop()
        for module, found in bindings.items():
            bound_at = {binding.start(1) for binding in found}
            for use in re.finditer(rf"(?<![\w.]){re.escape(name)}\b", module.masked):
                if use.start() in bound_at or _PLAIN_KEY.match(module.masked, use.end()):
                    continue
                argument = _NAMED_ARGUMENT.match(module.code, use.end())
                if argument is None and _GET_BEFORE.search(module.masked[max(0, use.start() - 200) : use.start()]):
                    argument = _GOT_ARGUMENT.match(module.code, use.end())
                if argument is not None:
                    named.add(argument.group(1) or argument.group(2))
                    continue
                params = _parameters_given(module.masked, use.start(), use.end(), heads.get(module.package, {}))
                if params is None:
                    return None
                for param in params:
                    if param not in field_objects:
                        field_objects.add(param)
                        pending.append(param)
    return frozenset(named)


@dataclass(frozen=True, eq=False)
class _Module:
    """One Rego module as this reading sees it: its text without comments (`code`), the same with
    every string's content blanked (`masked`, same offsets), its package, its functions' heads and
    the names its imports bind."""

    code: str
    masked: str
    package: str
    heads: dict[str, list[list[str]]]
    imported: frozenset[str]  # the names its imports bind

    @classmethod
    def read(cls, source: str) -> _Module | None:
        """The module, or None when it may use field objects or arguments in ways not followed."""
        code = _code(source)
        masked = _STRING.sub(lambda match: '"' + " " * (len(match.group(0)) - 2) + '"', code)  # offsets kept
        if _WHOLE_INPUT.search(masked) or _TEMPLATE.search(masked) or _WITH.search(masked) or _SPACED_DOT.search(masked):
            return None
        imports = [line.strip() for line in masked.split("\n") if re.match(r"\s*import\b", line)]
        if not all(_PLAIN_IMPORT.fullmatch(line) for line in imports):
            return None
        imported = frozenset(match.group(2) or match.group(1).rsplit(".", 1)[-1] for match in _IMPORT.finditer(masked))
        if imported & {"object", "count"}:
            return None
        allowed = {binding.end() for binding in _BINDING.finditer(masked)} | {counted.end(1) for counted in _COUNTED_FIELDS.finditer(masked)}
        if not {match.end() for match in _FIELDS.finditer(masked)} <= allowed:
            return None  # input.fields used other than to take up its fields one by one
        heads = _heads(masked)
        package = re.search(r"^package\s+([\w.]+)", masked, re.MULTILINE)
        return None if heads is None else cls(code, masked, package.group(1) if package else "", heads, imported)


def _heads(masked: str) -> dict[str, list[list[str]]] | None:
    """Every function head, by name: its parameters as written. A head starts a line at column 0,
    outside brackets, after a line that does not go on; None when one cannot be read whole, when
    one is indented, or when a rule is named like a builtin this reading relies on."""
    heads: dict[str, list[list[str]]] = {}
    depth, offset, previous = 0, 0, ""
    for line in masked.split("\n"):
        starts = depth == 0 and not _GOES_ON.search(previous)
        head = _HEAD_START.match(line) if starts else None
        if head is not None:
            params = _arguments_at(masked, offset + head.end())
            if params is None or "." in head.group(1):
                return None  # unclosed, or a ref head (`lib.held(f)`), which another package's call may reach
            heads.setdefault(head.group(1), []).append(params)
        elif starts and (_HEAD_START.match(line.lstrip()) or _ODD_HEAD.match(line.lstrip())):
            return None  # an indented head, or a head of a shape not read: a definition this reading would miss
        if starts and _SHADOWING.match(line):
            return None
        for char in line:
            depth += 1 if char in "([{" else -1 if char in ")]}" else 0
            if char == ";" and depth == 0:
                return None  # two rules on a line
        closing = line.rfind("}")
        if depth == 0 and closing >= 0 and not starts and not _AFTER_CLOSING.match(line[closing + 1 :]):
            return None  # something after a body's closing brace: another rule on its line
        if line.strip():
            previous = "" if _DECLARATION.match(line) else line
        offset += len(line) + 1
    return heads


def _arguments_at(code: str, start: int) -> list[str] | None:
    """What is written between code[start - 1] (an opening parenthesis) and its closing one, split
    at its own commas; None when it does not close."""
    depth, at, items, item_start = 0, start, [], start
    while at < len(code):
        char = code[at]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                items.append(code[item_start:at].strip())
                return [item for item in items if item] if items[-1] == "" else items
            depth -= 1
        elif char == "," and depth == 0:
            items.append(code[item_start:at].strip())
            item_start = at + 1
        at += 1
    return None


def _parameters_given(code: str, start: int, end: int, heads: dict[str, list[list[str]]]) -> list[str] | None:
    """When code[start:end] is a whole argument of a call to a function its package defines by a
    plain name (or a parameter of its head), that parameter in each of its definitions; otherwise
    None."""
    if not re.match(r"\s*[,)]", code[end:]) or not re.search(r"[(,]\s*$", code[:start]):
        return None
    depth, commas, at = 0, 0, start - 1
    while at >= 0:
        char = code[at]
        if char in ")]}":
            depth += 1
        elif char in "([{":
            if depth == 0:
                break
            depth -= 1
        elif char == "," and depth == 0:
            commas += 1
        at -= 1
    if at < 0 or code[at] != "(":
        return None  # inside an array, set, object or index: not a call
    callee = re.search(r"(?<![\w.])([\w.]+)$", code[:at])  # `f(`: a name right before the parenthesis
    definitions = heads.get(callee.group(1)) if callee else None
    if not definitions:
        return None  # a builtin (walk, json.marshal, …), another package's function, or nothing this package defines
    params: list[str] = []
    for definition in definitions:
        if commas >= len(definition) or not re.fullmatch(r"\w+", definition[commas]):
            return None  # another arity, or a pattern that takes the field object apart
        if definition[commas] != "_":
            params.append(definition[commas])
    return params


def withhold_arguments(fields: Sequence[dict[str, Any]], given: frozenset[str] | None) -> list[dict[str, Any]]:
    """Field inputs as a policy given the values of `given` only sees them: every other argument's
    value "(withheld)" (None: every value). The same list when nothing is withheld."""
    if given is None or all(name in given or value == WITHHELD for each in fields for name, value in each["arguments"].items()):
        return list(fields)
    return [
        {**each, "arguments": {name: value if name in given else WITHHELD for name, value in each["arguments"].items()}}
        for each in fields
    ]


def _code(source: str) -> str:
    """Rego `source` without its comments (a `#` inside a string starts none)."""
    return _STRING_OR_COMMENT.sub(lambda match: match.group(1) or "", source)
