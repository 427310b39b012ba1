"""Compliance tooling: run the policy's own Rego tests, and check the policy against the schema.

Every `test_` rule of every `*_test.rego` runs on the embedded engine, one at a time, in a
worker process (see `gateway.policy.worker`). A test that crashes the engine takes only
that worker down: it FAILs with the reason, and a fresh worker runs the next test.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLInterfaceType, GraphQLObjectType, GraphQLSchema, build_schema

from gateway.auth import PrincipalKind
from gateway.errors import PolicyUnavailable
from gateway.policy.decision import ENTRYPOINT, parse_decision
from gateway.policy.reads import arguments_refusal, policy_reads
from gateway.policy.worker import PolicyFiles, RegoWorker, WorkerError, WorkerLoadError

__all__ = [
    "PolicyCheck",
    "PolicyTest",
    "PolicyTestResult",
    "PolicyTestRun",
    "check_policy",
    "discover_tests",
    "run_tests",
    "schema_coordinates",
]

# How long loading the modules into a fresh worker may take.
LOAD_TIMEOUT = 30.0

_PACKAGE = re.compile(r"^package\s+([A-Za-z_][\w.]*)", re.MULTILINE)
# Rules start at the beginning of a line; a test rule's name starts with `test_`.
_TEST_RULE = re.compile(r"^(test_\w*)\b", re.MULTILINE)
_STATEMENT_START = re.compile(r"^(?=[A-Za-z_#])", re.MULTILINE)
# `Type.field` (introspection types and fields start with `__`).
_COORDINATE = re.compile(r"^_*[A-Z]\w*\.[_A-Za-z]\w*$")


@dataclass(frozen=True)
class PolicyTest:
    file: str
    package: str
    rule: str

    @property
    def name(self) -> str:
        return f"{self.package}.{self.rule}"

    @property
    def entrypoint(self) -> str:
        return f"{self.package.replace('.', '/')}/{self.rule}"


@dataclass(frozen=True)
class PolicyTestResult:
    test: PolicyTest
    passed: bool
    reason: str | None  # why it failed
    seconds: float


@dataclass
class PolicyTestRun:
    results: list[PolicyTestResult] = field(default_factory=list)
    # The modules did not load (a parse error): no test ran.
    load_error: str | None = None

    @property
    def failures(self) -> list[PolicyTestResult]:
        return [result for result in self.results if not result.passed]


def discover_tests(files: PolicyFiles) -> list[PolicyTest]:
    tests: list[PolicyTest] = []
    for name, source in files.tests.items():
        package = _PACKAGE.search(source)
        if package is None:
            continue
        # A rule defined in several bodies is one test.
        for rule in dict.fromkeys(_TEST_RULE.findall(source)):
            tests.append(PolicyTest(name, package.group(1), rule))
    return tests


async def run_tests(
    files: PolicyFiles,
    *,
    timeout: float = 10.0,
    on_result: Callable[[PolicyTestResult], None] | None = None,
) -> PolicyTestRun:
    """Runs every test of the policy, each with `timeout` seconds; a crash or an overrun is that test's FAIL."""
    run = PolicyTestRun()
    tests = discover_tests(files)
    if not tests:
        return run
    modules = {**files.modules, **files.tests}
    entrypoints = [test.entrypoint for test in tests]

    def record(result: PolicyTestResult) -> None:
        run.results.append(result)
        if on_result is not None:
            on_result(result)

    worker: RegoWorker | None = None
    try:
        for index, test in enumerate(tests):
            if worker is None or not worker.alive:
                if worker is not None:
                    await worker.close()
                try:
                    worker = await RegoWorker.start(modules, files.data, entrypoints=entrypoints, timeout=LOAD_TIMEOUT)
                except WorkerLoadError as exc:
                    run.load_error = str(exc)
                    return run
                except WorkerError:
                    # Building every test into one bundle took the engine down: build each test
                    # alone, so that only the culprit fails.
                    await _run_each_alone(files, tests[index:], timeout, record, run)
                    return run
            record(await _run_one(worker, test, timeout))
    finally:
        if worker is not None:
            await worker.close()
    return run


