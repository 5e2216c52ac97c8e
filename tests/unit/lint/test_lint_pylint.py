"""pylint through the project .pylintrc: Salt's dunders are builtins, saltpylint's checkers run."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline.lint.pylint_runner import start_pylint
from lint_helpers import REPO, write_tree


def test_pylint_findings_with_salt_dunders_and_saltpylint(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {
            "_modules/demo.py": '''
                """A demo module."""


                def version(name):
                    """Return the version."""
                    with open("/etc/os-release", encoding="utf-8") as fh:
                        fh.read()
                    return __salt__["pkg.version"](name) + undefined_name
            ''',
            "pipeline/tool.py": '''
                """saltpipe code: open() is fine here."""


                def read(path):
                    """Read."""
                    with open(path, encoding="utf-8") as fh:
                        return fh.read()
            ''',
        },
    )
    shutil.copy(REPO / ".pylintrc", root / ".pylintrc")
    runs = start_pylint(root, [root / "_modules/demo.py"], [root / "pipeline/tool.py"])
    findings = [f for run in runs for f in run.collect()]
    got = {(f.rule, f.severity.value, f.path, f.line) for f in findings}
    assert ("pylint-undefined-variable", "error", "_modules/demo.py", 8) in got
    assert ("pylint-resource-leakage", "warning", "_modules/demo.py", 6) in got  # saltpylint.blacklist
    assert not any("__salt__" in f.message for f in findings)  # additional-builtins
    assert not any(f.path == "pipeline/tool.py" for f in findings)
