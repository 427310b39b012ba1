"""The attack suite's gateway: the real app over the module's own database, under the SHIPPED policy."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from harness import Gateway, running_gateway


@pytest.fixture(scope="module")
async def gateway(database_url: str) -> AsyncIterator[Gateway]:
    async with running_gateway(database_url) as started:
        yield started
