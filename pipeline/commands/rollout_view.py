"""What ``saltpipe rollout`` / ``rollback`` show while and after they run: the progress view (from the journal
records as they are written) and the result summary, the extra reports and the exit code.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from pipeline.errors import EXIT_FINDINGS
from pipeline.rollout import Outcome, Plan, RolloutResult
from pipeline.rollout.audit import describe_chain


class ProgressView:
    """Batch, minions done / failed / missing, from the journal records as they are written.

    On a terminal a live table; elsewhere (CI logs) one line per batch event.
    """

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.live: Any = None
        self.rows: dict[int, dict[str, Any]] = {}
        self.plan: Plan | None = None
        self.phase = "planning"

    def start(self, plan: Plan) -> None:
        self.plan = plan
        for batch in plan.batches:
            self.rows[batch.index] = {"name": batch.name, "size": len(batch.minions), "done": 0, "failed": 0,
                                      "missing": 0, "state": "waiting"}
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(self._table(), console=self.console, refresh_per_second=4, transient=False)
            self.live.start()

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title=f"{self.plan.environment if self.plan else ''}: {self.phase}")
        for col in ("batch", "minions", "done", "failed", "missing", "state"):
            table.add_column(col, justify="right" if col in ("minions", "done", "failed", "missing") else "left")
        for row in self.rows.values():
            table.add_row(row["name"], str(row["size"]), str(row["done"]), str(row["failed"]), str(row["missing"]),
                          row["state"])
        return table

    def _line(self, text: str) -> None:
        if self.live is None:
            self.console.print(text, markup=False, highlight=False)

    def __call__(self, record: dict[str, Any]) -> None:
        event = record["event"]
        row = self.rows.get(record.get("batch")) if isinstance(record.get("batch"), int) else None
        if event == "batch_started" and row:
            row["state"] = "running"
            self._line(f"{row['name']}: {row['size']} minion(s)")
        elif event == "minion_result" and row and record["step"] in ("apply", "sync", "health"):
            if record["status"] == "failed":
                row["failed"] += 1
            elif record["status"] == "missing":
                row["missing"] += 1
            elif record["step"] == "apply":
                row["done"] += 1
        elif event == "gate" and row:
            row["state"] = "passed" if record["passed"] else "FAILED"
            self._line(f"{row['name']}: gate {'passed' if record['passed'] else 'FAILED'} "
                       f"({record['failed']} failed, {record['missing']} missing of {record['size']})")
        elif event == "bake_started" and row:
            row["state"] = f"baking {record['seconds']:g}s"
        elif event == "halted":
            self.phase = "halted"
            self._line(f"halted: {record.get('reason')}")
        elif event == "rollback_started":
            self.phase = "rolling back"
            self._line(f"rolling back {record.get('minions')} minion(s) to {record.get('release')}")
        elif event.startswith("rollback_") and event != "rollback_started" and event != "rollback_requested":
            self._line(rollback_line(event, record))
        elif event == "promoted":
            self.phase = "promoted"
            self._line(f"base now serves {record.get('release')}")
        elif event == "lookup" and record.get("method") == "find_job" and record.get("running"):
            self._line(f"still running {record['jid']}: {', '.join(record['running'][:5])}")
        if self.live is not None:
            self.live.update(self._table())

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def rollback_line(event: str, record: dict[str, Any]) -> str:
    """A rollback journal event as a sentence: counts, the names of the minions not rolled back, the reason."""
    if event == "rollback_finished":
        not_back = [*record.get("failed", []), *record.get("missing", [])]
        return (f"rollback finished: {record.get('rolled_back', 0)} rolled back, {len(record.get('failed', []))} "
                f"failed, {len(record.get('missing', []))} missing" + (f" ({', '.join(not_back)})" if not_back else ""))
    fields = {k: v for k, v in record.items() if k not in ("seq", "at", "event")}
    detail = fields.pop("reason", None)
    words = "; ".join(f"{k.replace('_', ' ')} {', '.join(map(str, v)) if isinstance(v, list) else v}"
                      for k, v in fields.items())
    return f"{event.replace('_', ' ')}" + (f": {detail}" if detail else "") + (f" ({words})" if words else "")


@contextmanager
def progress_view() -> Iterator[ProgressView]:
    """A progress view, stopped (its live table closed) however the block ends."""
    view = ProgressView()
    try:
        yield view
    finally:
        view.stop()


# -- results ------------------------------------------------------------------------------------------------------------


def write_reports(report: dict[str, Any], report_json: Path | None, report_html: Path | None) -> None:
    """Write ``report`` (a rollout's report.json data) also to ``--report-json`` / ``--report-html`` when given."""
    from pipeline.rollout.report import render_html, sibling_reports, write_json

    if report_json:
        write_json(report, report_json)
    if report_html:
        report_html.parent.mkdir(parents=True, exist_ok=True)
        report_html.write_text(render_html(report, sibling_reports(report_html)), encoding="utf-8")


def finish(result: RolloutResult, report_json: Path | None, report_html: Path | None) -> None:
    report = json.loads(result.report_path.read_text(encoding="utf-8"))
    write_reports(report, report_json, report_html)
    totals = report["totals"]
    kind = "rollback run" if result.plan.kind == "rollback" else "rollout"
    click.echo(f"{kind} {result.plan.rollout_id} of {result.plan.release} to {result.plan.environment}: "
               f"{result.outcome.value.upper()}")
    click.echo("  " + ", ".join(f"{k} {v}" for k, v in totals.items() if v))
    if report.get("halted"):
        click.echo(f"  halted at {report['halted']['batch_name']}: {report['halted']['reason']}")
        for batch in report["batches"]:
            for minion in batch["minions"]:
                reasons = [r for s in minion.get("steps", {}).values() for r in s.get("reasons", [])]
                # "retcode 2" says little; the failed state or render error says what to fix.
                telling = [r for r in reasons if not r.startswith(("retcode ", "success "))] or reasons
                if telling and minion["result"] in ("failed", "missing", "rolled_back"):
                    click.echo(f"    {minion['id']}: {'; '.join(telling[:2])}")
    rb = report.get("rollback") or {}
    if rb.get("status") == "skipped":
        click.echo(f"  not rolled back: {rb.get('reason')}")
    elif rb.get("status") == "done":
        click.echo(f"  rolled back {rb['rolled_back']} minion(s) to {rb['release']}"
                   + (f"; NOT rolled back: {', '.join(rb['failed'] + rb['missing'])}" if rb["failed"] or rb["missing"] else ""))
    for minion, paths in sorted((rb.get("left_behind") or {}).items()):
        click.echo(f"  left behind on {minion} (added by {result.plan.release}, not managed by {rb['release']}): "
                   + ", ".join(paths[:5]) + (f" (+{len(paths) - 5} more)" if len(paths) > 5 else ""))
    echo_reconciled(report)
    if report.get("promoted"):
        click.echo(f"  base now serves {result.plan.release} on {result.plan.environment}")
    click.echo("  chain: " + describe_chain(report.get("chain") or {}))
    for failure in (report.get("chain") or {}).get("deployment_failures") or []:
        click.echo(f"  WARNING: GitLab did not take the deployment status {failure['status']}: {failure['message']}"
                   f"\n  ({failure['hint']})")
    if result.progress.retire_failed:
        warn = result.progress.retire_failed
        click.echo(f"  warning: {warn.get('message')}\n  ({warn.get('hint')})")
    click.echo(f"  report: {result.report_path}")
    for path in (report_json, report_html):
        if path:
            click.echo(f"  report: {path}")
    if result.outcome is not Outcome.SUCCEEDED:
        # SystemExit, not click's Exit: pipeline.cli.main runs click with standalone_mode=False.
        sys.exit(EXIT_FINDINGS)


def echo_reconciled(report: dict[str, Any]) -> None:
    """Which release the minions run, as they said after the halt (``reconciled`` in the report)."""
    rec = report.get("reconciled")
    if not rec:
        return
    click.echo(f"  running (grain {rec['grain']}, read from the minions at {rec['at']}):")
    for release, minions in rec["by_release"].items():
        click.echo(f"    {release}: {len(minions)} ({', '.join(minions[:8])}{', ...' if len(minions) > 8 else ''})")
    if rec["unanswered"]:
        click.echo(f"    did not answer: {', '.join(rec['unanswered'][:8])}")
