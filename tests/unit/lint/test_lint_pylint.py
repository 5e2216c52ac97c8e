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


_UNDEFINED = {"_modules/demo.py": '"""A demo module."""\n\n\ndef version():\n    """Return."""\n    return undefined_name\n'}


def test_pylint_not_installed_is_an_error_not_a_pass(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """``python -S`` is saltpipe's interpreter without its site-packages: no pylint there, as on a host
    where it was never installed. The lint run must exit 2 and say what to install, not report 0 errors."""
    import functools
    import sys

    import pytest

    import pipeline.lint.run as lint_run
    from pipeline.cli import main
    from lint_helpers import with_config

    root = write_tree(tmp_path, with_config({"states/top.sls": "base:\n  '*': []\n", **_UNDEFINED}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lint_run, "start_pylint", functools.partial(start_pylint, python=(sys.executable, "-S")))
        with pytest.raises(SystemExit) as excinfo:
            main(["--repo", str(root), "lint"])
    out, err = capsys.readouterr()
    assert excinfo.value.code == 2, out + err
    assert "pylint did not run" in err and "No module named pylint" in err
    assert "install pylint and saltpylint" in err


def test_a_plugin_that_does_not_load_is_an_error(tmp_path: Path) -> None:
    """saltpylint missing shows up as pylint's bad-plugin-value: the saltpylint checks did not run."""
    import pytest

    from pipeline.errors import CheckToolError

    root = write_tree(tmp_path, {**_UNDEFINED, ".pylintrc": "[MAIN]\nload-plugins=saltpylint_not_installed.blacklist\n"})
    runs = start_pylint(root, [root / "_modules/demo.py"], [])
    with pytest.raises(CheckToolError, match="saltpylint_not_installed") as excinfo:
        [f for run in runs for f in run.collect()]
    assert "install pylint and saltpylint" in str(excinfo.value)
