"""Helpers for the policy tests: rule fixture markers and running the policy over a directory."""

from __future__ import annotations

import datetime as dt
import re
from functools import cache
from pathlib import Path

from pipeline.findings import Report
from pipeline.lint.policy_check import PolicyCheckOptions, check_paths

EXPECT_RE = re.compile(r"expect:\s*([a-z0-9, -]+?)\s*(?:#\}|$)")


def expected(directory: Path) -> dict[tuple[str, str], set[int]]:
    """``(file name, rule) -> lines`` from ``expect: rule[, rule]`` markers."""
    out: dict[tuple[str, str], set[int]] = {}
    for path in sorted(directory.iterdir()):
        if not path.is_file():  # e.g. a __pycache__ left by compileall
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = EXPECT_RE.search(line)
            if match:
                for rule in (r.strip() for r in match.group(1).split(",")):
                    out.setdefault((path.name, rule), set()).add(number)
    return out


@cache
def check_dir(directory: Path) -> Report:
    """The policy alone over a fixture directory (rendered by Salt with empty grains and pillar)."""
    return check_paths(PolicyCheckOptions(paths=(directory,), repo=directory, today=dt.date(2026, 1, 1)))


def found(report: Report, rule: str) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for finding in report.findings:
        if finding.rule == rule:
            out.setdefault(Path(finding.path).name, set()).add(finding.line)
    return out
