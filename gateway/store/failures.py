"""What the store failing looks like, as one tuple: every boundary turns it into STORE_UNAVAILABLE (503).

The server unreachable or refusing connections while it starts or stops
(OSError, connection errors, operator intervention: `CannotConnectNowError`,
`AdminShutdownError`), a connection lost mid-statement (InterfaceError), or
asyncpg's own state broken by such a loss (InternalClientError, e.g. "cannot
switch to state 15" after a crash), or a read cancelled by its statement
timeout (the store too slow, e.g. waiting on a lock). Anything else asyncpg raises (a missing
privilege, a constraint) is a fault of ours or of the input, not an outage.
"""

from __future__ import annotations

import asyncpg

from gateway.errors import StoreUnavailable

__all__ = ["STORE_FAILURES", "store_unavailable"]

STORE_FAILURES: tuple[type[BaseException], ...] = (
    OSError,  # TimeoutError too (a pool's acquire timing out)
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.QueryCanceledError,  # statement_timeout: the store too slow to answer (gateway.store.pools)
)


def store_unavailable() -> StoreUnavailable:
    """What a reader is told when the store fails under its request (the driver's words, which
    name hosts and sockets, are not for clients)."""
    return StoreUnavailable("the event store is unavailable; try again shortly")
