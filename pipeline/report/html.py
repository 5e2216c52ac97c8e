"""The rollout report as one self-contained HTML page (inline CSS, no scripts, no external resources).

Modelled on the seeds' job pages: a header with the release, the commit and the outcome; result statistics; per
batch a table of minions x steps with a tick, a cross or a question mark per cell and the time it took; then
the audit trail commit -> release -> jids -> results. Every value from the report is HTML-escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from pipeline.rollout.audit import describe_chain

_CSS = """
body{font:14px/1.4 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1f2328}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 6px} .muted{color:#656d76}
table{border-collapse:collapse;margin:6px 0 12px} th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left}
th{background:#f6f8fa} td.c{text-align:center} code{font-size:12px}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600}
.succeeded,.passed,.ok{background:#1a7f37}.failed,.halted{background:#cf222e}.missing{background:#bc4c00}
.rolled_back{background:#8250df}.untouched,.not_run,.pending,.running{background:#6e7781}
td.ok{background:#dafbe1}td.failed{background:#ffebe9}td.missing{background:#fff1e5}td.none{color:#8c959f}
"""
_MARK = {"ok": "&#10003;", "failed": "&#10007;", "missing": "?"}
_STEPS = (("sync", "sync_all"), ("apply", "state.apply"), ("health", "health"),
          ("rollback_sync", "rollback sync"), ("rollback_apply", "rollback apply"))


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _badge(value: Any) -> str:
    text = _e(value or "unfinished")
    css = text if text.replace("_", "").isalpha() else "pending"
    return f'<span class="badge {css}">{text}</span>'


def _cell(step: dict[str, Any] | None) -> str:
    if step is None:
        return '<td class="c none">&ndash;</td>'
    status = str(step.get("status"))
    title = "; ".join(str(r) for r in step.get("reasons", [])) or f"jid {step.get('jid')}"
    timing = ""
    if step.get("elapsed_s") is not None:
        timing = f' <span class="muted">{float(step["elapsed_s"]):.1f}s</span>'
    mark = _MARK.get(status, _e(status))
    return f'<td class="c {_e(status)}" title="{_e(title)}">{mark}{timing}</td>'


def _approvers(report: dict[str, Any]) -> str:
    promotion = report.get("promotion") or {}
    names = [f"{a.get('name')} ({a.get('proof') or 'unverified'})" for a in promotion.get("approvals") or []]
    started = f"; started by {promotion['started_by']}" if promotion.get("started_by") else ""
    return (", ".join(names) or "nobody (none required)") + started


def render_html(report: dict[str, Any]) -> str:
    """The page for ``report`` (as built by :func:`pipeline.report.build_report`)."""
    steps_used = [(k, label) for k, label in _STEPS
                  if any(k in m.get("steps", {}) for b in report["batches"] for m in b["minions"])]
    if not steps_used:
        steps_used = list(_STEPS[:2])
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>saltpipe {_e(report['kind'])} {_e(report['release'])} to {_e(report['environment'])}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_e(report['kind'])} of <code>{_e(report['release'])}</code> to {_e(report['environment'])} "
        f"{_badge(report.get('outcome') or report.get('state'))}</h1>",
        f'<div class="muted">rollout {_e(report["rollout_id"])} &middot; commit <code>{_e(report.get("commit"))}</code>'
        f" &middot; saltenv <code>{_e(report['saltenv'])}</code> &middot; previous release "
        f"<code>{_e(report.get('previous_release'))}</code></div>",
        f'<div class="muted">started {_e(report.get("started_at"))} by {_e(report.get("started_by"))}'
        f" &middot; finished {_e(report.get('finished_at'))}</div>",
        f'<div class="muted">target <code>{_e(report["target"])}</code>: {_e(report["population"])} minions'
        f" &middot; schedule {_e(report['schedule'])}</div>",
        f'<div class="muted">approved by {_e(_approvers(report))}</div>',
        f'<div class="muted">audit chain: {_e(describe_chain(report.get("chain") or {}))}</div>',
    ]
    totals = report["totals"]
    out.append("<h2>Results</h2><table><tr>" + "".join(f"<th>{_e(k)}</th>" for k in totals) + "</tr><tr>"
               + "".join(f'<td class="c">{_e(v)}</td>' for v in totals.values()) + "</tr></table>")
    if report.get("halted"):
        out.append(f"<p><b>Halted</b> at batch {_e(report['halted'].get('batch'))}: {_e(report['halted'].get('reason'))}</p>")
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
            out.append(
                f"<tr><td>{_e(minion['id'])}</td><td>{_e(minion.get('syndic'))}</td>"
                + "".join(_cell(steps.get(k)) for k, _ in steps_used)
                + f"<td>{_badge(minion['result'])}</td>"
                + f"<td class=\"c\">{'' if duration is None else _e(f'{float(duration) / 1000:.2f}s')}</td>"
                + f"<td><code>{_e(minion.get('jid'))}</code></td></tr>"
            )
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
    out.append("</table></body></html>")
    return "\n".join(out) + "\n"
