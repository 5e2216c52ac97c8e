"""The rollout report as one self-contained HTML page (inline CSS, no scripts, no external resources).

Modelled on the seeds' job pages: a header with the release, its commit, the previous release and the outcome;
result statistics; the schedule (each entry's batch, or why it did not run as one); per batch a table of
minions x steps with a tick, a cross or a question mark per cell and each job's time once; under a minion that
failed or went missing, why (its failed states: id, comment, changes) with its output on demand (``<details>``);
then the audit trail commit -> release -> jids -> results, and links to the other reports of the same flow.
Every value from the report is HTML-escaped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from pipeline.rollout.audit import describe_chain
from pipeline.rollout.report.document import REPORT_SCHEMA

_CSS = """
body{font:14px/1.4 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1f2328}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 6px} .muted{color:#656d76}
table{border-collapse:collapse;margin:6px 0 12px} th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left}
th{background:#f6f8fa} td.c{text-align:center} code{font-size:12px}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600}
.succeeded,.passed,.ok{background:#1a7f37}.failed,.halted{background:#cf222e}.missing{background:#bc4c00}
.rolled_back{background:#8250df}.untouched,.not_run,.pending,.running,.skipped{background:#6e7781}
td.ok{background:#dafbe1}td.failed{background:#ffebe9}td.missing{background:#fff1e5}td.none{color:#8c959f}
tr.why td{background:#fff8f7} .why ul{margin:2px 0 4px 18px;padding:0} .why table{margin:4px 0}
pre{font-size:12px;background:#f6f8fa;padding:6px;max-height:360px;overflow:auto;white-space:pre-wrap}
"""
_MARK = {"ok": "&#10003;", "failed": "&#10007;", "missing": "?"}
_STEPS = (("sync", "sync_all"), ("apply", "state.apply"), ("health", "health"),
          ("rollback_sync", "rollback sync"), ("rollback_apply", "rollback apply"))
_FORWARD = ("sync", "apply", "health")


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _badge(value: Any) -> str:
    text = _e(value or "unfinished")
    css = text if text.replace("_", "").isalpha() else "pending"
    return f'<span class="badge {css}">{text}</span>'


def _cells(steps: dict[str, Any], used: Sequence[tuple[str, str]]) -> str:
    """One cell per step; a job's time once, in the first cell of the steps it ran (sync and apply share a job)."""
    out = []
    timed: set[str] = set()
    for key, _ in used:
        step = steps.get(key)
        if step is None:
            out.append('<td class="c none">&ndash;</td>')
            continue
        status = str(step.get("status"))
        timing = ""
        jid = step.get("jid")
        if step.get("elapsed_s") is not None and (jid is None or jid not in timed):
            timing = f' <span class="muted">{float(step["elapsed_s"]):.1f}s</span>'
            if jid is not None:
                timed.add(jid)
        out.append(f'<td class="c {_e(status)}">{_MARK.get(status, _e(status))}{timing}</td>')
    return "".join(out)


def _approvers(report: dict[str, Any]) -> str:
    promotion = report.get("promotion") or {}
    names = [f"{a.get('name')} ({a.get('proof') or 'unverified'})" for a in promotion.get("approvals") or []]
    started = f"; started by {promotion['started_by']}" if promotion.get("started_by") else ""
    return (", ".join(names) or "nobody (none required)") + started


def _why(minion: dict[str, Any], columns: int) -> str:
    """The row under a minion that failed or went missing (also before a rollback): each failing step's reasons,
    its failed states, and the minion's output on demand. Empty for a minion without a failing step."""
    parts = []
    for key in (*_FORWARD, "rollback_sync", "rollback_apply"):
        step = (minion.get("steps") or {}).get(key)
        if not step or step.get("status") not in ("failed", "missing"):
            continue
        states = step.get("states") or []
        failed_ids = {f"{s.get('state')} {s.get('id')}" for s in states}
        # A failed state's reason repeats its comment: the states table says it once.
        reasons = [r for r in step.get("reasons", []) if not any(r.startswith(f"{i} failed") for i in failed_ids)]
        block = [f"<b>{_e(key)} {_e(step['status'])}</b>"]
        if reasons:
            block.append("<ul>" + "".join(f"<li>{_e(r)}</li>" for r in reasons) + "</ul>")
        if states:
            block.append("<table><tr><th>state</th><th>id</th><th>name</th><th>comment</th><th>changes</th></tr>"
                         + "".join(f"<tr><td><code>{_e(s.get('state'))}</code></td><td><code>{_e(s.get('id'))}</code>"
                                   f"</td><td><code>{_e(s.get('name'))}</code></td><td>{_e(s.get('comment'))}</td>"
                                   f"<td><code>{_e(s.get('changes') or '-')}</code></td></tr>" for s in states)
                         + "</table>")
        if step.get("output"):
            block.append(f"<details><summary>output of {_e(minion['id'])} ({_e(key)}, jid "
                         f"{_e(step.get('jid'))})</summary><pre>{_e(step['output'])}</pre></details>")
        parts.append("".join(block))
    if not parts:
        return ""
    return f'<tr class="why"><td colspan="{columns}">{"".join(parts)}</td></tr>'


def _header(report: dict[str, Any]) -> list[str]:
    previous = report.get("previous_release")
    previous_text = (f"previous release <code>{_e(previous)}</code> (what base served before; the rollback target)"
                     if previous else "previous release: none (the first release of this environment)")
    return [
        f"<h1>{_e(report['kind'])} of <code>{_e(report['release'])}</code> to {_e(report['environment'])} "
        f"{_badge(report.get('outcome') or report.get('state'))}</h1>",
        f'<div class="muted">rollout {_e(report["rollout_id"])} &middot; commit <code>{_e(report.get("commit"))}</code>'
        f" &middot; saltenv <code>{_e(report['saltenv'])}</code></div>",
        f"<div>{previous_text}</div>",
        f'<div class="muted">started {_e(report.get("started_at"))} by {_e(report.get("started_by"))}'
        f" &middot; finished {_e(report.get('finished_at'))}</div>",
        f'<div class="muted">target <code>{_e(report["target"])}</code>: {_e(report["population"])} minions'
        f" &middot; schedule {_e(report['schedule'])}</div>",
        f'<div class="muted">approved by {_e(_approvers(report))}</div>',
        f'<div class="muted">audit chain: {_e(describe_chain(report.get("chain") or {}))}</div>',
    ]


def _results(report: dict[str, Any]) -> str:
    """The totals; ``failed`` counts the minions that failed and were rolled back too (they did fail)."""
    totals = dict(report["totals"])
    minions = [m for b in report["batches"] for m in b["minions"]]
    cells = {k: _e(v) for k, v in totals.items()}
    for kind in ("failed", "missing"):
        back = sum(1 for m in minions if m.get("result") == "rolled_back" and m.get("before_rollback") == kind)
        if back:
            cells[kind] = f"{_e(totals.get(kind, 0) + back)} <span class=\"muted\">({back} then rolled back)</span>"
    return ("<h2>Results</h2><table><tr>" + "".join(f"<th>{_e(k)}</th>" for k in cells) + "</tr><tr>"
            + "".join(f'<td class="c">{v}</td>' for v in cells.values()) + "</tr></table>")


def _schedule(report: dict[str, Any]) -> str:
    """Each schedule entry: the batch it became, or why it was skipped (``5%`` of 6 minions is reached already)."""
    rows = [f"<tr><td><code>{_e(b.get('spec'))}</code></td><td>{_e(b['name'])}</td><td class=\"c\">{_e(b['size'])}"
            f"</td><td class=\"c\">{_e(b.get('reached'))}</td><td>{_badge(b['status'])}</td></tr>"
            for b in report["batches"]]
    rows += [f"<tr><td><code>{_e(spec)}</code></td><td>-</td><td class=\"c\">0</td><td></td><td>"
             f"{_badge('skipped')} {_e(why)}</td></tr>" for spec, why in report.get("skipped_schedule_entries") or []]
    return ("<h2>Schedule</h2><table><tr><th>entry</th><th>batch</th><th>minions</th><th>reached</th><th>status</th>"
            "</tr>" + "".join(rows) + "</table>")


def _related(related: Sequence[tuple[str, str]]) -> str:
    if not related:
        return ""
    return ("<h2>Other reports of this flow</h2><ul>"
            + "".join(f'<li><a href="{_e(href)}">{_e(label)}</a></li>' for label, href in related) + "</ul>")


def render_html(report: dict[str, Any], related: Sequence[tuple[str, str]] = ()) -> str:
    """The page for ``report`` (as built by :func:`pipeline.rollout.report.build_report`); ``related`` links
    ``(label, href)`` to the other reports of the same flow (:func:`sibling_reports`)."""
    steps_used = [(k, label) for k, label in _STEPS
                  if any(k in m.get("steps", {}) for b in report["batches"] for m in b["minions"])]
    if not steps_used:
        steps_used = list(_STEPS[:2])
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>saltpipe {_e(report['kind'])} {_e(report['release'])} to {_e(report['environment'])}</title>",
        f"<style>{_CSS}</style></head><body>",
        *_header(report),
        _results(report),
    ]
    if report.get("halted"):
        halted = report["halted"]
        out.append(f"<p><b>Halted</b> at {_e(halted.get('batch_name') or halted.get('batch'))}: "
                   f"{_e(halted.get('reason'))}</p>")
    rb = report.get("rollback") or {}
    if rb.get("status") not in (None, "not_needed"):
        detail = rb.get("reason") or (
            f"{rb.get('rolled_back', 0)} rolled back to {rb.get('release')}; failed: "
            f"{', '.join(rb.get('failed', [])) or 'none'}; missing: {', '.join(rb.get('missing', [])) or 'none'}"
        )
        out.append(f"<p><b>Rollback</b> {_e(rb.get('status'))}: {_e(detail)}</p>")
    approvals = report.get("promotion", {}).get("approvals", [])
    if approvals or report.get("promotion", {}).get("satisfied_by"):
        items = [f"{_e(a.get('name'))} at {_e(a.get('at'))}" for a in approvals]
        sat = [f"{_e(k)}: {_e(v)}" for k, v in report["promotion"].get("satisfied_by", {}).items()]
        out.append(f"<p>Approvals: {', '.join(items) or 'none'}; required rollouts: {', '.join(sat) or 'none'}</p>")
    out.append(_schedule(report))

    columns = 2 + len(steps_used) + 3
    for batch in report["batches"]:
        gate = batch.get("gate") or {}
        gate_text = (
            f" &middot; gate: {_e(gate.get('failed'))}/{_e(gate.get('size'))} failed, "
            f"{_e(gate.get('missing'))}/{_e(gate.get('size'))} missing"
            if gate else ""
        )
        jobs = " ".join(f"{_e(k)}=<code>{_e(v)}</code>" for k, v in batch.get("jobs", {}).items())
        out.append(
            f"<h2>{_e(batch['name'])} {_badge(batch['status'])}</h2>"
            f'<div class="muted">{_e(batch["size"])} minions, reached {_e(batch["reached"])}{gate_text}'
            f" &middot; {_e(batch.get('started_at'))} &rarr; {_e(batch.get('finished_at'))} &middot; {jobs}</div>"
        )
        out.append("<table><tr><th>minion</th><th>syndic</th>"
                   + "".join(f"<th>{_e(label)}</th>" for _, label in steps_used)
                   + "<th>result</th><th>state time</th><th>jid</th></tr>")
        for minion in batch["minions"]:
            steps = minion.get("steps", {})
            apply = steps.get("apply") or {}
            duration = apply.get("duration_ms")
            before = minion.get("before_rollback")
            result = _badge(minion["result"]) + (
                f' <span class="muted">after it {_e(before)}</span>' if before and before != "succeeded" else "")
            out.append(
                f"<tr><td>{_e(minion['id'])}</td><td>{_e(minion.get('syndic'))}</td>"
                + _cells(steps, steps_used)
                + f"<td>{result}</td>"
                + f"<td class=\"c\">{'' if duration is None else _e(f'{float(duration) / 1000:.2f}s')}</td>"
                + f"<td><code>{_e(minion.get('jid'))}</code></td></tr>"
            )
            out.append(_why(minion, columns))
        out.append("</table>")

    out.append("<h2>Audit trail</h2><table><tr><th>commit</th><th>release</th><th>batch</th><th>step</th>"
               "<th>jid</th><th>published</th><th>minions</th><th>ok</th><th>failed</th><th>missing</th></tr>")
    for row in report["audit"]:
        out.append(
            "<tr>" + "".join(
                f"<td>{_e(row.get(k))}</td>"
                for k in ("commit", "release", "batch", "step", "jid", "published_at", "minions", "ok", "failed", "missing")
            ) + "</tr>"
        )
    out.append("</table>")
    out.append(_related(related))
    out.append("</body></html>")
    return "\n".join(line for line in out if line) + "\n"


def sibling_reports(html_path: Path) -> list[tuple[str, str]]:
    """The other rollout reports in ``html_path``'s folder (one flow's reports are written side by side): each
    ``<name>.json`` of this schema with its ``<name>.html``, as ``(label, relative href)``, in name order."""
    html_path = Path(html_path)
    folder = html_path.parent
    out = []
    for candidate in sorted(folder.glob("*.json")):
        page = candidate.with_suffix(".html")
        if page == html_path or not page.is_file():
            continue
        try:
            data = json.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or data.get("schema") != REPORT_SCHEMA:
            continue
        label = (f"{data.get('kind')} of {data.get('release')} to {data.get('environment')}: "
                 f"{data.get('outcome') or data.get('state')} ({data.get('rollout_id')})")
        out.append((label, os.path.relpath(page, folder)))
    return out