async def _run_each_alone(
    files: PolicyFiles,
    tests: list[PolicyTest],
    timeout: float,
    record: Callable[[PolicyTestResult], None],
    run: PolicyTestRun,
) -> None:
    """Runs each test on a bundle of the policy and that test alone (rego-cpp compiles every
    rule it is given, so a rule that crashes it crashes any bundle that holds it)."""
    worker: RegoWorker | None = None
    try:
        for test in tests:
            started = time.perf_counter()
            modules = {
                **files.modules,
                **{name: _without_tests(source, keep=test.rule if name == test.file else None) for name, source in files.tests.items()},
            }
            if worker is not None:
                await worker.close()
            try:
                worker = await RegoWorker.start(modules, files.data, entrypoints=[test.entrypoint], timeout=LOAD_TIMEOUT)
            except WorkerLoadError as exc:
                run.load_error = str(exc)
                return
            except WorkerError as exc:
                worker = None
                record(PolicyTestResult(test, False, str(exc), time.perf_counter() - started))
                continue
            record(await _run_one(worker, test, timeout))
    finally:
        if worker is not None:
            await worker.close()


def _without_tests(source: str, keep: str | None) -> str:
    """The module without its test rules but `keep`. A top-level statement starts at the
    beginning of a line; the lines that continue it are indented or close a bracket."""
    statements = _STATEMENT_START.split(source)
    return "".join(
        statement
        for statement in statements
        if (rule := _TEST_RULE.match(statement)) is None or rule.group(1) == keep
    )


async def _run_one(worker: RegoWorker, test: PolicyTest, timeout: float) -> PolicyTestResult:
    started = time.perf_counter()
    try:
        reply = await worker.request({"op": "evaluate", "entrypoint": test.entrypoint}, timeout)
    except WorkerError as exc:
        return PolicyTestResult(test, False, str(exc), time.perf_counter() - started)
    seconds = time.perf_counter() - started
    if not reply.get("ok"):
        return PolicyTestResult(test, False, f"error: {reply.get('error')}", seconds)
    if reply.get("undefined"):
        return PolicyTestResult(test, False, "undefined: a condition of the test does not hold", seconds)
    if reply.get("value") is not True:
        return PolicyTestResult(test, False, f"the test's value is {reply.get('value')!r}, not true", seconds)
    return PolicyTestResult(test, True, None, seconds)


# --- gateway policy check -----------------------------------------------------------------------


@dataclass
class PolicyCheck:
    parse_error: str | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def schema_coordinates(schema: GraphQLSchema) -> list[str]:
    """Every field coordinate a request can select, introspection types left out."""
    return [
        f"{name}.{field_name}"
        for name, graphql_type in sorted(schema.type_map.items())
        if not name.startswith("__") and isinstance(graphql_type, GraphQLObjectType | GraphQLInterfaceType)
        for field_name in graphql_type.fields
    ]


def _named_coordinates(document: Any) -> Iterator[str]:
    """Every key or string in the data document that looks like `Type.field`."""
    if isinstance(document, dict):
        for key, value in document.items():
            if _COORDINATE.match(key):
                yield key
            yield from _named_coordinates(value)
    elif isinstance(document, list):
        for item in document:
            yield from _named_coordinates(item)
    elif isinstance(document, str) and _COORDINATE.match(document):
        yield document


def _in_schema(schema: GraphQLSchema, coordinate: str) -> bool:
    type_name, field_name = coordinate.split(".", 1)
    graphql_type = schema.type_map.get(type_name)
    if not isinstance(graphql_type, GraphQLObjectType | GraphQLInterfaceType):
        return False
    if field_name == "__typename" or field_name in graphql_type.fields:
        return True
    return graphql_type is schema.query_type and field_name in ("__schema", "__type")


def _probe_principals(document: dict[str, Any]) -> list[dict[str, Any]]:
    """One principal of each kind; the app holds every scope the policy data names."""
    access = document.get("access")
    principals = access.get("principals", {}) if isinstance(access, dict) else {}
    app = principals.get("app", {}) if isinstance(principals, dict) else {}
    scopes = sorted(app.get("scopes", {})) if isinstance(app, dict) else []
    return [
        {"kind": kind.value, "id": f"check-{kind.value}", "scopes": scopes if kind is PrincipalKind.APP else []}
        for kind in PrincipalKind
    ]


