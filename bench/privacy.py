"""The privacy service's share of request time on the creator dashboard query, for the creator and for an app.

Run: .venv/bin/python bench/privacy.py [--events N] [--duration S] [--rounds R]

Uses GATEWAY_DATABASE_URL's server, or a throwaway embedded Postgres. One run:
1. loads N demo events as bench/dashboard.py does (its build_dataset: a
   backfill, then the history replayed); the most shared video and its creator
   are the dashboard's subject;
2. serves two variants of the real app, each in its own process (uvicorn with
   uvloop + httptools, one worker, as bench/dashboard.py serves it):
     real          create_app as shipped;
     pass-through  the same app with the privacy service (gateway.privacy.
                   disclosure.Disclosure) made a pass-through in that server's
                   process only (`pass_through` below): the release it reads is
                   the latest one, whatever the principal's delay and k (its
                   cutoff is the end of the current bucket of its granularity
                   floor, and its step 0: every release); breakdown cells are
                   neither suppressed (`suppress` hands them back) nor noised
                   (`Disclosure._noised` hands the cell back, so no draw is
                   made), and no ε is charged (`BudgetLedger.charge` does
                   nothing). Its release reader keeps those answers as the real
                   one keeps settled ones (no event arrives while we measure).
                   Authentication, GraphQL, the policy guard and the statements
                   are unchanged;
   both under a copy of policies/ (without its tests) in which an app's
   epsilon_budget_per_day is 1e12, so that the app's rounds never run out,
   and both making every answer anew (GATEWAY_RESPONSE_CACHE_MB=0: a kept
   answer would hide the work measured here);
3. asks both the DASHBOARD query of bench/dashboard.py as the creator (a user
   token: k 5, HOUR floor, exact counts) and as an app acting for the creator
   (scopes stats and insights: k 50, DAY floor, channel cells noised and ε
   charged in Postgres), driven by bench/dashboard.py's load generator (32
   keep-alive clients) in interleaved rounds; the best round of each counts.

The privacy share is 1 - (real req/s / pass-through req/s), and from latencies
1 - (pass-through p50 / real p50). Target: < 10% for each principal. The
machine is shared and noisy: read the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import tempfile
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# bench/dashboard.py's helpers; importing it first also takes this folder off sys.path (see there).
from dashboard import (  # isort: skip
    DASHBOARD,
    SPAN,
    Dataset,
    Server,
    build_dataset,
    cpu_note,
    database_server,
    describe,
    raw_request,
    run_load,
    run_stoppably,
    serve,
    start_server,
    tear_down,
    unthrottled_policies,
    wait_ready,
)

import httpx  # noqa: E402

from gateway.auth import PrincipalKind, create_app_token, create_token  # noqa: E402

APP_ID = "bench-dashboard-app"
APP_SCOPES = ["stats", "insights"]
HUGE_BUDGET = 1e12
TARGET = 0.10
VARIANTS = ("real", "pass-through")
PRINCIPALS = ("user", "app")


# ---------------------------------------------------------------------------------------------------------------------
# The pass-through (runs in the `_pass-through` server's process only)


def pass_through() -> None:
    """Makes the privacy service hand back what the history holds: the latest release (no delay, no
    steps of k), cells unsuppressed and unnoised, no ε charged. Patched before the app is built."""
    from gateway.privacy import budget, disclosure
    from gateway.privacy.release import Granularity, bucket_after, truncate
    from gateway.privacy.suppression import Cell
    from gateway.store.releases import ReleaseReader

    def latest(now: datetime, granularity: Granularity, delay: timedelta) -> datetime:
        # The end of the current bucket: no release is made later than now, and it stays put for the
        # bucket, so kept answers are reused as in the real app.
        return bucket_after(truncate(now, granularity), granularity)

    visible, series = ReleaseReader.visible, ReleaseReader.series

    async def every_visible(self: ReleaseReader, keys: Any, before: datetime, step: int, *, settled: bool) -> Any:
        return await visible(self, keys, before, 0, settled=True)

    async def every_in_series(self: ReleaseReader, subject: str, metric: str, start: datetime, end: datetime, step: int,
                              *, settled: bool) -> Any:
        return await series(self, subject, metric, start, end, 0, settled=True)

    def unsuppressed(buckets: Any, k: int, *, pool_key: str | None = None) -> list[Cell]:
        return list(buckets)

    def unnoised(self: disclosure.Disclosure, subject: str, metric: Any, dimension: Any, cell: Cell, changed_at: int) -> Cell:
        return cell

    async def charge_nothing(self: Any, *args: Any) -> None:
        return None

    disclosure.cutoff = latest  # type: ignore[attr-defined]
    ReleaseReader.visible = every_visible  # type: ignore[method-assign]
    ReleaseReader.series = every_in_series  # type: ignore[method-assign]
    disclosure.suppress = unsuppressed  # type: ignore[attr-defined]
    disclosure.Disclosure._noised = unnoised  # type: ignore[method-assign]
    budget.BudgetLedger.charge = charge_nothing  # type: ignore[method-assign,assignment]


# ---------------------------------------------------------------------------------------------------------------------
# The orchestrator


def policy_copy(into: Path) -> Path:
    """policies/ without its tests (they pin the shipped figures), with no rate limit the load reaches
    and an app's daily ε budget at HUGE_BUDGET."""
    copy = unthrottled_policies(into / "policies")
    data = json.loads((copy / "data.json").read_text())
    data["obligations"]["principals"]["app"]["epsilon_budget_per_day"] = HUGE_BUDGET
    (copy / "data.json").write_text(json.dumps(data, indent=2))
    return copy


