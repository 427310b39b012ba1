"""uvicorn's httptools protocol with two limits it lacks: a time within which a request's headers
must arrive, and a ceiling on open connections; and, among several workers, a connection closed
after its answer when its worker holds more than its share (gateway.serving.balance).

uvicorn closes a kept-alive connection that stays idle after a response, but not one that never
sends a request, nor one that trickles its header lines: a client holding thousands of those
exhausted the process's file descriptors (the red team: 20,500 idle connections, after which no
client could connect, no policy worker could be started, and the policy watcher died). Here a
connection whose headers are not complete within `header_timeout` seconds of its opening (or of
its previous response) is closed, and one opened beyond `max_connections` is closed at once.
"""

from __future__ import annotations

import asyncio
import functools
import resource
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.serving.balance import shares

__all__ = ["GuardedHttpToolsProtocol", "connection_ceiling", "guarded_protocol"]

# Descriptors kept for what is not a client: store connections, policy workers' pipes, files.
RESERVED_DESCRIPTORS = 512


def connection_ceiling(wanted: int) -> int:
    """Raises the process's soft limit on open files to its hard limit, and returns how many client
    connections fit under it besides what the process itself needs (at most `wanted`)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = wanted + RESERVED_DESCRIPTORS if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))
            soft = max(soft, target)
        except (ValueError, OSError):
            pass  # the soft limit stays; the ceiling follows it
    return max(1, min(wanted, soft - RESERVED_DESCRIPTORS))


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """An HttpToolsProtocol connection held to a header timeout, under a ceiling on connections."""

    def __init__(self, *args: Any, header_timeout: float, max_connections: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout
        self._max_connections = max_connections
        self._waiting_for_headers: asyncio.TimerHandle | None = None
        # The request whose answer closes the connection, for the balance of workers (None: none).
        self._leaving: Any = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._max_connections:
            transport.close()  # the client sees its connection closed, and may try again
            return
        shared = shares()
        if shared is not None:
            shared.holds(len(self.connections))
        self._await_headers()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # A kept-alive connection that stays silent after a response is uvicorn's to close (its
        # keep-alive timer); once its next request begins, the headers are on our clock again.
        if self._waiting_for_headers is None:
            self._await_headers()

    def on_headers_complete(self) -> None:
        self._stop_waiting()
        super().on_headers_complete()
        shared, cycle, leaving = shares(), self.cycle, self._leaving
        if shared is None or cycle is None:
            return
        if leaving is not None:
            # A request pipelined behind the one told to close: the close moves to this, the last
            # one (an answer that says close ends the connection, and what is queued behind it).
            if leaving is not cycle and not leaving.response_started:
                leaving.keep_alive = True
                cycle.keep_alive = False
                self._leaving = cycle
        elif cycle.keep_alive and shared.one_should_leave():
            # This worker holds more than its share: the answer says `Connection: close`, and the
            # client's next connection goes to whichever worker accepts it (gateway.serving.balance).
            cycle.keep_alive = False
            self._leaving = cycle

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)
        shared = shares()
        if shared is not None:
            if self._leaving is not None:
                self._leaving = None
                shared.left()
            shared.holds(len(self.connections))

    def _await_headers(self) -> None:
        self._waiting_for_headers = self.loop.call_later(self._header_timeout, self._headers_overdue)

    def _stop_waiting(self) -> None:
        if self._waiting_for_headers is not None:
            self._waiting_for_headers.cancel()
            self._waiting_for_headers = None

    def _headers_overdue(self) -> None:
        self._waiting_for_headers = None
        if not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(header_timeout: float, max_connections: int) -> Callable[..., HttpToolsProtocol]:
    """What uvicorn's `http=` makes each connection's protocol with, under these limits. A partial of
    a module-level class, not a class made here: it is pickled to each worker `--workers` spawns."""
    return functools.partial(GuardedHttpToolsProtocol, header_timeout=header_timeout, max_connections=max_connections)