async def check_policy(files: PolicyFiles, schema_sdl: str, *, timeout: float = 10.0) -> PolicyCheck:
    """Parses every module, checks the coordinates the data names against the schema, and
    lists the schema's fields that no principal kind is allowed: a warning for those data.json
    does not list, a note for those it lists in groups nobody is granted."""
    check = PolicyCheck()
    schema = build_schema(schema_sdl)
    document = files.data_document()
    named = sorted(set(_named_coordinates(document)))
    check.errors.extend(
        f"{coordinate} is named in data.json but is not a field of the schema"
        for coordinate in named
        if not _in_schema(schema, coordinate)
    )
    check.notes.append(f"{len(named)} field coordinates named in data.json")
    refusal = arguments_refusal(files)
    if refusal is not None:
        check.errors.append(refusal)
    given = policy_reads(files).arguments
    check.notes.append(_arguments_note(given))
    known = {
        name
        for graphql_type in schema.type_map.values()
        if isinstance(graphql_type, GraphQLObjectType | GraphQLInterfaceType)
        for field in graphql_type.fields.values()
        for name in field.args
    }
    check.warnings.extend(f"data.json access.arguments lists {name}, which no field of the schema takes" for name in sorted((given or frozenset()) - known))

    try:
        worker = await RegoWorker.start({**files.modules, **files.tests}, files.data, entrypoints=[], timeout=LOAD_TIMEOUT)
    except WorkerError as exc:
        check.parse_error = str(exc)
        return check
    await worker.close()

    try:
        allowed = await _allowed_somewhere(files, schema_coordinates(schema), document, timeout)
    except (WorkerError, PolicyUnavailable) as exc:
        check.errors.append(f"the policy does not answer for the schema's fields: {exc}")
        return check
    never = [coordinate for coordinate in schema_coordinates(schema) if coordinate not in allowed]
    # A field data.json lists in a group no principal is granted is switched off on purpose (e.g.
    # Video.consentedSharers, until compliance grants its group); an unlisted one may be forgotten.
    listed = _listed_coordinates(document)
    off = [coordinate for coordinate in never if coordinate in listed]
    unlisted = [coordinate for coordinate in never if coordinate not in listed]
    if off:
        check.notes.append(f"{len(off)} field(s) listed in groups no principal is granted (off): {', '.join(off)}")
    if unlisted:
        check.warnings.append(f"{len(unlisted)} schema field(s) no policy allows: {', '.join(unlisted)}")
    return check


def _arguments_note(given: frozenset[str] | None) -> str:
    if given is None:
        return (
            "data.json lists no access.arguments: the policy is given every argument's value, and each video, window or page "
            "asked for is decided (and cached) on its own"
        )
    listed = ", ".join(sorted(given)) or "none"
    return f'the arguments whose values the policy is given (data.json access.arguments; the others are "(withheld)"): {listed}'


def _listed_coordinates(document: dict[str, Any]) -> set[str]:
    """The coordinates data.access.fields lists, with their groups."""
    access = document.get("access")
    fields = access.get("fields") if isinstance(access, dict) else None
    return set(fields) if isinstance(fields, dict) else set()


def _field(coordinate: str) -> dict[str, Any]:
    type_name, field_name = coordinate.split(".", 1)
    return {"path": coordinate, "coordinate": coordinate, "type": type_name, "field": field_name, "alias": None, "arguments": {}}


async def _allowed_somewhere(files: PolicyFiles, coordinates: list[str], document: dict[str, Any], timeout: float) -> set[str]:
    fields = [_field(coordinate) for coordinate in coordinates]
    allowed: set[str] = set()
    worker = await RegoWorker.start(files.modules, files.data, entrypoints=[ENTRYPOINT], timeout=LOAD_TIMEOUT)
    try:
        for principal in _probe_principals(document):
            policy_input = {"principal": principal, "operation": {"name": None, "type": "query", "hash": ""}, "fields": fields}
            reply = await worker.request({"op": "evaluate", "input": policy_input}, timeout)
            if not reply.get("ok"):
                raise PolicyUnavailable(str(reply.get("error")))
            if reply.get("undefined"):
                raise PolicyUnavailable("data.gateway.authz.decision is undefined")
            decision = parse_decision(reply["value"], coordinates)
            allowed.update(path for path, verdict in decision.fields.items() if verdict.allow)
    finally:
        await worker.close()
    return allowed