def token_for(principal: str, dataset: Dataset, secret: str) -> str:
    if principal == "user":
        return create_token(secret, PrincipalKind.USER, dataset.creator_id, ttl_seconds=24 * 3600)
    return create_app_token(secret, APP_ID, dataset.creator_id, APP_SCOPES, ttl_seconds=24 * 3600)


def prepare(server: Server, principal: str, secret: str, start: datetime, end: datetime, workdir: Path) -> tuple[Server, dict[str, Any]]:
    """`server` as `principal` asks it (its raw request written to a file), and its answer to one request."""
    dataset = server.dataset
    token = token_for(principal, dataset, secret)
    payload = {"query": DASHBOARD, "operationName": "Dashboard",
               "variables": {"id": dataset.video_id, "from": start.isoformat(), "to": end.isoformat()}}
    body = json.dumps(payload, separators=(",", ":")).encode()
    asked = dataclasses.replace(server, kind=f"{principal} {server.kind}", request=workdir / f"request-{server.kind}-{principal}.http")
    asked.request.write_bytes(raw_request("/graphql", server.port, token, body))
    response = httpx.post(f"{server.base}/graphql", content=body, timeout=30,
                          headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    answer = response.json()
    if response.status_code != 200 or answer.get("errors"):
        raise RuntimeError(f"{asked.name} answered {response.status_code}: {response.text[:2000]}")
    return asked, {"data": answer["data"], "privacy": answer.get("extensions", {}).get("privacy")}


def share(real: float, passed: float) -> float:
    return 1 - real / passed


def cpu_per_request(result: dict[str, Any]) -> str:
    server = f"{result['cpu_server'] / result['rps'] * 1000:.2f}"
    if result["cpu_postgres"] is None:
        return server
    return f"{server} + {result['cpu_postgres'] / result['rps'] * 1000:.2f}"


def orchestrate(args: argparse.Namespace) -> None:
    # platformdirs warns (at pgserver's exit handler too) when XDG_RUNTIME_DIR is unset; pgserver copes.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-privacy-"))
    server_url, secret, postgres_pid = database_server()
    now = datetime.now(UTC).replace(microsecond=0)
    range_end = now
    range_start = range_end - SPAN

    datasets: list[Dataset] = []
    servers: list[Server] = []
    try:
        dataset = asyncio.run(build_dataset(server_url, args.events, secret, now.replace(minute=0, second=0)))
        datasets.append(dataset)
        policies = policy_copy(workdir)
        for variant in VARIANTS:
            servers.append(start_server(variant, dataset, secret, workdir, script=Path(__file__).resolve(),
                                        env={"GATEWAY_POLICY_DIR": str(policies), "GATEWAY_RESPONSE_CACHE_MB": "0"}))
        for server in servers:
            wait_ready(server)
        print(f"servers up: {', '.join(f'{s.kind} on :{s.port} (pid {s.process.pid})' for s in servers)}; "
              f"policies: {policies} (app ε budget per day {HUGE_BUDGET:g})", flush=True)

        asked: dict[tuple[str, str], Server] = {}
        for principal in PRINCIPALS:
            for server in servers:
                asked[principal, server.kind], answer = prepare(server, principal, secret, range_start, range_end, workdir)
                print(f"  {principal:<4} {server.kind:<12} {describe(answer)}; privacy {json.dumps(answer['privacy'])}", flush=True)

        print(f"\n{args.rounds} round(s) each, {args.concurrency} clients, warm-up {args.warmup:g} s, "
              f"measured {args.duration:g} s each", flush=True)
        results: dict[tuple[str, str], list[dict[str, Any]]] = {key: [] for key in asked}
        for round_no in range(1, args.rounds + 1):
            for key, server in asked.items():
                result = run_load(server, args, postgres_pid, args.warmup, args.duration)
                results[key].append(result)
                print(f"  round {round_no}  {server.kind:<17} {result['rps']:>8,.0f} req/s  p50 {result['p50']:7.2f} ms  "
                      f"p99 {result['p99']:7.2f} ms  ({result['requests']:,} requests; {cpu_note(result)})", flush=True)

        best = {key: max(runs, key=lambda r: r["rps"]) for key, runs in results.items()}
        print(f"\n[{dataset.label}] best round of each (by req/s). Privacy share = 1 - real/pass-through req/s; also "
              f"1 - pass-through/real p50, and 1 - pass-through/real server CPU per request (cpu ms/req: the "
              f"server's CPU time per request, then Postgres'):")
        print(f"  {'variant':<17} {'req/s':>8}  {'p50 ms':>7}  {'p99 ms':>7}  {'cpu ms/req':>11}  "
              f"{'share':>6}  {'by p50':>6}  {'by cpu':>6}  target")
        for principal in PRINCIPALS:
            real, passed = best[principal, "real"], best[principal, "pass-through"]
            for variant, result in (("pass-through", passed), ("real", real)):
                figures = (f"  {asked[principal, variant].kind:<17} {result['rps']:>8,.0f}  {result['p50']:>7.2f}  "
                           f"{result['p99']:>7.2f}  {cpu_per_request(result):>11}")
                if variant == "real":
                    by_rps = share(real["rps"], passed["rps"])
                    by_p50 = share(passed["p50"], real["p50"])
                    by_cpu = share(passed["cpu_server"] / passed["rps"], real["cpu_server"] / real["rps"])
                    verdict = "ok" if by_rps < TARGET else "ABOVE TARGET"
                    figures += f"  {by_rps:>6.1%}  {by_p50:>6.1%}  {by_cpu:>6.1%}  < {TARGET:.0%} (by req/s): {verdict}"
                print(figures)
    finally:
        tear_down(servers, datasets, server_url, workdir)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("_real", "_pass-through"):
        port_parser = argparse.ArgumentParser(prog=f"privacy.py {sys.argv[1]}")
        port_parser.add_argument("--port", type=int, required=True)
        port = port_parser.parse_args(sys.argv[2:]).port
        if sys.argv[1] == "_pass-through":
            pass_through()
        serve("graphql", port)
        return

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events in the data set (default 200,000)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent keep-alive clients (default 32)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per round (default 2)")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per round (default 8)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per variant and principal, interleaved (default 2)")
    args = parser.parse_args()

    run_stoppably(orchestrate, args)


if __name__ == "__main__":
    main()
