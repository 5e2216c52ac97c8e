"""``saltpipe init`` on an existing repository, then ``saltpipe lint`` with no hand-written file (issue 12)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline.adopt.detect import detect
from pipeline.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "formulas-sample"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as excinfo:
        main(argv)
    out, err = capsys.readouterr()
    return int(excinfo.value.code or 0), out, err


def fresh_clone(tmp_path: Path, source: Path = SAMPLE) -> Path:
    repo = tmp_path / "formulas"
    shutil.copytree(source, repo)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.net"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "formulas"], check=True)
    return repo


@pytest.fixture(scope="module")
def linted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict]:
    """The sample as a fresh Git repository, after `saltpipe init` and `saltpipe lint --format json`."""
    repo = fresh_clone(tmp_path_factory.mktemp("adopt"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as init_exit:
        main(["--repo", str(repo), "init"])
    assert init_exit.value.code in (0, None), out.getvalue()
    init_out = out.getvalue()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as lint_exit:
        main(["--repo", str(repo), "lint", "--no-pylint", "--format", "json"])
    report = json.loads(out.getvalue())
    report["exit_code"] = lint_exit.value.code
    return repo, init_out, report


def test_init_finds_the_gitfs_layout_and_writes_lint_only_config(linted: tuple[Path, str, dict]) -> None:
    repo, out, _ = linted
    assert "file roots (saltenv base): . (the repository top)" in out
    for formula in ("chrony", "nginx", "openssh", "postgres", "users"):
        assert f"  {formula}/:" in out
    assert "top files: top.sls" in out and "next: saltpipe lint" in out
    cfg = yaml.safe_load((repo / "salt/pipeline.yaml").read_text())
    assert "environments" not in cfg and cfg["layout"]["states_root"] == "."
    assert {"docs/", "test/", ".*", "*.md"} <= set(cfg["layout"]["exclude"])
    grains = yaml.safe_load((repo / "salt/fixtures/lint/grains.yaml").read_text())["minions"]
    assert {g["os_family"] for g in grains.values()} == {"Debian", "RedHat"}
    pillar = yaml.safe_load((repo / "salt/fixtures/lint/pillar.yaml").read_text())
    # From each formula's own pillar.example.
    assert pillar["users"]["alice"]["sudouser"] is True and pillar["nginx"]["servers"]["www.example.net"]["listen"] == 80
    assert pillar["chrony"]["servers"] == ["ntp1.example.net", "ntp2.example.net"] and pillar["sshd_config"]["Port"] == 22


def test_lint_renders_every_sls_for_every_fixture_minion(linted: tuple[Path, str, dict]) -> None:
    repo, _, report = linted
    sls = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*.sls") if p.name != "top.sls" and ".git" not in p.parts)
    assert len(sls) == 15 and report["stats"]["sls"] == 15 and report["stats"]["minions"] == 3
    # Every render of every SLS succeeded: a failed render is a finding, and there is none.
    assert report["stats"]["renders"] == 15 * 3
    # salt[parsed.query_method] (template-formula's matcher, chrony/libmatchers.jinja) included: issue 11.
    assert not [f for f in report["findings"] if f["severity"] != "info"], report["findings"]
    # pkg.version is not run while linting (it reads the minion's package database): an info, not an error.
    assert {(f["rule"], f["path"]) for f in report["findings"] if f["severity"] == "info"} <= {("render-stubbed-call", "postgres/server.sls")}
    # Issue 11's false findings on real formulas do not come back on the postgres formula: the short form
    # `postgresql:\n  pkg.installed`, template: template0, a stubbed pkg.version_cmp, config.get('config_dir').
    assert not [f for f in report["findings"] if f["path"].startswith("postgres/") and f["severity"] != "info"]
    assert report["summary"]["checked"] >= 15 + 1


def test_lint_coverage_of_the_sample(linted: tuple[Path, str, dict]) -> None:
    """The lint summary's coverage (issue 12): every SLS rendered for each of the three fixture minions, none
    read from its text only, and the one Jinja branch no fixture renders - postgres/server.sls's conf.d block,
    behind salt['pkg.version'], which lint does not run (the template sees an empty version)."""
    assert linted[2]["coverage"] == {
        "sls": 15,
        "minions": [
            {"minion": f"lint/{name}", "rendered": 15, "text": 0, "limited": 0} for name in ("debian-12", "ubuntu-2204", "rocky-9")
        ],
        "never_rendered": [],
        "unrendered_branches": [{"path": "postgres/server.sls", "line": 15, "end_line": 23, "kind": "if"}],
        "unmapped": [],
    }


def test_lint_text_summary_of_the_sample(linted: tuple[Path, str, dict], capsys: pytest.CaptureFixture[str]) -> None:
    """What docs/adopting.md shows: the coverage block before the notes and the verdict."""
    code, out, _ = run(["--repo", str(linted[0]), "lint", "--no-pylint"], capsys)
    assert code == 0
    block = out[out.index("coverage: "):out.index("note: ")]
    assert block == (
        "coverage: 15 SLS, rendered for 3 fixture minions\n"
        "  lint/debian-12    15 rendered, 0 not rendered (checked from text)\n"
        "  lint/ubuntu-2204  15 rendered, 0 not rendered (checked from text)\n"
        "  lint/rocky-9      15 rendered, 0 not rendered (checked from text)\n"
        "  never rendered by any fixture minion: none\n"
        "  Jinja branches no fixture minion rendered (checked from their text): 1\n"
        "    postgres/server.sls:15-23 (if)\n"
        "\n"
    )


def test_lint_exit_0_on_the_sample(linted: tuple[Path, str, dict]) -> None:
    assert linted[2]["exit_code"] == 0, linted[2]["findings"]


def test_rerun_changes_nothing_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = fresh_clone(tmp_path)
    assert run(["--repo", str(repo), "init"], capsys)[0] == 0
    config = repo / "salt/pipeline.yaml"
    config.write_text(config.read_text() + "# my edit\n")
    code, out, _ = run(["--repo", str(repo), "init"], capsys)
    assert code == 0 and "kept salt/pipeline.yaml" in out and "wrote" not in out
    assert config.read_text().endswith("# my edit\n")
    code, out, _ = run(["--repo", str(repo), "init", "--force"], capsys)
    assert code == 0 and "wrote salt/pipeline.yaml" in out and "# my edit" not in config.read_text()


def test_lint_only_config_refuses_sync_and_rollout_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = fresh_clone(tmp_path)
    run(["--repo", str(repo), "init"], capsys)
    for argv in (["sync", "test"], ["rollout", "test", "--release", "rel-0123456789ab"]):
        code, _, err = run(["--repo", str(repo), *argv], capsys)
        assert code == 2, (argv, err)
        assert "defines no environments yet" in err and "add an environment" in err


def test_release_of_the_adopted_repo_holds_the_salt_tree_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = fresh_clone(tmp_path)
    run(["--repo", str(repo), "init"], capsys)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qam", "x"], check=False)
    subprocess.run(["git", "-C", str(repo), "add", "salt"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "saltpipe init"], check=True)
    code, out, err = run(["--repo", str(repo), "release", "build", "--format", "json"], capsys)
    assert code == 0, err
    release_dir = next((repo / ".saltpipe").rglob("tree"))
    files = sorted(p.relative_to(release_dir).as_posix() for p in release_dir.rglob("*") if p.is_file())
    assert "top.sls" in files and "chrony/map.jinja" in files and "nginx/files/nginx.conf.jinja" in files
    assert not [f for f in files if f.startswith(("salt/", "docs/", "test/")) or f in ("README.md", "FORMULA") or f.startswith(".")]


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "roots"),
    [
        ({"states/top.sls": "base: {}\n", "states/web/init.sls": "a:\n  test.nop\n"}, ("states",)),
        ({"salt/web/init.sls": "a:\n  test.nop\n", "salt/pipeline.yaml": "version: 1\n"}, ("salt",)),
        ({"nginx/init.sls": "a:\n  test.nop\n", "docs/x.sls": "not: salt\n"}, (".",)),
        ({"nginx-formula/nginx/init.sls": "a:\n  test.nop\n", "openssh-formula/openssh/init.sls": "a:\n  test.nop\n"},
         ("nginx-formula", "openssh-formula")),
    ],
    ids=["states", "salt", "gitfs-top", "formula-repos"],
)
def test_detect_layouts(tmp_path: Path, files: dict[str, str], roots: tuple[str, ...]) -> None:
    assert detect(write(tmp_path, files)).roots == roots


def test_detect_finds_extensions_and_keeps_pillar_out(tmp_path: Path) -> None:
    det = detect(write(tmp_path, {
        "web/init.sls": "a:\n  test.nop\n", "_modules/ops.py": "", "_states/ops.py": "", "pillar/top.sls": "base: {}\n",
        "web/map.jinja": "{% set x = salt['grains.filter_by']({'Suse': {}}) %}\n",
    }))
    assert det.roots == (".",) and det.extensions == ("_modules", "_states")
    assert det.pillar_dirs == ("pillar",) and "pillar/" in det.exclude and det.os_families == ("Suse",)


def test_lint_before_init_points_at_init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = fresh_clone(tmp_path)
    code, _, err = run(["--repo", str(repo), "lint"], capsys)
    assert code == 2 and "not a saltpipe checkout" in err and "saltpipe init" in err


def test_init_without_sls_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, {"README.md": "nothing here\n"})
    code, _, err = run(["--repo", str(tmp_path), "init"], capsys)
    assert code == 2 and "no .sls file found" in err


def test_merged_formula_repositories_are_roots_without_clashes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """nginx-formula/ and openssh-formula/ side by side, each with its pillar.example at its top (gitfs remotes)."""
    source = tmp_path / "src"
    for name in ("nginx", "openssh"):
        shutil.copytree(SAMPLE / name, source / f"{name}-formula" / name)
        (source / f"{name}-formula" / name / "pillar.example").rename(source / f"{name}-formula" / "pillar.example")
        (source / f"{name}-formula" / "README.rst").write_text(f"{name}\n")
    repo = fresh_clone(tmp_path, source)
    code, out, _ = run(["--repo", str(repo), "init"], capsys)
    assert code == 0 and "file roots (saltenv base): nginx-formula/, openssh-formula/" in out
    assert "nginx-formula/pillar.example" in out  # used for the fixture pillar ...
    code, out, _ = run(["--repo", str(repo), "lint", "--no-pylint", "--format", "json"], capsys)
    report = json.loads(out)
    # ... but not served: two roots holding pillar.example at the same salt:// path would clash.
    assert code == 0 and report["findings"] == [] and report["stats"]["sls"] == 7, report["findings"]
