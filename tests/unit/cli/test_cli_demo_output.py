"""``saltpipe demo``'s output reads top to bottom in step order: a step's header, then its live progress, then its
result; the rollout lines it prints are aligned and say where a rollout halted by the batch's name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_runner import saltpipe

import pipeline.demo.run as demo_run
from pipeline.demo.flow import batch_rows
from pipeline.demo.model import DemoContext, DemoState

REPO = Path(__file__).resolve().parents[3]


def _step_with_progress(name: str, progress_line: str, result_line: str):
    def step(ctx: DemoContext, state: DemoState) -> tuple[bool, list[str]]:  # noqa: ARG001 - the Step signature
        assert ctx.progress is not None
        ctx.progress(progress_line)
        return True, [result_line]

    return name, step


def test_each_steps_progress_comes_under_its_own_header(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(demo_run, "steps", lambda: [
        ("quiet step", lambda ctx, state: (True, ["no progress here"])),
        _step_with_progress("release", "$ saltpipe release build", "release rel-1 built"),
        _step_with_progress("rollout test", "canary: 1 minion(s)", "rollout succeeded"),
    ])
    monkeypatch.setattr(demo_run, "teardown", lambda flow, keep: [])
    ran = saltpipe("--repo", str(REPO), "demo", "--workdir", str(tmp_path))
    assert ran.code == 0, ran.out + ran.err
    lines = [line.strip() for line in ran.out.splitlines() if line.strip()]
    order = ["quiet step ok", "no progress here",
             "release ...", "$ saltpipe release build", "release ok", "release rel-1 built",
             "rollout test ...", "canary: 1 minion(s)", "rollout test ok", "rollout succeeded", "summary"]
    positions = [next(i for i, line in enumerate(lines) if line.startswith(want)) for want in order]
    assert positions == sorted(positions), lines
    # The step without progress has no "..." header of its own.
    assert not any(line.startswith("quiet step ...") for line in lines)


def test_quiet_demo_prints_no_progress_headers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(demo_run, "steps", lambda: [("release", lambda ctx, state: (True, ["built"]))])
    monkeypatch.setattr(demo_run, "teardown", lambda flow, keep: [])
    ran = saltpipe("--repo", str(REPO), "demo", "--quiet", "--workdir", str(tmp_path))
    assert ran.code == 0
    assert "\nrelease ok (" in ran.out and "release ..." not in ran.out


REPORT = {
    "batches": [
        {"index": 0, "name": "canary", "status": "failed", "minions": [{"id": "prod-app-3", "result": "rolled_back"}]},
        {"index": 1, "name": "batch 1 (1)", "status": "not_run", "minions": [{"id": "prod-app-1", "result": "untouched"}]},
        {"index": 2, "name": "batch 2 (100%)", "status": "not_run",
         "minions": [{"id": "prod-web-1", "result": "untouched"}, {"id": "prod-web-2", "result": "untouched"}]},
    ],
    "skipped_schedule_entries": [["5%", "5% of 6 minions is 1, reached already"]],
    "halted": {"batch": 0, "batch_name": "canary", "reason": "gate FAILED: 1/1 failed (max 0%)"},
}


def test_rollout_rows_are_aligned_and_name_the_halted_batch() -> None:
    rows = batch_rows(REPORT)
    batch_lines = rows[:3]
    # Every status starts in the same column, every result list too.
    assert len({line.index(status) for line, status in zip(batch_lines, ("failed", "not_run", "not_run"))}) == 1
    assert len({line.index("prod-") for line in batch_lines}) == 1
    assert "5%" in rows[3] and "skipped" in rows[3] and "reached already" in rows[3]
    assert rows[-1] == "  halted at canary: gate FAILED: 1/1 failed (max 0%)"
    assert not any("batch 0" in row or "batch batch" in row for row in rows)


def test_rollout_progress_lines_read_as_sentences(capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.commands.rollout_view import ProgressView, rollback_line

    assert rollback_line("rollback_finished", {"seq": 9, "at": "t", "event": "rollback_finished", "rolled_back": 1,
                                                "failed": [], "missing": []}) == \
        "rollback finished: 1 rolled back, 0 failed, 0 missing"
    assert rollback_line("rollback_finished", {"rolled_back": 0, "failed": ["a"], "missing": ["b"]}) == \
        "rollback finished: 0 rolled back, 1 failed, 1 missing (a, b)"
    assert "=" not in rollback_line("rollback_skipped", {"reason": "no previous release"})
    view = ProgressView()
    view.rows[0] = {"name": "batch 1 (100%)", "size": 3, "done": 0, "failed": 0, "missing": 0, "state": "waiting"}
    view({"event": "batch_started", "batch": 0})
    view({"event": "gate", "batch": 0, "passed": True, "failed": 0, "missing": 0, "size": 3})
    err = capsys.readouterr().err
    assert "batch 1 (100%): 3 minion(s)" in err and "batch batch" not in err


def test_skipped_schedule_entries_share_the_columns_of_a_succeeded_rollout() -> None:
    """Seen in the real demo: "passed" is shorter than "skipped", so the skipped rows' reasons started one column
    right of the minions; and a spec longer than every batch name pushed its row's status out of line."""
    report = {
        "batches": [
            {"name": "canary", "status": "passed", "minions": [{"id": "prod-app-3", "result": "succeeded"}]},
            {"name": "batch 1 (100%)", "status": "passed", "minions": [{"id": "prod-app-1", "result": "succeeded"}]},
        ],
        "skipped_schedule_entries": [["5%", "5% of 6 minions is 1, reached already"],
                                     ["a-very-long-entry", "reached already"]],
    }
    rows = batch_rows(report)
    assert len(rows) == 4
    # name, two spaces or more, status, spaces, then the third column: minions or why the entry was skipped.
    columns = [re.match(r"  (.+?) {2,}(\S+) +", row) for row in rows]
    assert len({m.start(2) for m in columns}) == 1, rows
    assert len({m.end() for m in columns}) == 1, rows


