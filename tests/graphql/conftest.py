"""The GraphQL tests' shared fixture: the app over the module's own database, under the shipped policy with
its thresholds off (harness.FIELD_TEST_TERMS)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from harness import FIELD_TEST_TERMS, Gateway, policies_with, running_gateway

ROOT_CONFTEST = Path(__file__).parent.parent / "conftest.py"


def pytest_plugin_registered(plugin: object, manager: pytest.PytestPluginManager) -> None:
    # pytest imports every conftest.py outside a package under the one module name `conftest`, so
    # loading this file evicts tests/conftest.py from sys.modules, and test modules collected after
    # this directory that `from conftest import SECRET` would import this file instead. Once this
    # conftest is registered, `conftest` names tests/conftest.py again (the very module, not a copy:
    # its database-name counter must stay single). An __init__.py here would give this directory a
    # module name of its own, `graphql`, and shadow graphql-core.
    if getattr(plugin, "__file__", None) == __file__:
        sys.modules["conftest"] = manager.get_plugin(str(ROOT_CONFTEST))


@pytest.fixture(scope="module")
async def gateway(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    policy_dir = policies_with(tmp_path_factory.mktemp("policies"), FIELD_TEST_TERMS)
    async with running_gateway(database_url, policy_dir=policy_dir) as started:
        yield started
