"""Average watch time as served: one person's share is capped, and the sum is served in steps of k shares.

Watch time is not a count. One view may last a day (ingest's bound), so an average over a
release's views moved by hours when one viewer left a video playing: that one person could be
read off a release of k or more people. Two things keep it within the release model, where
one person is only ever seen as one of k or more:

1. A cap per person. Each release holds S, the sum over the video's viewers of each one's
   watch time up to the cap C it was taken under (`watch_cap_ms`, 3 minutes: migration 0015).
   However long or often one person watched, they move S by at most C.
2. Steps of k people at the cap. S is served as the nearest multiple of k·C (halves up),
   divided by the release's views. If S and S' differ by one person's share, |S − S'| ≤ C,
   then S/(k·C) and S'/(k·C) differ by at most 1/k, so the two are served the same step or
   adjacent ones, and adjacent ones only when a half-step (m + ½)·k·C lies between S and S':
   only when everyone else's watch time has put the sum within C of one. That is no more than
   one person can move a count (a release of 17 shares against 18, README), never by hours,
   and no deterministic rounding can do better: some sum always sits next to an edge. A step
   is k·C / views a view, so the answer grows finer only as the audience grows.

Why not noise, as apps get on breakdown cells: a creator is served exact values of the release
history. Their terms carry no ε and no budget to charge draws to, their answers are kept and
served again within the minute (gateway.graphql.responses), and a draw keyed by the video
would still differ between twin worlds that differ in nothing but one person's watch time.
Apps are served no watch time (their counts carry noise, and the policy gives watch time no ε
of its own).

Under k = 0 (no threshold: a test policy's call) the capped sum is served exactly.
"""

from __future__ import annotations

__all__ = ["average_watch_seconds", "in_steps"]


def in_steps(capped_ms: int, step_ms: int) -> int:
    """`capped_ms` as the nearest whole number of `step_ms` steps, halves up (integers only: no
    float can put a sum on the wrong side of an edge)."""
    return (2 * capped_ms + step_ms) // (2 * step_ms)


def average_watch_seconds(capped_ms: int, cap_ms: int, views: int, k: int) -> float | None:
    """Seconds watched per view as served: the capped sum `capped_ms` (each viewer's watch time up
    to `cap_ms`) in whole steps of `k` viewers at the cap, over `views`; None without views."""
    if views <= 0:
        return None
    if k <= 0:
        return capped_ms / views / 1000
    step_ms = k * cap_ms
    return in_steps(capped_ms, step_ms) * step_ms / views / 1000
