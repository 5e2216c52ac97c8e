"""The allow-list: every function Salt 3006.28 ships is classified once, in data, and the data is what the
reviewed classification rules give. A Salt upgrade that brings a function nobody classified fails here."""

from __future__ import annotations

import pytest
import salt.version

from pipeline.policy.allowlist import AllowList
from pipeline.policy.functions import FunctionPolicy
from pipeline.policy.inventory import KINDS, RULES_FILE, UNCLASSIFIED, classify, data_file, load_yaml, render_data, salt_functions


@pytest.fixture(scope="module")
def allow() -> AllowList:
    return AllowList.load()


def test_the_data_is_for_the_installed_salt(allow: AllowList) -> None:
    assert allow.salt_version == salt.version.__version__, "Salt changed: run python -m pipeline.policy.inventory (docs/policy.md)"


@pytest.mark.parametrize("kind", KINDS)
def test_every_function_salt_ships_is_classified(allow: AllowList, kind: str) -> None:
    missing = [fn.name for fn in salt_functions(kind) if (kind, fn.name) not in allow.table]  # type: ignore[arg-type]
    assert missing == [], (
        f"{len(missing)} {kind} functions of Salt {salt.version.__version__} are unclassified: classify them in "
        f"{RULES_FILE} and run `python -m pipeline.policy.inventory --write`"
    )
    assert len(salt_functions(kind)) > 20  # type: ignore[arg-type]  # the reader found Salt's modules at all


def test_the_data_file_is_what_the_reviewed_rules_give() -> None:
    path = data_file(salt.version.__version__)
    fresh = classify(load_yaml(RULES_FILE), load_yaml(path), salt.version.__version__)
    assert all(not fresh[UNCLASSIFIED][kind] for kind in KINDS)
    assert render_data(fresh) == path.read_text(), "stale or hand-edited: run python -m pipeline.policy.inventory --write"


def test_a_function_nobody_reviewed_is_unclassified_not_allowed() -> None:
    """Without the previous data (a new Salt line's functions), what no group matches is unclassified."""
    fresh = classify(load_yaml(RULES_FILE), None, salt.version.__version__)
    assert "pkg" in fresh[UNCLASSIFIED]["execution"]
    assert fresh["groups"]["reviewed-allowed"]["execution"] == {}


@pytest.mark.parametrize(
    ("kind", "function", "cls"),
    [
        ("execution", "cmd.run", "denied-executes-process"),
        ("execution", "cmd.which", "lookup"),
        ("execution", "cmd.has_exec", "lookup"),
        ("execution", "incron.set_job", "denied-executes-process"),
        ("execution", "ansible.playbooks", "denied-executes-process"),
        ("execution", "cron.set_job", "denied-executes-process"),
        ("execution", "at.at", "denied-executes-process"),
        ("execution", "ssh.set_auth_key", "denied-executes-process"),
        ("execution", "saltutil.runner", "denied-executes-process"),
        ("execution", "saltutil.wheel", "denied-executes-process"),
        ("execution", "docker.run", "denied-executes-process"),
        ("execution", "lxc.run", "denied-executes-process"),
        ("execution", "state.single", "denied-loads-code"),
        ("execution", "slsutil.renderer", "denied-loads-code"),
        ("execution", "pillar.ext", "denied-loads-code"),
        ("execution", "cp.get_template", "denied-loads-code"),
        ("execution", "state.sls", "allowed"),
        ("execution", "pkg.version_cmp", "allowed"),
        ("execution", "pillar.get", "allowed"),
        ("execution", "saltutil.sync_all", "allowed"),
        ("execution", "mine.send", "dispatcher"),
        ("state", "incron.present", "denied-executes-process"),
        ("state", "ansible.playbooks", "denied-executes-process"),
        ("state", "cron.present", "denied-executes-process"),
        ("state", "cron.absent", "allowed"),
        ("state", "pkg.installed", "allowed"),
        ("state", "module.run", "dispatcher"),
        ("runner", "state.orchestrate_high", "denied-loads-code"),
        ("runner", "salt.cmd", "dispatcher"),
        ("wheel", "file_roots.write", "denied-loads-code"),
    ],
)
def test_classification(allow: AllowList, kind: str, function: str, cls: str) -> None:
    assert allow.verdict(function, kind).cls == cls  # type: ignore[arg-type]


def test_unclassified_is_denied_and_says_how_to_classify(allow: AllowList) -> None:
    why = FunctionPolicy.of((), allow).why("vendor.frobnicate")
    assert why and why.startswith("unclassified") and "classification.yaml" in why


def test_the_repository_modules_are_allowed_but_cannot_unlock_a_denied_salt_function(allow: AllowList) -> None:
    policy = FunctionPolicy.of((), allow.with_custom({"execution": frozenset({"ops_app.pull_out", "cmd.run"})}))
    assert not policy.forbidden("ops_app.pull_out")
    assert policy.forbidden("cmd.run")


def test_a_lookup_is_not_forbidden_by_a_glob_only_by_its_exact_name(allow: AllowList) -> None:
    assert not FunctionPolicy.of(("cmd.*",), allow).forbidden("cmd.which")
    assert FunctionPolicy.of(("cmd.*",), allow).forbidden("cmd.run_all")
    assert FunctionPolicy.of(("cmd.which",), allow).forbidden("cmd.which")


def test_the_repository_extension_modules_are_known_to_policy_check(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """ops_x.* is allowed because _modules/ops_x.py defines it; the same calls without the module are
    unclassified (fail closed), at the lines that make them."""
    import datetime as dt

    from pipeline.lint.policy_check import PolicyCheckOptions, check_paths

    (tmp_path / "states").mkdir()
    (tmp_path / "states" / "app.sls").write_text(
        "{%- set s = salt['ops_x.status']('web') %}\n"
        "drain:\n  module.run:\n    - ops_x.pull_out:\n      - pool: web\n"
    )

    def unclassified() -> set[tuple[str, int]]:
        report = check_paths(PolicyCheckOptions(paths=(), repo=tmp_path, today=dt.date(2026, 1, 1)))
        return {(f.rule, f.line) for f in report.findings if "unclassified" in f.message}

    assert unclassified() == {("jinja-forbidden-call", 1), ("module-run-forbidden", 4)}
    (tmp_path / "_modules").mkdir()
    (tmp_path / "_modules" / "ops_x.py").write_text("def status(pool):\n    return pool\n\n\ndef pull_out(pool):\n    return True\n")
    assert unclassified() == set()
