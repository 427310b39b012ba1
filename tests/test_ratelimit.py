"""The limiter's windows in this process (gateway.ratelimit with memory://): a moving minute per
key, and keys that made no request for a minute forgotten. Time is the test's (`time_machine`)."""

from __future__ import annotations

import time_machine

from gateway.ratelimit import RateLimiter


async def test_a_window_moves_with_its_oldest_request() -> None:
    limiter = RateLimiter.open("async+memory://")
    with time_machine.travel(1_000_000, tick=False) as traveller:
        first = await limiter.hit(("user", "u1"), 2)
        traveller.shift(30)
        second = await limiter.hit(("user", "u1"), 2)
        refused = await limiter.hit(("user", "u1"), 2)
        traveller.shift(30)  # the first request is now exactly a minute old: still in the window
        at_the_minute = await limiter.hit(("user", "u1"), 2)
        traveller.shift(0.5)
        after_it = await limiter.hit(("user", "u1"), 2)

    assert [first.allowed, second.allowed, refused.allowed, at_the_minute.allowed, after_it.allowed] == [True, True, False, False, True]
    assert (refused.remaining, refused.reset_seconds) == (0, 30)
    assert (after_it.remaining, after_it.reset_seconds) == (0, 30)  # the second request leaves next
    assert limiter.refused == 2


async def test_keys_quiet_for_a_minute_are_forgotten() -> None:
    with time_machine.travel(2_000_000, tick=False) as traveller:
        limiter = RateLimiter.open("async+memory://")
        for user in range(100):
            await limiter.hit(("user", f"u{user}"), 10)
        traveller.shift(61)
        verdict = await limiter.hit(("user", "u0"), 10)
        kept = len(limiter._windows._times)  # type: ignore[attr-defined]  # the keys the sweep left

    assert verdict.remaining == 9
    assert kept == 1
