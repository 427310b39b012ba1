"""The attack suite's gateway: the real app over the module's own database, under the SHIPPED policy."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.config import Settings
from gateway.store.migrate import migrate

# The GraphQL tests' harness (tests/graphql is not a package: see its conftest).
sys.path.insert(0, str(Path(__file__).parents[1] / "graphql"))

from harness import APP_SECRET, SHIPPED_POLICIES, Gateway, serve  # noqa: E402


@pytest.fixture(scope="module")
async def gateway(database_url: str) -> AsyncIterator[Gateway]:
    app = create_app(Settings(database_url=database_url, secret=APP_SECRET, policy_dir=SHIPPED_POLICIES))
    async with app.router.lifespan_context(app) as state:
        async with serve(app, dict(state or {})) as http:
            yield Gateway(state=dict(state or {}), http=http)
    from conftest import SECRET

    await migrate(database_url, SECRET)
