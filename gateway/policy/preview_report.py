"""`gateway policy preview`'s report for people: a table per kind of change, each change's example
decision beneath it (a decision id is too long for a table cell at a terminal's width)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from gateway.policy.preview import Preview, Tally, by_frequency

__all__ = ["print_preview"]


def print_preview(out: Console, preview: Preview, strict: bool) -> None:
    impact = preview.impact
    _say(out, f"Proposed policy {preview.proposed_dir} ({preview.proposed_revision[:12]}) against {preview.current_dir} ({preview.current_revision[:12]})")
    _say(
        out,
        f"Decision log since {preview.since:%Y-%m-%d %H:%M} UTC: {preview.window.decisions:,} decisions, "
        f"{preview.window.inputs:,} distinct inputs, {preview.window.revisions:,} policy revision(s)",
    )
    _changes(
        out,
        "Access that changes",
        ["principal", "field", "change"],
        [([change.principal_kind, change.coordinate, f"{change.before} → {change.after}"], tally) for change, tally in by_frequency(impact.access)],
    )
    _changes(
        out,
        "Obligations that change",
        ["principal", "term", "change"],
        [
            ([change.principal_kind, change.term, f"{_term_value(change.before)} → {_term_value(change.after)}"], tally)
            for change, tally in by_frequency(impact.terms)
        ],
    )
    if impact.failures:
        _changes(
            out,
            "Inputs a policy gives no decision for (their requests fail closed)",
            ["policy", "principal", "error"],
            [([failure.policy, failure.principal_kind, failure.error], tally) for failure, tally in by_frequency(impact.failures)],
        )
    _say(
        out,
        f"Recorded decisions the current policy decides otherwise: {impact.drift.decisions:,} of {impact.decisions:,} "
        "(the preview compares with the current policy, not with what older revisions recorded)",
    )
    if preview.window.decisions == 0:
        _say(out, "The log holds no decision in this window: nothing was compared.")
    elif impact.flips:
        out.print(f"[bold red]{impact.flipped.decisions:,} logged decision(s) would be answered otherwise.[/]")
    elif strict and impact.terms:
        out.print("[bold red]Nothing flips, but obligations change (--strict).[/]")
    else:
        out.print("[bold green]Nothing flips.[/]")


def _say(out: Console, line: str) -> None:
    out.print(line, markup=False, highlight=False, soft_wrap=True)


def _changes(out: Console, title: str, columns: list[str], rows: list[tuple[list[str], Tally]]) -> None:
    if not rows:
        _say(out, f"{title}: none")
        return
    table = Table(title=title, title_justify="left", title_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")  # a coordinate or a value is wrapped, never cut short
    table.add_column("decisions", justify="right")
    table.add_column("inputs", justify="right")
    table.add_column("example", justify="right")
    for number, (cells, tally) in enumerate(rows, 1):
        # As Text, never markup: an error message or a value may hold brackets.
        table.add_row(*map(Text, [*cells, f"{tally.decisions:,}", f"{tally.inputs:,}", f"[{number}]"]))
    out.print(table)
    for number, (_, tally) in enumerate(rows, 1):
        _say(out, f"  [{number}] {_example(tally)}")


def _example(tally: Tally) -> str:
    if tally.example is None:
        return ""
    operation = tally.example.operation
    said = [f"decision {tally.example.decision_id}", f"operation {operation.get('name') or str(operation.get('hash'))[:12]}"]
    if tally.example.path:
        said.append(f"path {tally.example.path}")
    if tally.example.scopes:
        said.append(f"scopes {','.join(tally.example.scopes)}")
    return ", ".join(said)


def _term_value(text: str | None) -> str:
    return "(none)" if text is None else text
