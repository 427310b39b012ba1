"""The policy tests' shared fixture: one OPA stand-in (real OPA behind OPA's REST API) over the
shipped policy, its knobs reset for each test; it skips, saying why, when real OPA is not installed.

This directory is a package (`policy`, for its test_cli.py and test_fields.py beside others of the
same name), so this file is `policy.conftest` and leaves the module name `conftest` to
tests/conftest.py. test_guard.py reuses the GraphQL tests' fixture platform from tests/graphql,
which tests/graphql/conftest.py puts on sys.path only when that directory is collected; it is put
there for a run of this one alone.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .opa_standin import OpaStandin

POLICIES = Path(__file__).parents[2] / "policies"
GRAPHQL_TESTS = Path(__file__).parents[1] / "graphql"

if str(GRAPHQL_TESTS) not in sys.path:
    sys.path.append(str(GRAPHQL_TESTS))


@pytest.fixture(scope="session")
def opa_server() -> Iterator[OpaStandin]:
    with OpaStandin(POLICIES) as standin:
        yield standin


@pytest.fixture
def opa_standin(opa_server: OpaStandin) -> Iterator[OpaStandin]:
    opa_server.reset()
    yield opa_server
    opa_server.reset()