class _FakeTopology:
    """What the demo's topology step reads of a started topology (no daemon runs)."""

    def __init__(self, workdir: Path) -> None:
        from types import SimpleNamespace

        self.workdir = workdir
        self.pipeline_config = workdir / "pipeline.yaml"
        self.daemons = ["mom", "syndic-prod-a", "prod-web-1"]
        self.mom = SimpleNamespace(id="mom", salt=lambda targets, fun, timeout: SimpleNamespace(
            returns=dict.fromkeys(targets, True)))
        self.syndics = [SimpleNamespace(id="syndic-prod-a", minion_ids=["prod-web-1"])]

    def env_minions(self, env: str) -> list[str]:
        return ["prod-web-1"] if env == "production" else []

    def set_pillar(self, minion: str, pillar: dict) -> None:
        pass


def test_topology_ready_in_is_printed_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The topology's "ready in" is its progress line; the step's result must not say it again."""
    import pipeline.topology
    from pipeline.demo.flow import topology_up

    def fake_up(workdir: Path, *, progress, **_: object) -> _FakeTopology:
        progress("starting 4 masters: mom, syndic-test, syndic-prod-a, syndic-prod-b")
        progress("ready in 24.9s")
        return _FakeTopology(workdir)

    monkeypatch.setattr(pipeline.topology, "up", fake_up)
    monkeypatch.setattr(demo_run, "steps", lambda: [("repository", demo_run._make_repo), ("topology", topology_up)])
    monkeypatch.setattr(demo_run, "teardown", lambda flow, keep: [])
    ran = saltpipe("--repo", str(REPO), "demo", "--workdir", str(tmp_path))
    assert ran.code == 0, ran.out + ran.err
    assert ran.out.count("ready in") == 1, ran.out
    lines = [line.strip() for line in ran.out.splitlines() if line.strip()]
    assert lines.index("topology ...") < lines.index("ready in 24.9s") < next(
        i for i, line in enumerate(lines) if line.startswith("topology ok"))
