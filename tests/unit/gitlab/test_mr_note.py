"""``saltpipe report mr-note``: one note per merge request, found again by its marker, edited in place.

GitLab's notes are simulated by :class:`FakeNotes`: a store behind ``responses`` callbacks that answers like
GitLab v4 (recorded note shape, pagination by ``Link`` header, 201 on create), so that running the command
several times shows what GitLab would end up with.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import responses
from gitlab_helpers import API, MR, PAYLOADS, serve

from pipeline.errors import UsageError
from pipeline.mrnote import MARKER, MrReport, build_report, load_junit, render_markdown

INPUTS = Path(__file__).parent / "inputs"
NOTES_URL = f"{API}{MR}/notes"
BOT_ID = 90


class FakeNotes:
    """The notes of !42, served page by page (``page_size`` per page, whatever per_page asks)."""

    def __init__(
        self, rsps: responses.RequestsMock, notes: list[dict[str, Any]], page_size: int = 2, *, updates: bool = True
    ) -> None:
        self.notes = copy.deepcopy(notes)
        self.page_size = page_size
        self.posts = 0
        self.puts = 0
        self._bot = json.loads((PAYLOADS / "current_user.json").read_text())
        rsps.add_callback("GET", NOTES_URL, callback=self._list, content_type="application/json")
        rsps.add_callback("POST", NOTES_URL, callback=self._create, content_type="application/json")
        if not updates:
            return  # an edit would then hit no route: a connection error, exit 2
        rsps.add_callback(
            "PUT", re.compile(re.escape(NOTES_URL) + r"/\d+$"), callback=self._update, content_type="application/json"
        )

    def _list(self, request: Any) -> tuple[int, dict[str, str], str]:
        query = parse_qs(urlparse(request.url).query)
        assert query.get("sort") == ["asc"] and query.get("order_by") == ["created_at"]
        page = int(query.get("page", ["1"])[0])
        start = (page - 1) * self.page_size
        items = self.notes[start : start + self.page_size]
        headers = {"X-Page": str(page), "X-Per-Page": str(self.page_size), "X-Total": str(len(self.notes))}
        if start + self.page_size < len(self.notes):
            headers["X-Next-Page"] = str(page + 1)
            headers["Link"] = f'<{NOTES_URL}?order_by=created_at&page={page + 1}&per_page=100&sort=asc>; rel="next"'
        return 200, headers, json.dumps(items)

    def _create(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.posts += 1
        body = json.loads(request.body)["body"]
        author = {k: self._bot[k] for k in ("id", "username", "name", "state", "locked", "avatar_url", "web_url")}
        note = copy.deepcopy(self.notes[-1]) if self.notes else {}
        note.update(
            {
                "id": 70100 + self.posts,
                "type": None,
                "body": body,
                "author": author,
                "created_at": f"2025-03-04T10:3{self.posts}:00.000Z",
                "updated_at": f"2025-03-04T10:3{self.posts}:00.000Z",
                "system": False,
                "resolvable": False,
            }
        )
        self.notes.append(note)
        return 201, {}, json.dumps(note)

    def _update(self, request: Any) -> tuple[int, dict[str, str], str]:
        self.puts += 1
        note_id = int(request.url.rsplit("/", 1)[1])
        note = next(n for n in self.notes if n["id"] == note_id)
        assert note["author"]["id"] == BOT_ID, "saltpipe must only ever edit its own note"
        note["body"] = json.loads(request.body)["body"]
        note["updated_at"] = "2025-03-04T11:00:00.000Z"
        return 200, {}, json.dumps(note)

    def ours(self) -> list[dict[str, Any]]:
        return [n for n in self.notes if MARKER in n["body"] and n["author"]["id"] == BOT_ID]


def _recorded_notes() -> list[dict[str, Any]]:
    return json.loads((PAYLOADS / "notes.json").read_text())


def _args(lint: Path) -> list[str]:
    return [
        "report",
        "mr-note",
        "--lint-json",
        str(lint),
        "--junit",
        str(INPUTS / "junit-unit.xml"),
        "--impact-json",
        str(INPUTS / "impact.json"),
    ]


def test_note_is_created_then_updated_never_duplicated(
    gitlab_api: responses.RequestsMock,
    ci_env: Callable[[dict[str, str | None]], None],
    run_saltpipe: Callable[[list[str]], tuple[int, str, str]],
    tmp_path: Path,
) -> None:
    ci_env({})
    for _ in range(3):
        serve(gitlab_api, "user")
    store = FakeNotes(gitlab_api, _recorded_notes())
    lint = tmp_path / "lint.json"
    lint.write_text((INPUTS / "lint.json").read_text())

    code, out, err = run_saltpipe(_args(lint))
    assert code == 0, err
    assert out.strip() == "merge request !42: note 70101 created"
    assert len(store.ours()) == 1 and "1 error, 1 warning (1 waived)" in store.ours()[0]["body"]

    # The next pipeline: the cmd.run finding is fixed. The note (now on page 3 of the notes) is edited.
    data = json.loads(lint.read_text())
    data["findings"] = data["findings"][1:]
    lint.write_text(json.dumps(data))
    code, out, err = run_saltpipe(_args(lint))
    assert code == 0, err
    assert out.strip() == "merge request !42: note 70101 updated"
    assert len(store.ours()) == 1
    body = store.ours()[0]["body"]
    assert body.startswith(MARKER + "\n")
    assert "no-cmd-module" not in body and "1 warning (1 waived)" in body

    # Same inputs again: nothing to write.
    code, out, _ = run_saltpipe(_args(lint))
    assert code == 0 and out.strip() == "merge request !42: note 70101 unchanged"
    assert (store.posts, store.puts) == (1, 1)
    assert len(store.notes) == len(_recorded_notes()) + 1


def test_a_marker_in_someone_elses_note_is_not_ours(
    gitlab_api: responses.RequestsMock,
    ci_env: Callable[[dict[str, str | None]], None],
    run_saltpipe: Callable[[list[str]], tuple[int, str, str]],
) -> None:
    """bob quoted saltpipe's note (marker included) in a reply: saltpipe writes its own note, bob's stays."""
    ci_env({})
    serve(gitlab_api, "user")
    notes = _recorded_notes()
    quoted = copy.deepcopy(notes[1])
    quoted.update({"id": 70010, "body": f"> {MARKER}\n> ### saltpipe report\n\nWhy does lint fail here?"})
    store = FakeNotes(gitlab_api, notes + [quoted], updates=False)
    code, out, err = run_saltpipe(_args(INPUTS / "lint.json"))
    assert code == 0, err
    assert "created" in out
    assert next(n for n in store.notes if n["id"] == 70010)["body"].startswith("> ")
    assert store.posts == 1 and len(store.ours()) == 1


def test_dry_run_prints_the_note_and_contacts_nothing(
    gitlab_api: responses.RequestsMock,
    ci_env: Callable[[dict[str, str | None]], None],
    run_saltpipe: Callable[[list[str]], tuple[int, str, str]],
) -> None:
    ci_env({"SALTPIPE_GITLAB_TOKEN": None})
    code, out, err = run_saltpipe([*_args(INPUTS / "lint.json"), "--dry-run"])
    assert code == 0, err
    assert out.startswith(MARKER)
    assert len(gitlab_api.calls) == 0


def test_gitlab_refusing_the_note_is_exit_2(
    gitlab_api: responses.RequestsMock,
    ci_env: Callable[[dict[str, str | None]], None],
    run_saltpipe: Callable[[list[str]], tuple[int, str, str]],
) -> None:
    ci_env({})
    serve(gitlab_api, "user")
    serve(gitlab_api, "notes")
    gitlab_api.add("POST", NOTES_URL, status=403, json={"message": "403 Forbidden"})
    code, _, err = run_saltpipe(_args(INPUTS / "lint.json"))
    assert code == 2
    assert "HTTP 403" in err and "Reporter role" in err


# --------------------------------------------------------------------------------------------------------------
# Inputs


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("lint.json", '{"findings": [\n  {"rule": "x",\n]}', "lint.json:3: lint JSON is not valid JSON"),
        ("lint.json", '{"findings": [{"rule": "x", "severity": "error", "path": "a.sls"}]}', "findings.0.message"),
        ("lint.json", '{"results": []}', "lint JSON: findings: Field required"),
    ],
)
def test_bad_lint_json_names_file_and_place(tmp_path: Path, name: str, text: str, where: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(UsageError) as err:
        build_report(lint_json=(path,))
    assert str(path) in str(err.value) and where in str(err.value)


def test_bad_junit_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text('<?xml version="1.0"?>\n<testsuites>\n  <testsuite>\n</testsuites>\n')
    with pytest.raises(UsageError, match=re.escape(f"{path}:4: JUnit XML is not well-formed")):
        load_junit(path)


def test_missing_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="impact JSON not found"):
        build_report(impact_json=tmp_path / "impact.json")


def test_junit_counts_come_from_the_cases() -> None:
    summary = load_junit(INPUTS / "junit-unit.xml")
    assert (summary.total, summary.passed, summary.failures, summary.errors, summary.skipped) == (4, 2, 1, 0, 1)
    assert summary.failed_cases[0].name == "tests.unit.content.test_ops_patch.test_installed_kb_is_detected"
    assert summary.failed_cases[0].message == "AssertionError: assert 'KB5034441' in []"


def test_lint_json_written_by_the_json_formatter_is_read() -> None:
    """Contract with ``saltpipe lint --format json``: what its formatter writes, the note reads."""
    from pipeline.findings import Finding, Report
    from pipeline.formatters import get_formatter

    report = Report(
        tool="saltpipe lint",
        findings=(Finding("no-cmd-module", "error", "states/web/nginx.sls", 31, "cmd.run is disabled"),),
    )
    text = get_formatter("json").format(report)
    from pipeline.mrnote import _FindingsFile

    parsed = _FindingsFile.model_validate_json(text)
    assert [(f.rule, f.severity, f.path, f.line) for f in parsed.findings] == [
        ("no-cmd-module", "error", "states/web/nginx.sls", 31)
    ]


# --------------------------------------------------------------------------------------------------------------
# Rendering


def test_rendered_note_sections() -> None:
    report = build_report(
        lint_json=(INPUTS / "lint.json",),
        junit=(INPUTS / "junit-unit.xml",),
        impact_json=INPUTS / "impact.json",
        head_sha="3f2c0d9e7a41b6c58e2d9f0a1b3c4d5e6f708192",
        pipeline_url="https://gitlab.example.net/ops/salt-states/-/pipelines/9001",
    )
    body = render_markdown(report)
    lines = body.splitlines()
    assert lines[0] == MARKER
    assert lines[1] == "### saltpipe report for `3f2c0d9e7a41`"
    assert "| Lint and policy | ❌ | 1 error, 1 warning (1 waived) |" in lines
    assert "| Tests | ❌ | 2 passed, 1 failed, 1 skipped of 4 |" in lines
    assert "| Impact on test | ❌ | 2 states would change, 1 would fail, on 3 sampled minions |" in lines
    # the error first, then the warning
    assert body.index("no-cmd-module") < body.index("pylint-unused-import")
    # failing states first, unchanged states omitted
    impact_rows = [line for line in lines if line.startswith("| `")]
    state_rows = [r for r in impact_rows if "file.managed" in r or "service.running" in r or "pkg.installed" in r]
    assert [r.split("|")[1].strip() for r in state_rows] == ["`limits_nofile`", "`nginx_conf`", "`nginx_service`"]
    assert "node_packages" not in body
    assert "Source file salt://node/files/limits.conf not found" in body
    assert "pipelines/9001" in lines[-1]


def test_cells_cannot_break_the_table_or_inject_html() -> None:
    from pipeline.mrnote import LintFinding

    evil = LintFinding(
        rule="r", severity="error", path="a|b.sls", line=1, message=f"x | y\n{MARKER}<script>alert(1)</script>"
    )
    body = render_markdown(MrReport(head_sha=None, pipeline_url=None, findings=(evil,), tests=(), impact=None))
    row = next(line for line in body.splitlines() if "a\\|b.sls" in line)
    assert row.count(" | ") == 3  # four cells: the pipes inside were escaped
    assert "<script>" not in body and body.count(MARKER) == 1


def test_long_lists_are_cut() -> None:
    from pipeline.mrnote import MAX_FINDINGS, LintFinding

    many = tuple(LintFinding(rule="r", severity="warning", path=f"s{i}.sls", line=1, message="m") for i in range(70))
    body = render_markdown(MrReport(head_sha=None, pipeline_url=None, findings=many, tests=(), impact=None))
    assert sum(1 for line in body.splitlines() if line.startswith("| warning")) == MAX_FINDINGS
    assert f"and {70 - MAX_FINDINGS} more" in body


def test_render_coverage_from_the_lint_json_is_a_row_and_a_bounded_section(tmp_path: Path) -> None:
    """The coverage ``saltpipe lint --format json`` writes: a summary row, a per-minion table, the gaps cut."""
    from pipeline.findings import Coverage, MinionCoverage, Report, UnrenderedBranch
    from pipeline.formatters import get_formatter

    coverage = Coverage(
        sls=3,
        minions=(MinionCoverage("test/web-1", 3, 0), MinionCoverage("test/db-1", 2, 1)),
        never_rendered=("states/db.sls",),
        unrendered_branches=tuple(UnrenderedBranch("states/web.sls", n, n + 2, "if") for n in range(1, 26)),
    )
    path = tmp_path / "lint.json"
    path.write_text(get_formatter("json").format(Report(tool="saltpipe lint", coverage=coverage)))
    body = render_markdown(build_report(lint_json=(path,)))
    assert "| Render coverage | 🔶 | 5 of 6 renders (3 SLS × 2 fixture minions); 1 file and 25 Jinja branches never rendered |" in body
    assert "| `test/db-1` | 2 | 1 |" in body
    assert "<details><summary>never rendered by any fixture minion: 1</summary>\n\n- `states/db.sls`\n" in body
    assert "- `states/web.sls:20-22` (if)\n- …and 5 more; see the lint job's JSON report" in body
    assert "states/web.sls:21-23" not in body
    # A lint JSON without coverage (an older saltpipe, or nothing rendered): no row, no section.
    path.write_text(get_formatter("json").format(Report(tool="saltpipe lint")))
    assert "Render coverage" not in render_markdown(build_report(lint_json=(path,)))
