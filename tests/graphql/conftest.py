"""The GraphQL tests' shared fixture: the app over the module's own database, with a client (see harness.py)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.config import Settings
from gateway.store.migrate import migrate

from harness import APP_SECRET, FIELD_TEST_TERMS, Gateway, policies_with, serve

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
    """The app over this module's database, its lifespan run as a server runs it, under the shipped
    policy with the thresholds off (FIELD_TEST_TERMS)."""
    policy_dir = policies_with(tmp_path_factory.mktemp("policies"), FIELD_TEST_TERMS)
    app = create_app(Settings(database_url=database_url, secret=APP_SECRET, policy_dir=policy_dir))
    async with app.router.lifespan_context(app) as state:
        async with serve(app, dict(state or {})) as http:
            yield Gateway(state=dict(state or {}), http=http)
    # The lifespan's migrate sets role passwords (on servers that ask for them) from its secret; give them back.
    from conftest import SECRET

    await migrate(database_url, SECRET)
